/**
 * The SDK's bulk upload against the real app (listening on a free port): a tar streamed from
 * paths and buffers, a receipt per item in order, retries that store nothing twice, and the
 * `sensory import` progress that counts each file once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SensoryClient } from '@sensory/client';
import { KEYS, makePng, removeDir, startTestApp, type TestApp } from './support/harness.js';

describe('SDK bulk upload', () => {
  let t: TestApp;
  let url: string;
  let sdk: SensoryClient;
  const work = mkdtempSync(join(tmpdir(), 'sensory-sdk-bulk-'));

  before(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    sdk = new SensoryClient({ url, key: KEYS.admin, retryDelayMs: 20 });
  });
  after(async () => {
    sdk.close();
    await t.close();
    removeDir(t.dataDir);
    removeDir(work);
  });

  test('paths and buffers, a receipt per item in order; the same items again are duplicates', async () => {
    await sdk.datasets.put('sdk-bulk', { width: 12, height: 12, channels: 3 });
    const items = [];
    for (let i = 0; i < 25; i++) {
      const png = await makePng(12, 12, 3, 700 + i);
      if (i % 2) {
        const path = join(work, `f${i}.png`);
        writeFileSync(path, png);
        items.push({ category: `c${i % 3}`, source: path });
      } else {
        items.push({ category: `c${i % 3}`, source: png, name: `b${i}.png` });
      }
    }
    const sent: number[] = [];
    const first = await sdk.samples.uploadBulk('sdk-bulk', items, { onItemSent: (n) => sent.push(n) });
    assert.equal(first.stored, 25);
    assert.deepEqual(first.receipts.map((r) => r.path), items.map((item, i) => `${item.category}/${i % 2 ? `f${i}.png` : `b${i}.png`}`));
    assert.deepEqual(sent, Array.from({ length: 25 }, (_, i) => i + 1));
    const second = await sdk.samples.uploadBulk('sdk-bulk', items);
    assert.deepEqual(second.receipts.map((r) => [r.status, r.sampleId]), first.receipts.map((r) => ['duplicate', r.sampleId]));
  });

  test('a connection cut mid-request is retried, and the retry stores nothing twice', async () => {
    await sdk.datasets.put('sdk-bulk-retry', { width: 12, height: 12, channels: 3 });
    const items = [];
    for (let i = 0; i < 10; i++) items.push({ category: 'r', source: await makePng(12, 12, 3, 800 + i), name: `${i}.png` });
    // A proxy that cuts the first bulk request after 6 KB of its body, and passes everything else.
    let cut = false;
    const target = new URL(url);
    const proxy = http.createServer((req, res) => {
      const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      let forwarded = 0;
      req.on('data', (chunk: Buffer) => {
        forwarded += chunk.length;
        upstream.write(chunk);
        if (!cut && req.url?.endsWith('/bulk') && forwarded > 6000) {
          cut = true;
          upstream.destroy();
          req.socket.destroy();
        }
      });
      req.on('end', () => upstream.end());
      upstream.on('error', () => res.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const viaProxy = new SensoryClient({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, key: KEYS.admin, retryDelayMs: 20 });
    try {
      const result = await viaProxy.samples.uploadBulk('sdk-bulk-retry', items);
      assert.ok(cut, 'the first attempt was cut');
      assert.equal(result.stored + result.duplicates, 10);
      assert.equal((await sdk.datasets.get('sdk-bulk-retry')).sampleCount, 10);
    } finally {
      viaProxy.close();
      proxy.close();
    }
  });
});
