import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { recordBytes } from '../../domain/dataset-shape.js';
import { perceptualHash } from '../../domain/perceptual-hash.js';
import { collectYoung } from '../../lib/external-garbage.js';
import type { DigestJob, DigestReply, DigestThreadData } from './decode-threads.js';
import { decodePng, readPngHeader } from './png.decoder.js';

const { maxPixels, arena, slotBytes } = workerData as DigestThreadData;

/** Items between two minor collections: each decode leaves its inflate buffer (see collectYoung). */
const COLLECT_EVERY = 128;
let sinceCollected = 0;

// One thread of DecodeThreads: the SHA-256 of each upload and, for a PNG the lean path decodes
// within the limits, its pixels and their perceptual hash. Anything else is left to the caller
// (sharp, and the refusals it words), so this thread never refuses an image itself.
parentPort?.on('message', (jobs: DigestJob[]) => {
  const replies = jobs.map(digest);
  sinceCollected += jobs.length;
  if (sinceCollected >= COLLECT_EVERY) {
    sinceCollected = 0;
    collectYoung();
  }
  const transfer: ArrayBuffer[] = [];
  for (const reply of replies) if (reply.pixels) transfer.push(reply.pixels.buffer as ArrayBuffer);
  parentPort?.postMessage(replies, transfer);
});

function digest(job: DigestJob): DigestReply {
  try {
    const inArena = 'slot' in job;
    const bytes = inArena ? Buffer.from(arena, job.slot * slotBytes, job.length) : Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const header = readPngHeader(bytes);
    const pixels = header && header.width * header.height <= maxPixels ? decodePng(bytes, job.shape) : undefined;
    if (!pixels) return { id: job.id, sha256 };
    if (pixels.length !== recordBytes(job.shape)) throw new Error(`decoded ${pixels.length} bytes, not ${recordBytes(job.shape)}`);
    const hash = perceptualHash(pixels, job.shape);
    if (inArena) {
      new Uint8Array(arena, job.slot * slotBytes + job.pixelsAt, pixels.length).set(pixels);
      return { id: job.id, sha256, decoded: true, perceptualHash: hash };
    }
    // A view of the inflate buffer, handed over without a copy; a small one may lie in Node's
    // shared buffer pool, which must not be taken from this thread: it is copied.
    const own = pixels.byteLength >= Buffer.poolSize >>> 1 ? pixels : new Uint8Array(pixels);
    return { id: job.id, sha256, decoded: true, pixels: own, perceptualHash: hash };
  } catch (error) {
    return { id: job.id, error: error instanceof Error ? error.message : String(error) };
  }
}
