import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NAME_PATTERN, parseLegacyDatasetName } from '../domain/names.js';
import { ConcurrencyLimit } from '../lib/concurrency.js';
import { SensoryApiError, type SensoryClient } from '@sensory/client';
import { ProgressBar } from './progress-bar.js';

export interface ImportOptions {
  readonly dir: string;
  readonly dataset: string;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly concurrency: number;
}

export interface ImportReport {
  stored: number;
  duplicates: number;
  rejected: { path: string; message: string }[];
}

/** Walks `<dir>/<category>/<file>` lazily, one directory entry at a time. */
export async function* walkTree(dir: string): AsyncGenerator<{ category: string; path: string }> {
  for await (const categoryEntry of await opendir(dir)) {
    if (!categoryEntry.isDirectory() || categoryEntry.name.startsWith('.')) continue;
    for await (const fileEntry of await opendir(join(dir, categoryEntry.name))) {
      if (!fileEntry.isFile() || fileEntry.name.startsWith('.')) continue;
      yield { category: categoryEntry.name, path: join(dir, categoryEntry.name, fileEntry.name) };
    }
  }
}

export interface DiceboxDataset {
  readonly dataset: string;
  readonly width: number;
  readonly height: number;
  /** The `<category>/<file>` tree of that dataset. */
  readonly dir: string;
}

/**
 * The datasets of an original dicebox data dir, `<base>/<name>_<W>x<H>/data/<category>/*.png`:
 * each folder becomes the dataset of the same name, at its width and height.
 */
export async function findDiceboxDatasets(base: string): Promise<DiceboxDataset[]> {
  const found: DiceboxDataset[] = [];
  for await (const entry of await opendir(base)) {
    const shape = entry.isDirectory() ? parseLegacyDatasetName(entry.name) : undefined;
    if (!shape) continue;
    const dir = join(base, entry.name, 'data');
    const data = await stat(dir).catch(() => undefined);
    if (data?.isDirectory()) found.push({ dataset: entry.name, width: shape.width, height: shape.height, dir });
  }
  return found.sort((a, b) => (a.dataset < b.dataset ? -1 : 1));
}

/** What stops the whole import rather than one file: the service or the key is wrong, or the dataset went away. */
function stopsImport(error: unknown): boolean {
  return !(error instanceof SensoryApiError) || error.status >= 500 || error.status === 401 || error.status === 403 || error.status === 404;
}

/**
 * Uploads every file of the tree as a raw body (the SDK retries what failed in transit). The
 * service answers a file it already has as a duplicate, so a second run stores nothing twice.
 */
export async function importTree(client: SensoryClient, options: ImportOptions, progress = true): Promise<ImportReport> {
  await client.datasets.put(options.dataset, { width: options.width, height: options.height, channels: options.channels as 1 | 3 });
  let total = 0;
  for await (const _ of walkTree(options.dir)) total++;
  const bar = progress ? new ProgressBar(`import ${options.dataset}`, total) : undefined;
  const report: ImportReport = { stored: 0, duplicates: 0, rejected: [] };
  const limit = new ConcurrencyLimit(options.concurrency);
  const running = new Set<Promise<void>>();
  for await (const file of walkTree(options.dir)) {
    const task = limit.run(async () => {
      if (!NAME_PATTERN.test(file.category)) {
        report.rejected.push({ path: file.path, message: `SENSORY_ERR_INVALID_NAME: category folder ${file.category} is not a valid category name` });
      } else {
        try {
          const sample = await client.samples.upload(options.dataset, file.path, { category: file.category });
          if (sample.duplicate) report.duplicates++;
          else report.stored++;
        } catch (error) {
          if (stopsImport(error)) throw error;
          const { code, message } = error as SensoryApiError;
          report.rejected.push({ path: file.path, message: `${code}: ${message}` });
        }
      }
      bar?.tick();
    });
    running.add(task);
    void task.finally(() => running.delete(task)).catch(() => undefined);
    if (running.size >= options.concurrency * 2) await Promise.race(running);
  }
  await Promise.all(running);
  bar?.finish();
  return report;
}
