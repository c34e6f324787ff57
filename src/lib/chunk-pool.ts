/**
 * Reused buffers for the chunks of streamed batch responses.
 *
 * A fresh buffer per chunk costs a memory mapping, a page fault per 4 KiB page on first touch
 * and a garbage collection later: a 30 MB batch spent more CPU on that than on copying its
 * pixels. `takeChunk` hands out a buffer from a free list instead (touched once when it was
 * made); whoever holds it last gives it back with `releaseChunk` once nothing reads it any more
 * (a response: once its bytes were handed to the kernel). A buffer never given back is simply
 * garbage-collected, so forgetting a release costs speed, never correctness; releasing a buffer
 * something still reads is the one mistake to avoid.
 */

/** Buffers are made in power-of-two sizes from 64 KiB to 8 MiB; larger requests are not pooled. */
const MIN_CLASS = 64 * 1024;
const MAX_CLASS = 8 * 1024 * 1024;
/**
 * Idle pooled bytes kept at most; buffers given back beyond that are left to the collector. An
 * order's result messages come back a poll's worth at a time (4,096 samples of 30 KB are 120 MiB)
 * just before the worker needs as many again, and a polled stream holds its queue plus the
 * answer being sent (about 250 MiB of such messages): with a smaller cap many of them were made
 * anew (a mapping, a page fault per 4 KiB, garbage) on every poll. A buffer is made only when
 * none of its size is idle, so for one size idle and lent bytes together never pass the peak of
 * what was lent: the cap adds nothing to that peak.
 */
const MAX_IDLE_BYTES = 256 * 1024 * 1024;
/** Idle bytes kept for good: what lies idle beyond this is trimmed once no buffer was taken for TRIM_AFTER_MS. */
const KEEP_IDLE_BYTES = 48 * 1024 * 1024;
export const TRIM_AFTER_MS = 2000;

const idle = new Map<number, Buffer[]>();
/** Idle buffers over WebAssembly memories, by size (see takeWasmChunk). */
const idleWasm = new Map<number, Buffer[]>();
const lent = new WeakSet<ArrayBufferLike>();
/** The memory behind each buffer takeWasmChunk made. */
const memories = new WeakMap<ArrayBufferLike, WebAssembly.Memory>();
/** Views that their holder must not give back (see borrowedView). */
const borrowed = new WeakSet<Uint8Array>();
let idleBytes = 0;
/** When a buffer was last taken (performance.now()), and the pending trim of idle bytes, if any. */
let lastTake = 0;
let trimTimer: NodeJS.Timeout | undefined;
/** Bytes handed out and not given back yet, and buffers made (for tests: a leak shows in both). */
let lentBytes = 0;
let madeBuffers = 0;
const WASM_PAGE = 64 * 1024;

function sizeClass(bytes: number): number {
  let size = MIN_CLASS;
  while (size < bytes) size *= 2;
  return size;
}

/**
 * A buffer of exactly `bytes` bytes (contents undefined) starting at offset 0 of its own
 * ArrayBuffer, so typed-array views on it are aligned.
 */
export function takeChunk(bytes: number): Buffer {
  if (bytes > MAX_CLASS) return Buffer.allocUnsafeSlow(bytes);
  lastTake = performance.now();
  const size = sizeClass(bytes);
  const reused = idle.get(size)?.pop();
  if (reused) idleBytes -= size;
  if (!reused) madeBuffers++;
  const whole = reused ?? Buffer.allocUnsafeSlow(size).fill(0);
  lent.add(whole.buffer);
  lentBytes += size;
  return whole.subarray(0, bytes);
}

/**
 * Like takeChunk, over the whole memory of a WebAssembly instance-to-be (a kernel writes into it
 * where JavaScript would pay a bounds check per byte, see src/formats/rgb-text.wasm.ts), given
 * back with releaseChunk the same way. Undefined when no such memory can be had (each one
 * reserves address space of its own): the caller falls back to takeChunk.
 */
export function takeWasmChunk(bytes: number): { chunk: Buffer; memory: WebAssembly.Memory } | undefined {
  if (bytes > MAX_CLASS) return undefined;
  lastTake = performance.now();
  const size = sizeClass(bytes);
  let whole = idleWasm.get(size)?.pop();
  if (whole) idleBytes -= size;
  else {
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: size / WASM_PAGE, maximum: size / WASM_PAGE });
    } catch {
      return undefined;
    }
    whole = Buffer.from(memory.buffer).fill(0);
    memories.set(memory.buffer, memory);
    madeBuffers++;
  }
  lent.add(whole.buffer);
  lentBytes += size;
  return { chunk: whole.subarray(0, bytes), memory: memories.get(whole.buffer)! };
}

/** The WebAssembly memory under a buffer from takeWasmChunk (or a view of one), else undefined. */
export function wasmMemoryOf(chunk: Uint8Array): WebAssembly.Memory | undefined {
  return memories.get(chunk.buffer);
}

/**
 * Marks a view of a buffer that someone else owns and gives back (an order's result message,
 * sent as it is by a response): releaseChunk ignores the view, whatever buffer it is on.
 */
export function borrowedView<T extends Uint8Array>(view: T): T {
  borrowed.add(view);
  return view;
}

/** Buffers owned elsewhere and lent as chunks (see adoptChunk), with what gives each back. */
const adopted = new WeakMap<ArrayBufferLike, () => void>();

/**
 * Lends a view of a buffer that another pool owns (a warp thread arena) as a chunk: releaseChunk
 * calls `giveBack` once, instead of pooling the buffer here. disownChunk cancels that (the
 * owner's memory must then be left to the collector: something may still write into it).
 */
export function adoptChunk<T extends Uint8Array>(view: T, giveBack: () => void): T {
  adopted.set(view.buffer, giveBack);
  return view;
}

export function disownChunk(view: Uint8Array): void {
  adopted.delete(view.buffer);
}

/** Gives a buffer from takeChunk, takeWasmChunk or adoptChunk back; anything else (a borrowed view, a second release) is ignored. */
export function releaseChunk(chunk: Uint8Array): void {
  if (borrowed.has(chunk)) return;
  const giveBack = adopted.get(chunk.buffer);
  if (giveBack) {
    adopted.delete(chunk.buffer);
    giveBack();
    return;
  }
  const buffer = chunk.buffer;
  if (!lent.has(buffer)) return;
  lent.delete(buffer);
  const size = buffer.byteLength;
  lentBytes -= size;
  const lists = memories.has(buffer) ? idleWasm : idle;
  const list = lists.get(size);
  if (idleBytes + size > MAX_IDLE_BYTES && !makeRoom(size, list)) return;
  idleBytes += size;
  const whole = Buffer.from(buffer, 0, size);
  if (list) list.push(whole);
  else lists.set(size, [whole]);
  if (idleBytes > KEEP_IDLE_BYTES && !trimTimer) scheduleTrim(TRIM_AFTER_MS);
}

function scheduleTrim(ms: number): void {
  trimTimer = setTimeout(() => {
    trimTimer = undefined;
    const quiet = performance.now() - lastTake;
    if (quiet >= TRIM_AFTER_MS) trimIdleChunks();
    else if (idleBytes > KEEP_IDLE_BYTES) scheduleTrim(TRIM_AFTER_MS - quiet);
  }, ms);
  trimTimer.unref();
}

/**
 * Leaves idle buffers beyond KEEP_IDLE_BYTES to the collector (called by a timer once no buffer
 * was taken for TRIM_AFTER_MS: the burst that needed them is over).
 */
export function trimIdleChunks(): void {
  for (const lists of [idle, idleWasm]) {
    for (const list of lists.values()) {
      while (list.length > 0 && idleBytes > KEEP_IDLE_BYTES) idleBytes -= list.pop()!.buffer.byteLength;
    }
  }
}

/**
 * Leaves idle buffers of other sizes and kinds to the collector, oldest size first, until `size`
 * more bytes fit under the cap: the buffers of what runs now (JSON batches after safetensors
 * ones, say) are worth keeping, those of what ran before less so; dropping the buffer given back
 * instead would make a new one (a mapping and its page faults) for every chunk.
 */
function makeRoom(size: number, keep: Buffer[] | undefined): boolean {
  for (const lists of [idle, idleWasm]) {
    for (const list of lists.values()) {
      if (list === keep) continue;
      while (list.length > 0 && idleBytes + size > MAX_IDLE_BYTES) idleBytes -= list.pop()!.buffer.byteLength;
    }
  }
  return idleBytes + size <= MAX_IDLE_BYTES;
}

/** Idle bytes held by the pool (for tests). */
export function idleChunkBytes(): number {
  return idleBytes;
}

/** Pooled bytes handed out and not given back, and pooled buffers made so far (for tests). */
export function chunkPoolStats(): { lentBytes: number; madeBuffers: number } {
  return { lentBytes, madeBuffers };
}
