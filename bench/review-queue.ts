/**
 * The review queue end to end below HTTP: a SQLite dataset of [count] samples (default 100,000) of
 * ten classes, 1% mislabelled, with synthetic perceptual hashes, is written through the metadata
 * store; a trainer's reports (loss and ten probabilities each) go in through the review service
 * in requests of 10,000, then the queue is asked for (ranked from every report and the
 * near-duplicate groups) twice, and a decision made. `node --import tsx bench/review-queue.ts [count]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMetadataStore } from '../src/adapters/sqlite/sqlite.metadata-store.js';
import { systemClock } from '../src/adapters/clock/system.clock.js';
import { formatHash } from '../src/domain/perceptual-hash.js';
import { NearDuplicateService } from '../src/services/near-duplicate.service.js';
import { ReviewService } from '../src/services/review.service.js';
import { SampleService } from '../src/services/sample.service.js';

const n = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'review-bench-'));
const store = new SqliteMetadataStore(join(dir, 'x.db'));
await store.migrate();
const { dataset } = await store.putDataset({ name: 'big', width: 100, height: 100, channels: 3, testPercent: 10, categories: Array.from({ length: 10 }, (_, c) => `c${c}`) });
let s = 0x9e3779b9;
const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
const truth: number[] = [];
for (let start = 0; start < n; start += 10000) {
  const batch = [];
  for (let i = start; i < Math.min(n, start + 10000); i++) {
    truth.push(i % 10);
    const label = i % 100 === 37 ? (i + 1) % 10 : i % 10;
    batch.push({ sha256: i.toString(16).padStart(16, '0').repeat(4), category: `c${label}`, mediaType: 'image/png', bytes: 1, pixelSlot: i, splitBucket: next() % 100, perceptualHash: formatHash(next(), next()) });
  }
  await store.addSamples(dataset.id, batch);
}
const ids = (await store.eligibleSamples(dataset.id, { revision: (await store.getDataset('big'))!.revision, split: 'all' })).map((e) => e.id);
const nearDuplicates = new NearDuplicateService(store, { read: async () => { throw new Error('no pixels'); } } as never);
const review = new ReviewService(store, new SampleService(store, { get: async () => Buffer.alloc(0) } as never), nearDuplicates, systemClock, 10_000);
let t = performance.now();
for (let start = 0; start < ids.length; start += 10_000) {
  const items = ids.slice(start, start + 10_000).map((id, k) => {
    const i = start + k;
    const probs = new Array(10).fill(0.01);
    probs[truth[i]] = 0.91;
    const label = i % 100 === 37 ? (i + 1) % 10 : i % 10;
    return { id, probs, loss: -Math.log(probs[label]) };
  });
  await review.feedback('big', { items });
}
console.log(`feedback: ${n} reports in ${((performance.now() - t) / 1000).toFixed(2)} s (${Math.round(n / ((performance.now() - t) / 1000))} per s)`);
const rss0 = process.memoryUsage().rss;
for (const pass of ['first', 'again']) {
  t = performance.now();
  const page = await review.queue('big', { limit: 20 });
  console.log(`queue (${pass}): ${((performance.now() - t) / 1000).toFixed(2)} s, total ${page.total}, top reasons ${page.items[0].reasons.map((r) => r.kind).join('+')}, RSS +${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB`);
}
t = performance.now();
const first = (await review.queue('big', { limit: 1 })).items[0];
await review.decide('big', first.id, { decision: 'relabel' });
console.log(`relabel to the suggestion and the next queue: ${((performance.now() - t) / 1000).toFixed(2)} s`);
await store.close();
rmSync(dir, { recursive: true, force: true });
