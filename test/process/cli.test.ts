/**
 * The `sensory import` and `sensory export` commands as real processes against a real server:
 * the original service's `<category>/<file>` layout, idempotent re-runs, round trips, and the
 * exit codes and messages of wrong usage.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from '../support/harness.js';
import {
  call,
  ensureBuilt,
  killAll,
  removeTempDirs,
  ROOT,
  runCli,
  sha256,
  startServer,
  stop,
  tempDir,
  within,
  type Run,
  type Server,
} from '../support/process.js';

const CATEGORIES = ['cats', 'dogs', 'birds'];

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** The last line of a command's stdout, parsed: the commands end with a JSON summary. */
function summary(run: Run): any {
  const lines = run.stdout().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('sensory import / export as real processes', () => {
  let workDir: string;
  let dataDir: string;
  let server: Server;
  let key: string;
  const originals = new Map<string, { category: string; bytes: Buffer }>();

  /** Runs a command to its end (bounded in time). */
  async function cli(args: string[], env: Record<string, string> = {}): Promise<Run & { code: number | null }> {
    const run = runCli(args, { SENSORY_DATA_DIR: join(workDir, 'cli-data'), ...env });
    const { code } = await within(run.exit, 30_000, `sensory ${args.join(' ')}`);
    return { ...run, code };
  }

  async function pairs(dataset: string): Promise<string[]> {
    const reply = await call(server.url, key, 'GET', `/v1/datasets/${dataset}/samples?limit=1000`);
    assert.equal(reply.status, 200);
    return reply.json().samples.map((sample: { sha256: string; category: string }) => `${sample.sha256} ${sample.category}`).sort();
  }

  before(async () => {
    ensureBuilt();
    workDir = tempDir('sensory-cli-');
    dataDir = join(workDir, 'server-data');
    // No SENSORY_API_KEYS: the CLI uses the key the server generated.
    server = await startServer(dataDir);
    key = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();

    const tree = join(workDir, 'tree');
    for (const [c, category] of CATEGORIES.entries()) {
      mkdirSync(join(tree, category), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const bytes = await makePng(12 + i, 16, 3, c * 10 + i);
        writeFileSync(join(tree, category, `img${i}.png`), bytes);
        originals.set(sha256(bytes), { category, bytes });
      }
    }
    // What the original service's trees carry besides images.
    writeFileSync(join(tree, '.DS_Store'), Buffer.from([0, 0, 0, 1, 0x42, 0x75, 0x64, 0x31]));
    writeFileSync(join(tree, 'cats', '.DS_Store'), Buffer.from([0, 0, 0, 1, 0x42, 0x75, 0x64, 0x31]));
    mkdirSync(join(tree, '.hidden'));
    writeFileSync(join(tree, '.hidden', 'skipped.png'), await makePng(16, 16, 3, 99));
    writeFileSync(join(tree, 'dogs', 'notes.txt'), 'these are the dogs\n');
  });

  after(async () => {
    if (server) await stop(server).catch(() => undefined);
    await killAll();
    removeTempDirs();
  });

  test('import → import again → export → import the export elsewhere → export again', async () => {
    const tree = join(workDir, 'tree');
    const out = join(workDir, 'out');
    const flags = ['--url', server.url, '--key', key];

    // First import: 12 images stored, hidden entries skipped, notes.txt rejected (exit 1).
    const first = await cli(['import', tree, '--dataset', 'd1', '--width', '16', '--height', '16', ...flags]);
    assert.equal(first.code, 1, first.stderr());
    assert.deepEqual(summary(first), { stored: 12, duplicates: 0, rejected: 1 });
    assert.match(first.stderr(), /rejected .*notes\.txt: SENSORY_ERR_NOT_AN_IMAGE/);
    assert.ok(!first.stderr().includes('.DS_Store') && !first.stderr().includes('.hidden'), 'hidden entries are skipped silently');
    const d1 = (await call(server.url, key, 'GET', '/v1/datasets/d1')).json();
    assert.equal(d1.sampleCount, 12);
    assert.deepEqual(d1.categories.map((category: { name: string; count: number }) => [category.name, category.count]).sort(), [
      ['birds', 4],
      ['cats', 4],
      ['dogs', 4],
    ]);
    assert.deepEqual(
      await pairs('d1'),
      [...originals].map(([sha, { category }]) => `${sha} ${category}`).sort(),
    );

    // Again: nothing stored twice, the dataset's revision unchanged.
    const again = await cli(['import', tree, '--dataset', 'd1', '--width', '16', '--height', '16', ...flags]);
    assert.equal(again.code, 1, again.stderr());
    assert.deepEqual(summary(again), { stored: 0, duplicates: 12, rejected: 1 });
    const d1Again = (await call(server.url, key, 'GET', '/v1/datasets/d1')).json();
    assert.equal(d1Again.revision, d1.revision);
    assert.equal(d1Again.sampleCount, 12);

    // Export: <out>/<category>/<sha>.png with the original bytes, and nothing else.
    const exported = await cli(['export', 'd1', out, ...flags]);
    assert.equal(exported.code, 0, exported.stderr());
    assert.deepEqual(summary(exported), { written: 12, unchanged: 0 });
    const files = filesUnder(out);
    assert.deepEqual(files, [...originals].map(([sha, { category }]) => join(category, `${sha}.png`)).sort());
    for (const file of files) {
      const bytes = readFileSync(join(out, file));
      const original = originals.get(sha256(bytes));
      assert.ok(original, `${file} holds original bytes`);
      assert.ok(bytes.equals(original.bytes));
      assert.equal(file, join(original.category, `${sha256(bytes)}.png`));
    }

    // Round trip: the export imported into d2 is the same set of (sha256, category).
    const roundTrip = await cli(['import', out, '--dataset', 'd2', '--width', '16', '--height', '16', ...flags]);
    assert.equal(roundTrip.code, 0, roundTrip.stderr());
    assert.deepEqual(summary(roundTrip), { stored: 12, duplicates: 0, rejected: 0 });
    assert.deepEqual(await pairs('d2'), await pairs('d1'));

    // Export again, with the key from the server's data dir: nothing new is written.
    const mtimes = files.map((file) => statSync(join(out, file)).mtimeMs);
    const exportAgain = await cli(['export', 'd1', out, '--url', server.url], { SENSORY_DATA_DIR: dataDir });
    assert.equal(exportAgain.code, 0, exportAgain.stderr());
    assert.deepEqual(summary(exportAgain), { written: 0, unchanged: 12 });
    assert.deepEqual(filesUnder(out), files);
    assert.deepEqual(files.map((file) => statSync(join(out, file)).mtimeMs), mtimes);
  });

  test('--version prints the package version; --help lists the commands, and each command has its own help', async () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    for (const flag of ['--version', '-V']) {
      const run = await cli([flag]);
      assert.equal(run.code, 0, run.stderr());
      assert.equal(run.stdout().trim(), version);
    }
    const help = await cli(['--help']);
    assert.equal(help.code, 0, help.stderr());
    for (const command of ['serve', 'worker', 'import', 'export', 'compact']) assert.match(help.stdout(), new RegExp(`^  ${command} `, 'm'));
    const own: Record<string, RegExp[]> = {
      serve: [/Usage: sensory serve \[options\]/, /--max-sample-bytes <value>\s+SENSORY_MAX_SAMPLE_BYTES/, /--amqp-url <value>/],
      worker: [/Usage: sensory worker \[options\]/, /--concurrency <n>/, /--amqp-url <value>/],
      import: [/Usage: sensory import \[options\] <source>/, /--test-percent <p>/, /--category-from <rule>/, /tar/],
      export: [/Usage: sensory export \[options\] <dataset> \[dir\]/, /--url <url>/, /--format <format>/, /--shard-size <n>\s+with --format: samples per shard/],
      compact: [/Usage: sensory compact \[options\]/, /--retention-seconds <n>/, /--min-garbage-share <x>/],
    };
    for (const [command, patterns] of Object.entries(own)) {
      for (const args of [[command, '--help'], ['help', command]]) {
        const run = await cli(args);
        assert.equal(run.code, 0, run.stderr());
        for (const pattern of patterns) assert.match(run.stdout(), pattern, `sensory ${args.join(' ')}`);
      }
    }
    // A command's help lists its own options only.
    assert.doesNotMatch((await cli(['export', '--help'])).stdout(), /--test-percent|--max-sample-bytes/);
  });

  test('wrong usage exits 2 with a message naming what is wrong and where the usage is; a wrong key or a missing dataset names the server\'s error code', async () => {
    const tree = join(workDir, 'tree');
    const flags = ['--url', server.url, '--key', key];
    const shape = ['--width', '16', '--height', '16'];
    // [arguments, what the message must say]; none of them may reach the service or create anything.
    const usages: [string[], RegExp][] = [
      [['import', tree, ...shape, ...flags], /--width and --height need --dataset NAME/],
      [['import', tree, '--dataset', 'd3', '--width', 'abc', '--height', '16', ...flags], /--width <pixels>' argument 'abc' is invalid.*whole number/],
      // The usage is checked before anything else, a key included.
      [['import', tree, '--dataset', 'd3', '--width', 'abc', '--height', '16'], /--width <pixels>' argument 'abc' is invalid/],
      [['import', tree, '--dataset', 'd3', ...shape, '--channels', '2', ...flags], /--channels <n>' argument '2' is invalid.*one of 1, 3/],
      [['import', tree, '--dataset', 'd3', ...shape, '--test-percent', '51', ...flags], /--test-percent <p>' argument '51' is invalid.*from 0 to 50/],
      [['import', tree, '--dataset', 'd3', ...shape, '--test-percent', '-1', ...flags], /--test-percent/],
      [['import', tree, '--dataset', 'd3', ...shape, '--category-from', 'middle', ...flags], /--category-from <rule>' argument 'middle' is invalid.*leaf, top/],
      [['import', tree, '--dataset', 'd3', ...shape, '--concurrency', '0', ...flags], /--concurrency <n>' argument '0' is invalid/],
      [['import', tree, '--dataset', 'd3', ...shape, '--bogus', ...flags], /unknown option '--bogus'/],
      [['import', '--dataset', 'd3', ...shape, ...flags], /missing required argument 'source'/],
      [['import', tree, 'extra', '--dataset', 'd3', ...shape, ...flags], /too many arguments/],
      [['import', join(workDir, 'no-such-dir'), '--dataset', 'd3', ...shape, ...flags], /no-such-dir does not exist/],
      [['import', join(tree, 'cats', 'img0.png'), '--dataset', 'd3', ...shape, ...flags], /img0\.png is not a readable tar archive/],
      [['import', join(workDir, 'empty-tree'), '--dataset', 'd3', ...shape, ...flags], /empty-tree holds no files to import/],
      [['import', tree, '--dataset', 'd3', ...flags], /dataset d3 does not exist: give --width and --height to create it/],
      [['export', 'd1', ...flags], /export needs <dataset> and <dir>, or <dataset> --format FORMAT/],
      [['export', 'd1', '--format', 'zip', ...flags], /--format <format>' argument 'zip' is invalid.*webdataset, imagefolder, safetensors/],
      [['export', 'd1', 'out', '--format', 'webdataset', ...flags], /export --format takes the dataset only/],
      [['export', 'd1', '--format', 'webdataset', '--split', 'val', ...flags], /--split <split>' argument 'val' is invalid/],
      [['export', 'd1', '--format', 'webdataset', '--categories', ',', ...flags], /--categories must name at least one category/],
      [['export', 'd1', 'a', 'b', ...flags], /too many arguments/],
      [['compact', 'now', ...flags], /too many arguments/],
      [['compact', '--retention-seconds', '-5', ...flags], /--retention-seconds <n>' argument '-5' is invalid/],
      [['compact', '--min-garbage-share', '2', ...flags], /--min-garbage-share <x>' argument '2' is invalid.*from 0 to 1/],
      [['worker', '--concurrency', 'many'], /--concurrency <n>' argument 'many' is invalid/],
      [['worker', '--shard-size', '0'], /SENSORY_SHARD_SIZE/],
      [['serve', '--port', 'abc'], /SENSORY_PORT/],
      [['frobnicate', ...flags], /unknown command 'frobnicate'/],
      [[], /Usage: sensory \[options\] \[command\]/],
    ];
    mkdirSync(join(workDir, 'empty-tree', 'cats'), { recursive: true });
    for (const [args, message] of usages) {
      const run = await cli(args);
      assert.equal(run.code, 2, `sensory ${args.join(' ')} → ${run.code}\n${run.stderr()}`);
      assert.match(run.stderr(), message, `sensory ${args.join(' ')} says what is wrong`);
      assert.equal(run.stdout(), '', `sensory ${args.join(' ')} writes nothing to stdout`);
      if (args[0] === 'import' || args[0] === 'export' || args[0] === 'compact') {
        assert.match(run.stderr(), new RegExp(`sensory ${args[0]} --help`), `sensory ${args.join(' ')} says where the usage is`);
      }
    }
    assert.ok(!(await cli(['import', tree, '--dataset', 'd3', '--width', 'abc', '--height', '16', ...flags])).stderr().includes(key), 'the key is not echoed');
    assert.equal((await call(server.url, key, 'GET', '/v1/datasets/d3')).status, 404, 'no wrong usage created anything');

    const wrongKey = ['--url', server.url, '--key', 'not-the-key-0123456789'];
    const importWrongKey = await cli(['import', tree, '--dataset', 'd4', '--width', '16', '--height', '16', ...wrongKey]);
    assert.notEqual(importWrongKey.code, 0);
    assert.match(importWrongKey.stderr(), /SENSORY_ERR_UNAUTHORIZED/);
    assert.ok(!importWrongKey.stderr().includes('not-the-key-0123456789'), 'the key is not echoed');
    assert.equal((await call(server.url, key, 'GET', '/v1/datasets/d4')).status, 404);

    const exportWrongKey = await cli(['export', 'd1', join(workDir, 'out-wrong'), ...wrongKey]);
    assert.notEqual(exportWrongKey.code, 0);
    assert.match(exportWrongKey.stderr(), /SENSORY_ERR_UNAUTHORIZED/);
    assert.ok(!existsSync(join(workDir, 'out-wrong')), 'nothing written');

    const exportMissing = await cli(['export', 'no-such-dataset', join(workDir, 'out-missing'), ...flags]);
    assert.notEqual(exportMissing.code, 0);
    assert.match(exportMissing.stderr(), /SENSORY_ERR_DATASET_NOT_FOUND/);
  });
});
