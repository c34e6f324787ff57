/** Gives the buffer an answer's body is read into, once its length is known. */
export type BodyAllocator = (length: number) => Buffer;

/** A buffer of its own (offset 0, so typed views on it align), in memory never touched before. */
export const freshBody: BodyAllocator = (length) => Buffer.allocUnsafeSlow(length);

/**
 * The client's own receive buffer for calls made with `reuse`: allocated once, grown when an
 * answer is larger, and read into again by the next such call. A fresh 30 MB buffer per batch
 * costs a page fault per 4 KiB page the first time the socket writes into it (7,300 per batch,
 * most of the client's CPU), and Node frees the previous batch's memory only when the garbage
 * collector gets to it; a reused buffer is memory the process has touched already.
 *
 * One call at a time holds it: a reuse call made while another one is reading gets a fresh
 * buffer of its own instead, so two answers never share bytes.
 */
export class ReceiveBuffer {
  private buffer: Buffer | undefined;
  private held = false;

  /** The allocator for one call, and its release; undefined while another call holds the buffer. */
  hold(): { allocate: BodyAllocator; release(): void } | undefined {
    if (this.held) return undefined;
    this.held = true;
    let released = false;
    return {
      allocate: (length) => {
        if (released) return freshBody(length);
        if (!this.buffer || this.buffer.length < length) this.buffer = Buffer.allocUnsafeSlow(Math.max(length, Math.floor(((this.buffer?.length ?? 0) * 5) / 4)));
        return this.buffer.subarray(0, length);
      },
      release: () => {
        if (released) return;
        released = true;
        this.held = false;
      },
    };
  }
}

/** `parts` joined into one buffer from `allocate`. */
export function gather(parts: readonly Buffer[], allocate: BodyAllocator): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const body = allocate(length);
  let at = 0;
  for (const part of parts) at += part.copy(body, at);
  return body;
}
