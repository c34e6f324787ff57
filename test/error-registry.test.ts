import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_REGISTRY, SensoryError, type ErrorCode } from '../src/domain/errors.js';
import { removeDir, startTestApp, type TestApp } from './support/harness.js';

const DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
const REGISTRY_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];
const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];

/** The rows of the `| code | status | meaning |` table of docs/errors.md, in order. */
function documentedErrors(): Array<{ code: string; status: number; meaning: string }> {
  const lines = readFileSync(DOC, 'utf8').split('\n');
  const header = lines.findIndex((line) => /^\|\s*code\s*\|\s*status\s*\|\s*meaning\s*\|\s*$/.test(line));
  assert.ok(header >= 0, 'docs/errors.md has no | code | status | meaning | table');
  assert.match(lines[header + 1], /^\|(\s*:?-+:?\s*\|){3}\s*$/, 'the table header is not followed by a separator row');
  const rows: Array<{ code: string; status: number; meaning: string }> = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
    assert.equal(cells.length, 3, `row ${JSON.stringify(line)} does not have three cells`);
    rows.push({ code: cells[0].replace(/`/g, ''), status: Number(cells[1]), meaning: cells[2] });
  }
  return rows;
}

/** The string values a JSON schema allows: enum, const, or a union of them. */
function allowedStrings(schema: any): string[] {
  if (!schema || typeof schema !== 'object') return [];
  if (Array.isArray(schema.enum)) return schema.enum;
  if (schema.const !== undefined) return [schema.const];
  for (const key of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[key])) return schema[key].flatMap(allowedStrings);
  }
  return [];
}

describe('docs/errors.md', () => {
  const rows = documentedErrors();

  it('lists exactly the registry codes, in registry order', () => {
    assert.deepEqual(
      rows.map((row) => row.code),
      REGISTRY_CODES,
    );
  });

  it('gives each code the status of the registry, and a meaning', () => {
    for (const row of rows) {
      assert.equal(row.status, ERROR_REGISTRY[row.code as ErrorCode].status, row.code);
      assert.ok(row.meaning.length > 10, `${row.code} has no meaning`);
    }
  });

  it('every registry status is an error status, and SensoryError carries it', () => {
    for (const code of REGISTRY_CODES) {
      const { status } = ERROR_REGISTRY[code];
      assert.ok(status >= 400 && status <= 599, code);
      assert.match(code, /^SENSORY_ERR_[A-Z_]+$/);
      assert.equal(new SensoryError(code, 'x').status, status);
    }
  });
});

describe('OpenAPI description', () => {
  let t: TestApp;
  let doc: any;
  before(async () => {
    t = await startTestApp();
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200, res.body);
    doc = res.json();
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  it('is an OpenAPI 3 document', () => {
    assert.match(String(doc.openapi), /^3\./);
    assert.equal(typeof doc.info?.title, 'string');
  });

  it('has the ErrorBody schema, whose code enum is exactly the registry codes', () => {
    const schema = doc.components?.schemas?.ErrorBody;
    assert.ok(schema, `components.schemas has no ErrorBody: ${Object.keys(doc.components?.schemas ?? {}).join(', ')}`);
    const codes = allowedStrings(schema.properties?.error?.properties?.code);
    assert.deepEqual(codes, REGISTRY_CODES);
    assert.deepEqual([...(schema.properties.error.required ?? [])].sort(), ['code', 'message']);
    assert.deepEqual(schema.required, ['error']);
  });

  it('documents at least one 4xx response on every modern route, each with the error schema', () => {
    const modern = Object.entries<any>(doc.paths).filter(([path]) => path.startsWith('/v1/'));
    assert.ok(modern.length >= 5, `only ${modern.length} /v1 paths in the document`);
    let operations = 0;
    for (const [path, item] of modern) {
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        operations++;
        const errors = Object.keys(operation.responses ?? {}).filter((status) => /^4\d\d$/.test(status));
        assert.ok(errors.length > 0, `${method.toUpperCase()} ${path} documents no 4xx response`);
        for (const status of errors) {
          const response = operation.responses[status];
          const schema = response.content?.['application/json']?.schema;
          assert.ok(schema, `${method.toUpperCase()} ${path} ${status} has no JSON schema`);
          const resolved = schema.$ref ? doc.components.schemas[schema.$ref.replace('#/components/schemas/', '')] : schema;
          assert.deepEqual(allowedStrings(resolved?.properties?.error?.properties?.code), REGISTRY_CODES, `${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    assert.ok(operations >= 10, `only ${operations} /v1 operations in the document`);
  });

  it('the statuses a route answers with are ones it documents (batches)', () => {
    const responses = doc.paths['/v1/datasets/{name}/batches']?.post?.responses ?? {};
    for (const status of ['400', '401', '403', '404', '413', '422']) assert.ok(responses[status], `batches does not document ${status}`);
  });
});
