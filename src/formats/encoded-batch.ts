/** Fills `target` with the uint8 pixels of plan samples [start, start + count). */
export type Render = (start: number, count: number, target: Uint8Array) => Promise<void>;

/**
 * A response body produced chunk by chunk; the length is known up front for safetensors. Chunks
 * may come from the chunk pool (src/lib/chunk-pool.ts): a consumer may give each back with
 * releaseChunk once it no longer reads it, or simply drop it.
 */
export interface EncodedBatch {
  readonly contentLength?: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}
