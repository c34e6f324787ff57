import type { DatasetShape } from './dataset-shape.js';
import { WARP_RGB_WASM_BASE64 } from './warp-rgb.wasm.js';

interface WarpExports {
  readonly memory: WebAssembly.Memory;
  pad_rgb(source: number, padded: number, width: number, height: number): void;
  warp_rgb(padded: number, target: number, width: number, height: number, cos: number, sin: number): void;
}

const PAGE = 65536;
/** Slack after each region of the module's memory: the 16-byte loads and stores that run past an edge. */
const SLACK = 64;

/** The module, or undefined where WebAssembly SIMD is missing (the JavaScript warp then runs). */
const exports: WarpExports | undefined = (() => {
  try {
    const bytes = Buffer.from(WARP_RGB_WASM_BASE64, 'base64');
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as WarpExports;
  } catch {
    return undefined;
  }
})();

let memoryBytes: Uint8Array | undefined;

/**
 * warpFixedPoint for 3-channel samples in WebAssembly SIMD, with the same bytes as a result.
 * The sample is copied into the module's memory (the module then surrounds it with a black
 * border) and the result out of it. False when the module is unavailable.
 */
export function warpRgbSimd(source: Uint8Array, shape: DatasetShape, cos: number, sin: number, out: Uint8Array, outOffset: number): boolean {
  if (!exports) return false;
  const { width, height } = shape;
  const size = width * height * 3;
  // The sample, its padded copy ((height + 3) rows of width + 2 pixels: a border all round and
  // one row read with a zero weight) and the result, each followed by slack.
  const paddedAt = size + SLACK;
  const targetAt = paddedAt + (height + 3) * (width + 2) * 3 + SLACK;
  const needed = targetAt + size + SLACK;
  const memory = exports.memory;
  if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
  if (memoryBytes?.buffer !== memory.buffer) memoryBytes = new Uint8Array(memory.buffer);
  memoryBytes.set(source.subarray(0, size), 0);
  exports.pad_rgb(0, paddedAt, width, height);
  exports.warp_rgb(paddedAt, targetAt, width, height, cos, sin);
  out.set(memoryBytes.subarray(targetAt, targetAt + size), outOffset);
  return true;
}
