import type { Readable } from 'node:stream';
import { memberPlace } from '../domain/archive-paths.js';
import { SensoryError, isSensoryError } from '../domain/errors.js';
import { sampleFilename } from '../domain/sample-annotations.js';
import { tarEntries, type BodyCounter } from '../formats/tar.reader.js';

/** One member of an uploaded archive that is an item: a file to store, or the reason it cannot be. */
export type ArchiveItem =
  | { readonly path: string; readonly category: string; readonly bytes: Buffer; readonly filename?: string }
  | { readonly path: string; readonly error: SensoryError };

export interface ArchiveLimits {
  /** SENSORY_MAX_SAMPLE_BYTES: a larger member is refused without reading it into memory. */
  readonly maxSampleBytes: number;
  /** Items per request: past it the request stops with 413 (what came before is kept). */
  readonly maxItems: number;
}

/** How far a broken archive was read: every item before the break was handed out. */
export class BrokenArchive extends Error {
  constructor(
    readonly items: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * The items of a tar (or gzipped tar) laid out `<category>/<file>`, in archive order, read one
 * at a time (the caller's pace is the reader's: nothing ahead is buffered). Folders are structure,
 * not items; links, devices and other non-file members, paths outside `<category>/<file>` and
 * members over the size limit are items carrying their error. A stream that cannot be read
 * throws a BrokenArchive saying how many items came before; an empty body is a 400.
 */
export async function* archiveItems(body: Readable, gzipped: boolean, limits: ArchiveLimits): AsyncGenerator<ArchiveItem> {
  const counter: BodyCounter = { bytes: 0 };
  let items = 0;
  try {
    for await (const entry of tarEntries(body, gzipped, counter)) {
      const path = entry.path.replace(/^(\.\/)+/, '') || entry.path;
      if (entry.type === 'directory') {
        entry.skip();
        continue;
      }
      if (items >= limits.maxItems) {
        entry.skip();
        throw new SensoryError('SENSORY_ERR_BODY_TOO_LARGE', `a request may carry at most ${limits.maxItems} items; the first ${limits.maxItems} were processed and are kept, send the rest in another request`);
      }
      const refusal = refuse(entry.type, entry.isFile, entry.path, entry.size, limits);
      if (refusal) {
        entry.skip();
        items++;
        yield { path, error: refusal };
        continue;
      }
      const place = memberPlace(entry.path) as { category: string; file: string };
      const bytes = await entry.readAll();
      items++;
      yield { path, category: place.category, bytes, ...memberFilename(place.file) };
    }
  } catch (error) {
    if (isSensoryError(error)) throw error;
    if (counter.bytes === 0) throw emptyBody();
    throw new BrokenArchive(items, (error as Error).message);
  }
  if (counter.bytes === 0) throw emptyBody();
}

/** The member's file name, kept as the sample's filename when it is one. */
function memberFilename(file: string): { filename?: string } {
  try {
    return { filename: sampleFilename('filename', file) };
  } catch {
    return {};
  }
}

function emptyBody(): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', 'the body is empty: send a tar of <category>/<file> members');
}

function refuse(type: string, isFile: boolean, path: string, size: number, limits: ArchiveLimits): SensoryError | undefined {
  if (!isFile) return new SensoryError('SENSORY_ERR_BAD_REQUEST', `${JSON.stringify(path)} is a ${type}, not a file; only regular files are stored`);
  const place = memberPlace(path);
  if (place instanceof SensoryError) return place;
  if (size > limits.maxSampleBytes) {
    return new SensoryError('SENSORY_ERR_SAMPLE_TOO_LARGE', `${JSON.stringify(path)} has ${size} bytes; a sample may have at most ${limits.maxSampleBytes}`);
  }
  if (size === 0) return new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', `${JSON.stringify(path)} is empty`);
  return undefined;
}

/** The message of a 400 for an archive that broke after `done` items had been processed. */
export function brokenArchiveError(error: BrokenArchive, summary: string): SensoryError {
  return new SensoryError(
    'SENSORY_ERR_BAD_REQUEST',
    `the tar stream could not be read after ${error.items} item(s) (${summary}): ${error.reason}`,
  );
}
