/**
 * GET /duplicates and /leakage end to end below HTTP: a SQLite dataset of [count] samples (default
 * 1,000,000) with synthetic perceptual hashes (1% near copies) is written through the metadata
 * store, then the service loads, groups (on its worker thread) and pages them: first query, the
 * same again (kept), another distance, the leakage report. `node --import tsx
 * bench/duplicates-end-to-end.ts [count]`. About a minute of inserts first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { formatHash } from '../src/domain/perceptual-hash.js';
import { NearDuplicateService } from '../src/services/near-duplicate.service.js';
const n = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'kyd-e2e-'));
const store = new SqliteMetadataStore(join(dir, 'x.db'));
await store.migrate();
const { dataset } = await store.putDataset({ name: 'big', width: 100, height: 100, channels: 3, testPercent: 10 });
let s = 0x9e3779b9; const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
let t = performance.now();
let prev = [0, 0];
for (let start = 0; start < n; start += 10000) {
  const batch = [];
  for (let i = start; i < Math.min(n, start + 10000); i++) {
    let hi = next(), lo = next();
    if (i % 100 === 99) { hi = prev[0] ^ (1 << (next() % 32)); lo = prev[1]; }
    prev = [hi, lo];
    batch.push({ sha256: (i.toString(16).padStart(16, '0')).repeat(4), category: `c${i % 10}`, mediaType: 'image/png', bytes: 1, pixelSlot: i, splitBucket: next() % 100, perceptualHash: formatHash(hi, lo) });
  }
  await store.addSamples(dataset.id, batch);
}
console.log('inserted', n, 'in', ((performance.now() - t) / 1000).toFixed(1), 's');
const service = new NearDuplicateService(store, { read: async () => { throw new Error('no pixels'); } } as never);
const rss0 = process.memoryUsage().rss;
for (const d of [3, 3, 6]) {
  t = performance.now();
  const r = await service.duplicates('big', { distance: d, limit: 100 });
  console.log(`D=${d}: ${((performance.now() - t) / 1000).toFixed(2)} s, groups ${r.totals.groups}, samples ${r.totals.samples}, RSS +${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB`);
}
t = performance.now();
const leak = await service.leakage('big', { distance: 3 });
console.log(`leakage D=3: ${((performance.now() - t) / 1000).toFixed(2)} s, split leaks ${leak.splitLeaks.groups}, conflicts ${leak.labelConflicts.groups}`);
await store.close();
