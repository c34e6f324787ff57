import type { DatasetShape } from './dataset-shape.js';
import { WARP_RGB_WASM_BASE64 } from './warp-rgb.wasm.js';

interface WarpExports {
  readonly memory: WebAssembly.Memory;
  warp_rgb(source: number, target: number, width: number, height: number, cos: number, sin: number): void;
}

const PAGE = 65536;

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
 * The sample is copied into the module's memory and the result out of it. False when the
 * module is unavailable.
 */
export function warpRgbSimd(source: Uint8Array, shape: DatasetShape, cos: number, sin: number, out: Uint8Array, outOffset: number): boolean {
  if (!exports) return false;
  const size = shape.width * shape.height * 3;
  // Source at 0, result after it, and the one byte of slack the last 4-byte store needs.
  const needed = 2 * size + 8;
  const memory = exports.memory;
  if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
  if (memoryBytes?.buffer !== memory.buffer) memoryBytes = new Uint8Array(memory.buffer);
  memoryBytes.set(source.subarray(0, size), 0);
  exports.warp_rgb(0, size, shape.width, shape.height, cos, sin);
  out.set(memoryBytes.subarray(size, 2 * size), outOffset);
  return true;
}
