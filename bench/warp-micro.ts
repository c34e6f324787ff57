/**
 * The augmentation warp alone, in one process: CPU per sample (user + sys) of the previous RGB
 * warp module (bench/warp-previous.wasm.ts) and of today's warpInto, alternating in rounds, on
 * the shapes below; then the share of bytes where the two differ and the largest difference.
 * Not a test: a figure to read beside its reference, as `npm run bench` does.
 *
 *   node --import tsx bench/warp-micro.ts [rounds]
 */
import { drawAugment, warpInto, type Augment } from '../src/domain/augmentation.js';
import type { DatasetShape } from '../src/domain/dataset-shape.js';
import { PREVIOUS_WARP_RGB_WASM_BASE64 } from './warp-previous.wasm.js';

interface PreviousExports {
  pad_rgb(source: number, padded: number, width: number, height: number): void;
  warp_rgb(padded: number, target: number, width: number, height: number, cos: number, sin: number, last: number): void;
}
const previousMemory = new WebAssembly.Memory({ initial: 1 });
const previous = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(PREVIOUS_WARP_RGB_WASM_BASE64, 'base64')), {
  env: { memory: previousMemory },
}).exports as unknown as PreviousExports;

/** The previous module's JavaScript side, as it was (src/domain/warp-simd.ts): copy in, pad, warp, copy out. */
function previousWarp(source: Uint8Array, shape: DatasetShape, augment: Augment, out: Uint8Array, outOffset: number): void {
  const theta = (augment.rotation * Math.PI) / 180;
  const { width, height } = shape;
  const size = width * height * 3;
  const scratchAt = size + 64;
  const padded = (height + 3) * (width + 2) * 3 + 64;
  const targetAt = scratchAt + padded + width * 3 + 64;
  const needed = targetAt + size + 64;
  if (previousMemory.buffer.byteLength < needed) previousMemory.grow(Math.ceil((needed - previousMemory.buffer.byteLength) / 65536));
  const bytes = new Uint8Array(previousMemory.buffer);
  bytes.set(source.subarray(0, size), 0);
  previous.pad_rgb(0, scratchAt, width, height);
  previous.warp_rgb(scratchAt, targetAt, width, height, Math.cos(theta) / augment.scale, Math.sin(theta) / augment.scale, scratchAt + padded);
  out.set(bytes.subarray(targetAt, targetAt + size), outOffset);
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const rounds = Number(process.argv[2] ?? 7);
const shapes: DatasetShape[] = [
  { width: 100, height: 100, channels: 3 },
  { width: 224, height: 224, channels: 3 },
  { width: 28, height: 28, channels: 1 },
];
for (const shape of shapes) {
  const size = shape.width * shape.height * shape.channels;
  // 1,000 samples of noise, as a batch of 1,000 holds, each with its own seeded augmentation.
  const count = Math.max(50, Math.min(1000, Math.floor(30e6 / size)));
  const sources = new Uint8Array(count * size);
  for (let i = 0; i < sources.length; i++) sources[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  const augments = Array.from({ length: count }, (_, slot) => drawAugment(300, slot, 1));
  const outputs = { previous: new Uint8Array(count * size), today: new Uint8Array(count * size) };
  const warps = shape.channels === 3 ? { previous: previousWarp, today: warpInto } : { today: warpInto };
  const times: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, warp] of Object.entries(warps)) {
      const started = cpuMs();
      for (let i = 0; i < count; i++) warp(sources.subarray(i * size, (i + 1) * size), shape, augments[i], outputs[name as keyof typeof outputs], i * size);
      (times[name] ??= []).push(((cpuMs() - started) * 1000) / count);
    }
  }
  const line = Object.entries(times).map(([name, t]) => `${name} ${median(t).toFixed(1)} µs`).join(', ');
  let differing = 0;
  let largest = 0;
  if (warps.previous) {
    for (let i = 0; i < outputs.today.length; i++) {
      const difference = Math.abs(outputs.today[i] - outputs.previous[i]);
      if (difference) differing++;
      if (difference > largest) largest = difference;
    }
  }
  const ratio = times.previous ? ` (×${(median(times.previous) / median(times.today)).toFixed(2)} faster)` : '';
  const diff = warps.previous ? `; ${((differing / outputs.today.length) * 100).toFixed(3)} % of values differ, by at most ${largest}` : '';
  process.stdout.write(`${shape.width}×${shape.height}×${shape.channels}, ${count} samples, CPU per sample (median of ${rounds}): ${line}${ratio}${diff}\n`);
}
