import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { RECORD_BYTES, SIDE } from './images.js';
import { runPool } from './pool.js';

const BLACK = { r: 0, g: 0, b: 0 };

/**
 * The reference for figure 3: the same decode and the same durable writes as an ingest, in this
 * process, with no HTTP and no database. For each PNG: decode with sharp to 100×100×3 raw by the
 * service's own pipeline; write the original bytes atomically (temp file, fsync, rename into a
 * shard directory, fsync that directory); write the 30,000-byte pixel record at its slot with a
 * positional write + fdatasync into one pixel file per run. Every sample pays its own syncs.
 */
export async function referenceIngest(pngs: readonly Buffer[], root: string, concurrency: number, deadline: number): Promise<{ done: number; seconds: number }> {
  const tmp = join(root, 'tmp');
  await mkdir(tmp, { recursive: true });
  const pixels = await open(join(root, 'pixels.u8'), 'w+');
  const shards = new Map<string, Promise<unknown>>();
  let slot = 0;
  try {
    const started = performance.now();
    const done = await runPool(
      pngs,
      concurrency,
      async (png) => {
        const sha256 = createHash('sha256').update(png).digest('hex');
        const { data, info } = await sharp(png, { failOn: 'error', pages: 1 })
          .resize(SIDE, SIDE, { fit: 'fill' })
          .flatten({ background: BLACK })
          .toColourspace('srgb')
          .raw({ depth: 'uchar' })
          .toBuffer({ resolveWithObject: true });
        if (data.length !== RECORD_BYTES || info.channels !== 3) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);

        const shard = join(root, sha256.slice(0, 2));
        let made = shards.get(shard);
        if (!made) shards.set(shard, (made = mkdir(shard, { recursive: true })));
        await made;
        const temp = join(tmp, `${process.pid}.${randomBytes(8).toString('hex')}`);
        const file = await open(temp, 'wx');
        try {
          await file.writeFile(png);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temp, join(shard, sha256));
        const dir = await open(shard, 'r');
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }

        const at = slot++;
        await pixels.write(data, 0, data.length, at * RECORD_BYTES);
        await pixels.datasync();
      },
      deadline,
    );
    return { done, seconds: (performance.now() - started) / 1000 };
  } finally {
    await pixels.close();
  }
}
