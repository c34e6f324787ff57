import { Readable, type Writable } from 'node:stream';
import { releaseChunk } from '../lib/chunk-pool.js';

/**
 * The chunks of an encoded batch as the body stream of one response, giving each pooled chunk
 * back to the pool once the response has handed its bytes to the kernel.
 *
 * A byte counted in neither this stream's buffer (`readableLength`) nor the response's
 * (`writableLength`: what the response and its socket hold until each write completes) has left
 * the process, so every chunk that ended before it is free. Whatever is still held when the
 * response finishes or closes is given back then: after `close` the socket is gone and nothing
 * reads the memory any more.
 */
export class EncodedBodyStream extends Readable {
  private readonly source: AsyncIterator<Uint8Array>;
  private pulling = false;
  private pushedBytes = 0;
  /** Chunks pushed and maybe still held, oldest first, with the bytes pushed up to each one's end. */
  private readonly held: { chunk: Uint8Array; end: number }[] = [];

  constructor(
    chunks: AsyncIterable<Uint8Array>,
    private readonly response: Writable,
  ) {
    super();
    this.source = chunks[Symbol.asyncIterator]();
    const releaseAll = () => {
      for (const { chunk } of this.held.splice(0)) releaseChunk(chunk);
    };
    response.once('finish', releaseAll);
    response.once('close', releaseAll);
  }

  override _read(): void {
    if (this.pulling) return;
    this.pulling = true;
    this.releaseSent();
    this.source.next().then(
      (result) => {
        this.pulling = false;
        if (result.done) {
          this.push(null);
          return;
        }
        const chunk = result.value;
        if (this.destroyed || this.response.destroyed) {
          releaseChunk(chunk);
          return;
        }
        this.pushedBytes += chunk.length;
        this.held.push({ chunk, end: this.pushedBytes });
        this.push(chunk);
      },
      (error: unknown) => {
        this.pulling = false;
        this.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Ends the encoder (its finally blocks give back the buffers it was rendering into).
    const stopped = this.source.return?.();
    if (stopped) stopped.then(undefined, () => undefined);
    callback(error);
  }

  private releaseSent(): void {
    const sent = this.pushedBytes - this.readableLength - this.response.writableLength;
    while (this.held.length > 0 && this.held[0].end <= sent) releaseChunk(this.held.shift()!.chunk);
  }
}
