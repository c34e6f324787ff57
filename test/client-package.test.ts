/**
 * The TypeScript client is a package of its own (packages/client, @sensory/client): its types are
 * generated from the server's schemas and kept in step, and it installs nothing native — no
 * dependency at all, and no import of anything but Node's built-ins and its own files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { CLIENT_TYPES_FILE, renderClientTypes } from '../scripts/generate-client-types.js';

const CLIENT = fileURLToPath(new URL('../packages/client/', import.meta.url));

describe('@sensory/client', () => {
  it('has the types generated from the current schemas and error registry (else: npm run generate:client-types)', () => {
    assert.equal(readFileSync(CLIENT_TYPES_FILE, 'utf8'), renderClientTypes(), `${CLIENT_TYPES_FILE} is out of step with the schemas: run npm run generate:client-types`);
  });

  it('declares no dependency, and npm installs none for it (no sharp, better-sqlite3, pg, amqplib)', () => {
    const manifest = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.name, '@sensory/client');
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies']) assert.equal(manifest[field], undefined, field);
    const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: CLIENT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(listed.status, 0, listed.stderr);
    for (const name of ['sharp', 'better-sqlite3', 'pg', 'amqplib', 'fastify', '@sinclair/typebox']) {
      assert.ok(!listed.stdout.split('\n').some((path) => path.endsWith(`/node_modules/${name}`)), `${name} is installed for the client:\n${listed.stdout}`);
    }
  });

  it('imports only Node built-ins and its own files', () => {
    const src = join(CLIENT, 'src');
    for (const file of readdirSync(src).filter((name) => name.endsWith('.ts'))) {
      const text = readFileSync(join(src, file), 'utf8');
      for (const [, specifier] of text.matchAll(/\bfrom\s+'([^']+)'/g)) {
        assert.ok(specifier.startsWith('node:') || /^\.\/[\w.-]+\.js$/.test(specifier), `${file} imports ${specifier}`);
      }
    }
  });
});
