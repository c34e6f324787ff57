/**
 * The measurement behind the choice of multi-index hashing (docs/design.md, "Perceptual hashes and
 * near-duplicates"): a BK-tree in typed arrays beside the multi-index and a linear popcount scan,
 * on random 64-bit hashes. `node --import tsx bench/hamming-structures.ts [count]` (default 1,000,000).
 */
import { popcount32 } from '../src/domain/perceptual-hash.js';
import { HammingIndex, linearNear } from '../src/domain/hamming-index.js';
const n = Number(process.argv[2] ?? 1_000_000);
let s = 0x9e3779b9;
const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
const hi = new Uint32Array(n), lo = new Uint32Array(n);
for (let i = 0; i < n; i++) { hi[i] = next(); lo[i] = next(); }
// BK-tree in typed arrays: first child, next sibling, distance to parent.
const first = new Int32Array(n).fill(-1), sibling = new Int32Array(n).fill(-1), edge = new Uint8Array(n);
const dist = (a: number, b: number) => popcount32((hi[a] ^ hi[b]) >>> 0) + popcount32((lo[a] ^ lo[b]) >>> 0);
let t = performance.now();
for (let i = 1; i < n; i++) {
  let node = 0;
  for (;;) {
    const d = dist(i, node);
    let c = first[node];
    while (c !== -1 && edge[c] !== d) c = sibling[c];
    if (c === -1) { edge[i] = d; sibling[i] = first[node]; first[node] = i; break; }
    node = c;
  }
}
console.log('bk build', (performance.now() - t).toFixed(0), 'ms');
const index = new HammingIndex(hi, lo);
for (const D of [3, 6]) {
  let visited = 0; const stack = new Int32Array(n);
  t = performance.now();
  for (let q = 0; q < 100; q++) {
    const qh = hi[q * 7919 % n], ql = lo[q * 7919 % n];
    let sp = 0; stack[sp++] = 0;
    while (sp) { const node = stack[--sp]; visited++; const d = popcount32((hi[node] ^ qh) >>> 0) + popcount32((lo[node] ^ ql) >>> 0);
      for (let c = first[node]; c !== -1; c = sibling[c]) if (edge[c] >= d - D && edge[c] <= d + D) stack[sp++] = c; }
  }
  const bk = (performance.now() - t) / 100;
  t = performance.now();
  for (let q = 0; q < 100; q++) index.near(hi[q * 7919 % n], lo[q * 7919 % n], D, () => 0);
  const mih = (performance.now() - t) / 100;
  t = performance.now();
  for (let q = 0; q < 10; q++) linearNear(hi, lo, hi[q], lo[q], D, () => 0);
  const lin = (performance.now() - t) / 10;
  console.log(`D=${D}: bk-tree ${bk.toFixed(3)} ms/query visiting ${(visited / 100 / n * 100).toFixed(1)}% of nodes; MIH ${mih.toFixed(3)} ms; linear ${lin.toFixed(2)} ms`);
}
