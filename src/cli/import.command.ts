import type { BulkItem, BulkReceipt, SensoryClient } from '@sensory/client';
import { SensoryApiError } from '@sensory/client';
import type { ImportEntry, ImportSource } from './import-sources.js';
import { ProgressBar } from './progress-bar.js';

/** The dataset an import goes to; a shape value left undefined is taken from the dataset when it exists. */
export interface ImportTarget {
  readonly dataset: string;
  readonly width?: number;
  readonly height?: number;
  readonly channels?: 1 | 3;
  readonly testPercent?: number;
}

export interface ImportReport {
  stored: number;
  duplicates: number;
  rejected: { path: string; message: string }[];
  /** The import created the dataset, stored nothing, and removed it again. */
  removedDataset?: boolean;
}

/** What a source holds, found before the service is asked anything: files and their categories. */
export interface SourceSurvey {
  readonly files: number;
  /** Every category a file would go to, sorted. */
  readonly categories: readonly string[];
}

export async function surveySource(source: ImportSource): Promise<SourceSurvey> {
  let files = 0;
  const categories = new Set<string>();
  for await (const entry of source.entries((_path, category) => {
    files++;
    if (category !== undefined) categories.add(category);
    return false;
  })) void entry;
  return { files, categories: [...categories].sort(compareNames) };
}

/** Code-point order: the order Python's sorted() gives folder names (torchvision's ImageFolder, Keras). */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Items per bulk request: enough to amortise a request, few enough that a retry resends little. */
const ITEMS_PER_REQUEST = 1000;
/** Bytes an archive's items may hold in one request (they are in memory until it is sent). */
const BYTES_PER_REQUEST = 64 * 1024 * 1024;
/** Files of a new category tried, in order, as its first: past them, its index is taken as it comes. */
const SEED_CANDIDATES = 3;

/** Thrown when the dataset is missing and the shape to create it was not given. */
export class MissingShapeError extends Error {}

/**
 * Imports a source into a dataset, as bulk requests of up to 1,000 files, `concurrency` requests
 * at a time. The service answers a file it already has as a duplicate, so a second run stores
 * nothing twice, and the SDK retries a request whose answer was lost.
 *
 * Categories new to the dataset get their indices in sorted name order: the first file of each
 * is sent alone, in that order, before the rest go in parallel (the service gives an index at a
 * category's first stored sample). A dataset this import created is deleted again when the
 * import fails or ends without storing anything, so a failed first import leaves nothing behind.
 */
export async function importSource(
  client: SensoryClient,
  source: ImportSource,
  survey: SourceSurvey,
  target: ImportTarget,
  options: { concurrency: number; progress?: boolean },
): Promise<ImportReport> {
  // 404: a new dataset. 403: a key without the read role cannot look; the flags must then say it all.
  let unreadable = false;
  const existing = await client.datasets.get(target.dataset).catch((error: unknown) => {
    unreadable = error instanceof SensoryApiError && error.status === 403;
    return unless404or403(error);
  });
  const width = target.width ?? existing?.width;
  const height = target.height ?? existing?.height;
  if (width === undefined || height === undefined) {
    throw new MissingShapeError(
      unreadable
        ? `this key may not read dataset ${target.dataset}: give --width and --height (and --channels, --test-percent if not 3 and 0)`
        : `dataset ${target.dataset} does not exist: give --width and --height to create it`,
    );
  }
  const { created } = await client.datasets.put(target.dataset, {
    width,
    height,
    channels: target.channels ?? ((existing?.channels ?? 3) as 1 | 3),
    testPercent: target.testPercent ?? existing?.testPercent ?? 0,
  });
  const report: ImportReport = { stored: 0, duplicates: 0, rejected: [] };
  try {
    await upload(client, source, survey, target.dataset, options, report);
  } catch (error) {
    if (created && report.stored + report.duplicates === 0) await removeCreated(client, target.dataset, report);
    throw error;
  }
  if (created && report.stored + report.duplicates === 0) await removeCreated(client, target.dataset, report);
  return report;
}

/** undefined for a 404 (not there) or a 403 (the key may not read it); any other error is thrown. */
function unless404or403(error: unknown): undefined {
  if (error instanceof SensoryApiError && (error.status === 404 || error.status === 403)) return undefined;
  throw error;
}

async function removeCreated(client: SensoryClient, dataset: string, report: ImportReport): Promise<void> {
  try {
    await client.datasets.delete(dataset);
    report.removedDataset = true;
  } catch (error) {
    process.stderr.write(`could not remove dataset ${dataset}, which this import created and stored nothing in: ${(error as Error).message}\n`);
  }
}

async function upload(
  client: SensoryClient,
  source: ImportSource,
  survey: SourceSurvey,
  dataset: string,
  options: { concurrency: number; progress?: boolean },
  report: ImportReport,
): Promise<void> {
  const bar = options.progress === false ? undefined : new ProgressBar(`import ${dataset}`, survey.files);
  const record = (entry: { path: string }, receipt: BulkReceipt) => {
    if (receipt.status === 'stored') report.stored++;
    else if (receipt.status === 'duplicate') report.duplicates++;
    else report.rejected.push({ path: entry.path, message: `${receipt.error?.code}: ${receipt.error?.message}` });
  };
  /** Entries that never reach the service: no category folder, or not a file. */
  const refuse = (entry: ImportEntry): boolean => {
    if (entry.category !== undefined && entry.refused === undefined) return false;
    report.rejected.push({ path: entry.path, message: entry.refused ?? 'not inside a category folder' });
    bar?.tick();
    return true;
  };
  const item = (entry: ImportEntry): BulkItem => ({ category: entry.category!, source: entry.source, name: entry.path.split(/[\\/]/).pop() });

  // Seeds: the first file of each new category, one request each, in sorted order. A seed the
  // service rejects (not an image) is followed by the category's next file before the next
  // category's turn, up to SEED_CANDIDATES files.
  // A key that cannot read the categories seeds every category: the ones the dataset has keep their indices anyway.
  const known = new Set(((await client.datasets.categories(dataset).catch(unless404or403))?.categories ?? []).map((category) => category.name));
  const candidates = new Map<string, ImportEntry[]>(survey.categories.filter((category) => !known.has(category)).map((category) => [category, []]));
  const sent = new Set<string>();
  if (candidates.size > 0) {
    const wanted = (category: string | undefined) => category !== undefined && (candidates.get(category)?.length ?? SEED_CANDIDATES) < SEED_CANDIDATES;
    for await (const entry of source.entries((_path, category) => wanted(category))) candidates.get(entry.category!)!.push(entry);
  }
  for (const [, entries] of [...candidates].sort(([a], [b]) => compareNames(a, b))) {
    for (const seed of entries) {
      sent.add(seed.path);
      if (refuse(seed)) continue;
      const result = await client.samples.uploadBulk(dataset, [item(seed)]);
      record(seed, result.receipts[0]);
      bar?.tick();
      if (result.receipts[0].status !== 'rejected') break;
    }
  }

  // The rest, in parallel.
  const running = new Set<Promise<void>>();
  const send = async (entries: ImportEntry[]) => {
    let counted = 0;
    const result = await client.samples.uploadBulk(
      dataset,
      entries.map(item),
      // A retried request counts its files again: the bar moves on new files only.
      {
        onItemSent: (count) => {
          if (count <= counted) return;
          bar?.advance(count - counted);
          counted = count;
        },
      },
    );
    result.receipts.forEach((receipt, i) => record(entries[i], receipt));
  };
  let failure: unknown;
  let batch: ImportEntry[] = [];
  let batchBytes = 0;
  const flush = async () => {
    const task = send(batch).catch((error: unknown) => {
      failure ??= error;
    });
    batch = [];
    batchBytes = 0;
    running.add(task);
    void task.finally(() => running.delete(task));
    if (running.size >= options.concurrency) await Promise.race(running);
  };
  for await (const entry of source.entries((path) => !sent.has(path))) {
    if (failure) break;
    if (refuse(entry)) continue;
    batch.push(entry);
    if (Buffer.isBuffer(entry.source)) batchBytes += entry.source.length;
    if (batch.length >= ITEMS_PER_REQUEST || batchBytes >= BYTES_PER_REQUEST) await flush();
  }
  if (batch.length > 0 && !failure) await flush();
  await Promise.all(running);
  bar?.finish();
  if (failure) throw failure;
}
