/** Fills `target` with the uint8 pixels of plan samples [start, start + count). */
export type Render = (start: number, count: number, target: Uint8Array) => Promise<void>;

/**
 * Makes the buffer that a Render fills, `bytes` long (a chunk of the chunk pool, given back with
 * releaseChunk): a render may want its targets made its own way, over a WebAssembly memory with
 * room after them, say, so that a kernel writes the pixels where they are sent from.
 */
export type TakeTarget = (bytes: number) => Buffer;

/**
 * The uint8 pixels of every plan sample, in order, as views of bytes already in memory (an
 * order's result messages): a response in the records' own layout sends them as they are,
 * without copying them into chunks first. The views must not change until the response is done.
 */
export type PixelViews = () => readonly Uint8Array[];

/**
 * A response body produced chunk by chunk; the length is known up front for safetensors. Chunks
 * may come from the chunk pool (src/lib/chunk-pool.ts): a consumer may give each back with
 * releaseChunk once it no longer reads it, or simply drop it.
 */
export interface EncodedBatch {
  readonly contentLength?: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}
