import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import { ERROR_REGISTRY, type ErrorCode } from '../src/domain/errors.js';
import { removeDir, startTestApp, type TestApp } from './support/harness.js';

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];
const TSC = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));

describe('the OpenAPI document generates a typed client', () => {
  let t: TestApp;
  let doc: any;
  const operations: { path: string; method: string; op: any }[] = [];
  before(async () => {
    t = await startTestApp();
    doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const [path, item] of Object.entries<any>(doc.paths)) for (const method of METHODS) if (item[method]) operations.push({ path, method, op: item[method] });
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  it('every operation has a unique operationId, a description and examples of its bodies and answers', () => {
    assert.ok(operations.length >= 40, `${operations.length} operations`);
    const ids = operations.map(({ op }) => op.operationId);
    assert.ok(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id)), ids.join(', '));
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(typeof op.description === 'string' && op.description.length > 10, `${where} has a description`);
      for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
        assert.ok(media.example !== undefined || media.examples !== undefined, `${where} body ${type} has an example`);
      }
      const success = Object.keys(op.responses).filter((status) => Number(status) < 400);
      assert.ok(success.length > 0, `${where} declares a success answer`);
      for (const status of success) {
        for (const [type, media] of Object.entries<any>(op.responses[status].content ?? {})) {
          assert.ok(media.example !== undefined || media.examples !== undefined, `${where} ${status} ${type} has an example`);
        }
      }
    }
  });

  it('error examples carry the codes of their status', () => {
    for (const { path, method, op } of operations) {
      for (const [status, response] of Object.entries<any>(op.responses)) {
        if (Number(status) < 400 || !response.content?.['application/json']?.examples) continue;
        for (const [code, example] of Object.entries<any>(response.content['application/json'].examples)) {
          assert.equal(ERROR_REGISTRY[code as ErrorCode]?.status, Number(status), `${method} ${path} ${status} ${code}`);
          assert.equal(example.value.error.code, code);
        }
      }
    }
    const batch = doc.paths['/v1/datasets/{name}/batches'].post.responses;
    assert.deepEqual(Object.keys(batch['422'].content['application/json'].examples).sort(), (Object.keys(ERROR_REGISTRY) as ErrorCode[]).filter((c) => ERROR_REGISTRY[c].status === 422).sort());
  });

  it('declares the bodies and answers that are not JSON, and no key on the public endpoints', () => {
    const upload = doc.paths['/v1/datasets/{name}/samples'].post.requestBody.content;
    for (const type of ['application/json', 'multipart/form-data', 'image/png', 'image/jpeg']) assert.ok(upload[type], `upload takes ${type}`);
    assert.ok(doc.paths['/v1/datasets/{name}/samples/bulk'].post.requestBody.content['application/x-tar']);
    assert.ok(doc.paths['/v1/datasets/{name}/imports'].post.requestBody.content['application/gzip']);
    const batch = doc.paths['/v1/datasets/{name}/batches'].post.responses['200'].content;
    assert.ok(batch['application/json'] && batch['application/x-safetensors']);
    assert.ok(doc.paths['/v1/orders/{id}/poll'].post.responses['200'].content['application/x-safetensors']);
    assert.ok(doc.paths['/v1/datasets/{name}/samples/{id}/content'].get.responses['200'].content['image/png']);
    for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json', '/api/version', '/health/plain']) {
      assert.deepEqual(doc.paths[path].get.security, [], `${path} needs no key`);
    }
    assert.equal(doc.paths['/v1/datasets'].get.security, undefined, 'the API keeps the document-wide key requirement');
  });

  it('openapi-typescript generates types from it, and a call written against them type-checks (and a wrong one does not)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sensory-openapi-'));
    try {
      writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(doc)));
      writeFileSync(
        join(dir, 'call.ts'),
        `import type { paths, operations } from './api.js';
type BatchRequest = NonNullable<paths['/v1/datasets/{name}/batches']['post']['requestBody']>['content']['application/json'];
type Sample = operations['getSample']['responses'][200]['content']['application/json'];
type Me = operations['getMe']['responses'][200]['content']['application/json'];
type BulkRequest = operations['applyBulkAction']['requestBody']['content']['application/json'];
type ErrorCode = operations['getBatch']['responses'][422]['content']['application/json']['error']['code'];

async function batch(url: string, key: string, dataset: string, body: BatchRequest): Promise<unknown> {
  const res = await fetch(\`\${url}/v1/datasets/\${encodeURIComponent(dataset)}/batches\`, { method: 'POST', headers: { 'API-ACCESS-KEY': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}
export const call = () => batch('http://127.0.0.1:8002', 'k', 'digits', { size: 64, split: 'train', dtype: 'float32', layout: 'nchw' });
export const tags = (s: Sample): readonly string[] => s.tags;
export const admin = (me: Me): boolean => me.can.admin;
export const bulk: BulkRequest = { action: 'relabel', ids: [1, 2], category: 'cat' };
export const code: ErrorCode = 'SENSORY_ERR_NOT_ENOUGH_SAMPLES';
// @ts-expect-error split is an enum
export const wrong = () => batch('http://127.0.0.1:8002', 'k', 'digits', { size: 64, split: 'validation' });
// @ts-expect-error action is an enum
export const wrongBulk: BulkRequest = { action: 'split', ids: [1] };
`,
      );
      execFileSync(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2022,dom', '--skipLibCheck', join(dir, 'call.ts')], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      assert.fail(`tsc failed: ${stdout ?? ''}${stderr ?? ''}${stdout || stderr ? '' : String(error)}`);
    } finally {
      removeDir(dir);
    }
  });
});
