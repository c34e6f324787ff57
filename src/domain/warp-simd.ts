import type { DatasetShape } from './dataset-shape.js';
import { WARP_RGB_WASM_BASE64 } from './warp-rgb.wasm.js';

interface WarpExports {
  pad_rgb(source: number, padded: number, width: number, height: number): void;
  warp_rgb(padded: number, target: number, width: number, height: number, cos: number, sin: number, last: number): void;
}

const PAGE = 65536;
/** Slack after each region of the module's memory: the 16-byte loads and stores that run past an edge. */
const SLACK = 64;

/** The compiled module, or undefined where WebAssembly SIMD is missing (the JavaScript warp then runs). */
const module: WebAssembly.Module | undefined = (() => {
  try {
    return new WebAssembly.Module(Buffer.from(WARP_RGB_WASM_BASE64, 'base64'));
  } catch {
    return undefined;
  }
})();

const instantiate = (memory: WebAssembly.Memory): WarpExports =>
  new WebAssembly.Instance(module!, { env: { memory } }).exports as unknown as WarpExports;

/** The module over a memory of its own, for samples that are not in a WebAssembly memory already. */
const ownMemory = module ? new WebAssembly.Memory({ initial: 1 }) : undefined;
const own = ownMemory ? instantiate(ownMemory) : undefined;
/** The module over other memories (batch chunks), one instance per memory. */
const instances = new WeakMap<WebAssembly.Memory, WarpExports>();

let memoryBytes: Uint8Array | undefined;

/** Pixels of black border around the padded copy (warp-rgb.wat: a row's last group of four may compute up to 3 pixels past the positions it needs, each at most MAX_STEP pixels on). */
const BORDER = 8;
/** The largest |cos|, |sin| of the inverse map the module takes (scale 0.5 and up; augmentations go down to 0.7). */
const MAX_STEP = 2;

/** Bytes of the padded copy (height + 2 × BORDER rows of width + 2 × BORDER pixels) and the last row, each with slack. */
function scratchLayout(shape: DatasetShape): { padded: number; bytes: number } {
  const padded = (shape.height + 2 * BORDER) * (shape.width + 2 * BORDER) * 3 + SLACK;
  return { padded, bytes: padded + shape.width * 3 + SLACK };
}

/** Whether the module can take this inverse map (see MAX_STEP). */
const withinSteps = (cos: number, sin: number): boolean => Math.abs(cos) <= MAX_STEP && Math.abs(sin) <= MAX_STEP;

/** Scratch bytes that warpRgbInMemory needs, besides the sample itself; 0 where the module is unavailable. */
export function rgbWarpScratchBytes(shape: DatasetShape): number {
  return module ? scratchLayout(shape).bytes : 0;
}

/**
 * warpFixedPoint for 3-channel samples in WebAssembly SIMD, with the same bytes as a result.
 * The sample is copied into the module's memory (the module then surrounds it with a black
 * border) and the result out of it. False when the module is unavailable or the map steps
 * further than MAX_STEP pixels per pixel.
 */
export function warpRgbSimd(source: Uint8Array, shape: DatasetShape, cos: number, sin: number, out: Uint8Array, outOffset: number): boolean {
  if (!own || !ownMemory || !withinSteps(cos, sin)) return false;
  const size = shape.width * shape.height * 3;
  const scratchAt = size + SLACK;
  const targetAt = scratchAt + scratchLayout(shape).bytes;
  const needed = targetAt + size + SLACK;
  if (ownMemory.buffer.byteLength < needed) ownMemory.grow(Math.ceil((needed - ownMemory.buffer.byteLength) / PAGE));
  if (memoryBytes?.buffer !== ownMemory.buffer) memoryBytes = new Uint8Array(ownMemory.buffer);
  memoryBytes.set(source.subarray(0, size), 0);
  warpWith(own, shape, 0, targetAt, scratchAt, cos, sin);
  out.set(memoryBytes.subarray(targetAt, targetAt + size), outOffset);
  return true;
}

/**
 * The same warp on a sample that lies in a WebAssembly memory at `at`, written back over it:
 * no copy in or out. `scratchAt`: rgbWarpScratchBytes(shape) bytes of the same memory that
 * nothing else uses meanwhile. Only the sample's own bytes and the scratch are written. False
 * when the module is unavailable or the map steps further than MAX_STEP pixels per pixel.
 */
export function warpRgbInMemory(memory: WebAssembly.Memory, at: number, shape: DatasetShape, cos: number, sin: number, scratchAt: number): boolean {
  if (!module || !withinSteps(cos, sin)) return false;
  let exports = instances.get(memory);
  if (!exports) {
    exports = instantiate(memory);
    instances.set(memory, exports);
  }
  warpWith(exports, shape, at, at, scratchAt, cos, sin);
  return true;
}

function warpWith(exports: WarpExports, shape: DatasetShape, sourceAt: number, targetAt: number, scratchAt: number, cos: number, sin: number): void {
  const { width, height } = shape;
  const { padded } = scratchLayout(shape);
  exports.pad_rgb(sourceAt, scratchAt, width, height);
  exports.warp_rgb(scratchAt, targetAt, width, height, cos, sin, scratchAt + padded);
}
