import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';

export interface TarEntry {
  /** The member's path as the archive names it. */
  readonly path: string;
  /** tar's member type: file, directory, symlink, link, character-device, fifo, … */
  readonly type: string;
  /** A regular file (anything else — folders, links — has no content to read). */
  readonly isFile: boolean;
  /** The size the header declares. */
  readonly size: number;
  /** The member's bytes; read them all, or call skip(), before the next entry comes. */
  readAll(): Promise<Buffer>;
  skip(): void;
}

/** Bytes of the request body read so far (before any gunzip). */
export interface BodyCounter {
  bytes: number;
}

/**
 * The members of a tar (or gzipped tar) stream, one at a time, never the whole archive in
 * memory. A stream that is not a tar, or is cut short, throws from the iteration.
 */
export async function* tarEntries(body: Readable, gzipped: boolean, counter: BodyCounter = { bytes: 0 }): AsyncGenerator<TarEntry> {
  const extract = tarExtract();
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
  const reading = gzipped ? pipeline(body, count, createGunzip(), extract) : pipeline(body, count, extract);
  reading.catch(() => undefined);
  for await (const entry of extract) {
    yield {
      path: entry.header.name,
      type: entry.header.type ?? 'file',
      isFile: entry.header.type === 'file' || entry.header.type === 'contiguous-file',
      size: entry.header.size ?? 0,
      readAll: () => collect(entry),
      skip: () => entry.resume(),
    };
  }
  await reading;
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}
