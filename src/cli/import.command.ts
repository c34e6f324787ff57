import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseLegacyDatasetName } from '../domain/names.js';
import type { SensoryClient } from '@sensory/client';
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

/** Items per bulk request: enough to amortise a request, few enough that a retry resends little. */
const ITEMS_PER_REQUEST = 1000;

/**
 * Uploads the tree as bulk requests of up to 1,000 files, `concurrency` requests at a time, each
 * a tar streamed from the files (read as their turn comes). The service answers a file it
 * already has as a duplicate, so a second run stores nothing twice, and the SDK retries a
 * request whose answer was lost (what it had stored comes back as duplicates).
 */
export async function importTree(client: SensoryClient, options: ImportOptions, progress = true): Promise<ImportReport> {
  await client.datasets.put(options.dataset, { width: options.width, height: options.height, channels: options.channels as 1 | 3 });
  let total = 0;
  for await (const _ of walkTree(options.dir)) total++;
  const bar = progress ? new ProgressBar(`import ${options.dataset}`, total) : undefined;
  const report: ImportReport = { stored: 0, duplicates: 0, rejected: [] };
  const running = new Set<Promise<void>>();
  const send = async (files: { category: string; path: string }[]) => {
    let counted = 0;
    const result = await client.samples.uploadBulk(
      options.dataset,
      files.map((file) => ({ category: file.category, source: file.path })),
      // A retried request counts its files again: the bar moves on new files only.
      {
        onItemSent: (sent) => {
          if (sent <= counted) return;
          bar?.advance(sent - counted);
          counted = sent;
        },
      },
    );
    result.receipts.forEach((receipt, i) => {
      if (receipt.status === 'stored') report.stored++;
      else if (receipt.status === 'duplicate') report.duplicates++;
      else report.rejected.push({ path: files[i].path, message: `${receipt.error?.code}: ${receipt.error?.message}` });
    });
  };
  let batch: { category: string; path: string }[] = [];
  const flush = async () => {
    const task = send(batch);
    batch = [];
    running.add(task);
    void task.finally(() => running.delete(task)).catch(() => undefined);
    if (running.size >= options.concurrency) await Promise.race(running);
  };
  for await (const file of walkTree(options.dir)) {
    batch.push(file);
    if (batch.length >= ITEMS_PER_REQUEST) await flush();
  }
  if (batch.length > 0) await flush();
  await Promise.all(running);
  bar?.finish();
  return report;
}
