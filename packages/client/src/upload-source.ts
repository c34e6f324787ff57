import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** A sample to upload: a file path (or file: URL), its bytes, or a stream of them. */
export type UploadSource = string | URL | Buffer | Uint8Array | Readable | AsyncIterable<Uint8Array>;

/** The most a stream is read into memory (the service's own ceiling for SENSORY_MAX_SAMPLE_BYTES). */
const MAX_STREAM_BYTES = 1024 * 1024 * 1024;

const BY_EXTENSION: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/**
 * The whole upload in memory: a retry must send the same bytes again, and a stream can be read
 * only once (samples are small: the service refuses more than SENSORY_MAX_SAMPLE_BYTES).
 */
export async function readSource(source: UploadSource): Promise<{ bytes: Buffer; name?: string }> {
  if (typeof source === 'string') return { bytes: await readFile(source), name: source };
  if (source instanceof URL) return { bytes: await readFile(source), name: fileURLToPath(source) };
  if (Buffer.isBuffer(source)) return { bytes: source };
  if (source instanceof Uint8Array) return { bytes: Buffer.from(source.buffer, source.byteOffset, source.byteLength) };
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += bytes.length;
    if (total > MAX_STREAM_BYTES) throw new RangeError(`the upload stream is longer than ${MAX_STREAM_BYTES} bytes`);
    chunks.push(bytes);
  }
  return { bytes: Buffer.concat(chunks, total) };
}

/** The image type from the first bytes, else the file extension. */
export function mediaTypeOf(bytes: Buffer, name?: string): string | undefined {
  const starts = (...values: number[]) => values.every((value, i) => bytes[i] === value);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'image/tiff';
  return name ? BY_EXTENSION[extname(name).toLowerCase()] : undefined;
}
