import { opendir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { NAME_PATTERN } from '../domain/names.js';
import { ConcurrencyLimit } from '../lib/concurrency.js';
import { ApiError, type ApiClient } from './api-client.js';
import { ProgressBar } from './progress-bar.js';

const MEDIA_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

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

/**
 * Uploads every file of the tree as a raw body. The service answers a file it already has as a
 * duplicate, so a second run stores nothing twice.
 */
export async function importTree(client: ApiClient, options: ImportOptions, progress = true): Promise<ImportReport> {
  await client.json('PUT', `/v1/datasets/${encodeURIComponent(options.dataset)}`, {
    width: options.width,
    height: options.height,
    channels: options.channels,
  });
  let total = 0;
  for await (const _ of walkTree(options.dir)) total++;
  const bar = progress ? new ProgressBar(`import ${options.dataset}`, total) : undefined;
  const report: ImportReport = { stored: 0, duplicates: 0, rejected: [] };
  const limit = new ConcurrencyLimit(options.concurrency);
  const running = new Set<Promise<void>>();
  for await (const file of walkTree(options.dir)) {
    const task = limit.run(async () => {
      try {
        if (!NAME_PATTERN.test(file.category)) throw new ApiError(400, 'SENSORY_ERR_INVALID_NAME', `category folder ${file.category} is not a valid category name`);
        const bytes = await readFile(file.path);
        const type = MEDIA_TYPES[extname(file.path).toLowerCase()] ?? 'image/unknown';
        const response = await client.request('POST', `/v1/datasets/${encodeURIComponent(options.dataset)}/samples?category=${encodeURIComponent(file.category)}`, { bytes, type });
        if (response.status === 201) report.stored++;
        else report.duplicates++;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status >= 500 || error.status === 401 || error.status === 403 || error.status === 404) throw error;
        report.rejected.push({ path: file.path, message: `${error.code}: ${error.message}` });
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
