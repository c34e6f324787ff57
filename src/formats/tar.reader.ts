import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';

export interface TarEntry {
  /** The member's path, without a leading `./`. */
  readonly path: string;
  /** A regular file (anything else — folders, links — has no content to read). */
  readonly isFile: boolean;
  /** The size the header declares. */
  readonly size: number;
  /** The member's bytes; read them all, or call skip(), before the next entry comes. */
  readAll(): Promise<Buffer>;
  skip(): void;
}

/**
 * The members of a tar (or gzipped tar) stream, one at a time, never the whole archive in
 * memory. A stream that is not a tar, or is cut short, throws from the iteration.
 */
export async function* tarEntries(body: Readable, gzipped: boolean): AsyncGenerator<TarEntry> {
  const extract = tarExtract();
  const reading = gzipped ? pipeline(body, createGunzip(), extract) : pipeline(body, extract);
  reading.catch(() => undefined);
  for await (const entry of extract) {
    yield {
      path: entry.header.name.replace(/^\.\//, ''),
      isFile: entry.header.type === 'file',
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
  return Buffer.concat(chunks);
}
