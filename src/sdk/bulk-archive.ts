import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { readSource, type UploadSource } from './upload-source.js';

/** One item of a bulk upload. */
export interface BulkItem {
  readonly category: string;
  readonly source: UploadSource;
  /** Its file name in the archive (its receipt's path is `<category>/<name>`); by default the file's base name, else its position. */
  readonly name?: string;
}

/** Sources are read ahead of the network by at most about this much: memory stays flat however many items. */
const AHEAD_BYTES = 4 * 1024 * 1024;

/** A tar of `<category>/<name>` members, one per item in order, each source read as its turn comes. */
export function tarOfItems(items: readonly BulkItem[], onItemSent?: (sent: number) => void): Readable {
  return Readable.from(archiveChunks(items, onItemSent), { objectMode: false });
}

async function* archiveChunks(items: readonly BulkItem[], onItemSent?: (sent: number) => void): AsyncGenerator<Buffer> {
  const archive = pack();
  let packed = 0;
  let sent = 0;
  let wake: (() => void) | undefined;
  const feeding = (async () => {
    for (const [i, item] of items.entries()) {
      while (packed - sent > AHEAD_BYTES) await new Promise<void>((resolve) => (wake = resolve));
      const { bytes, name } = await readSource(item.source);
      const file = item.name ?? (name ? basename(name) : `${i}`);
      await new Promise<void>((resolve, reject) =>
        archive.entry({ name: `${item.category}/${file}`, size: bytes.length, mode: 0o644 }, bytes, (error) => (error ? reject(error) : resolve())),
      );
      packed += bytes.length + 1024;
      onItemSent?.(i + 1);
    }
    archive.finalize();
  })();
  feeding.catch((error: unknown) => archive.destroy(error as Error));
  for await (const chunk of archive as AsyncIterable<Buffer>) {
    sent += chunk.length;
    wake?.();
    wake = undefined;
    yield chunk;
  }
  await feeding;
}
