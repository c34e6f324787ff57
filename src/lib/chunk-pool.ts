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
/** Idle pooled bytes kept at most; buffers given back beyond that are left to the collector. */
const MAX_IDLE_BYTES = 48 * 1024 * 1024;

const idle = new Map<number, Buffer[]>();
const lent = new WeakSet<ArrayBufferLike>();
/** Views that their holder must not give back (see borrowedView). */
const borrowed = new WeakSet<Uint8Array>();
let idleBytes = 0;

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
  const size = sizeClass(bytes);
  const reused = idle.get(size)?.pop();
  if (reused) idleBytes -= size;
  const whole = reused ?? Buffer.allocUnsafeSlow(size).fill(0);
  lent.add(whole.buffer);
  return whole.subarray(0, bytes);
}

/**
 * Marks a view of a buffer that someone else owns and gives back (an order's result message,
 * sent as it is by a response): releaseChunk ignores the view, whatever buffer it is on.
 */
export function borrowedView<T extends Uint8Array>(view: T): T {
  borrowed.add(view);
  return view;
}

/** Gives a buffer from takeChunk back; anything else (a borrowed view, a second release) is ignored. */
export function releaseChunk(chunk: Uint8Array): void {
  if (borrowed.has(chunk)) return;
  const buffer = chunk.buffer;
  if (!lent.has(buffer)) return;
  lent.delete(buffer);
  const size = buffer.byteLength;
  if (idleBytes + size > MAX_IDLE_BYTES) return;
  idleBytes += size;
  const list = idle.get(size);
  const whole = Buffer.from(buffer, 0, size);
  if (list) list.push(whole);
  else idle.set(size, [whole]);
}

/** Idle bytes held by the pool (for tests). */
export function idleChunkBytes(): number {
  return idleBytes;
}
