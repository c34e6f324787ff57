import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiClient } from './api-client.js';
import { ProgressBar } from './progress-bar.js';

const EXTENSIONS: Record<string, string> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/webp': '.webp',
  'image/gif': '.gif',
  'image/tiff': '.tiff',
};

interface SampleSummary {
  id: number;
  category: string;
  sha256: string;
  mediaType: string;
  bytes: number;
}

/**
 * Writes `<dir>/<category>/<sha256>.<ext>` with each sample's original bytes, page by page.
 * Files are named by content, so exporting again rewrites nothing and import round-trips.
 */
export async function exportDataset(client: ApiClient, dataset: string, dir: string, progress = true): Promise<{ written: number; unchanged: number }> {
  const base = `/v1/datasets/${encodeURIComponent(dataset)}`;
  const { value: info } = await client.json<{ sampleCount: number }>('GET', base);
  const bar = progress ? new ProgressBar(`export ${dataset}`, info.sampleCount) : undefined;
  const result = { written: 0, unchanged: 0 };
  let cursor: string | undefined;
  do {
    const query = `?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { value: page } = await client.json<{ samples: SampleSummary[]; nextCursor?: string }>('GET', `${base}/samples${query}`);
    for (const sample of page.samples) {
      const folder = join(dir, sample.category);
      const target = join(folder, `${sample.sha256}${EXTENSIONS[sample.mediaType] ?? '.bin'}`);
      const existing = await stat(target).catch(() => undefined);
      if (existing?.size === sample.bytes) {
        result.unchanged++;
      } else {
        const { body } = await client.request('GET', `${base}/samples/${sample.id}/content`);
        await mkdir(folder, { recursive: true });
        await writeFile(`${target}.partial`, body);
        await rename(`${target}.partial`, target);
        result.written++;
      }
      bar?.tick();
    }
    cursor = page.nextCursor;
  } while (cursor);
  bar?.finish();
  return result;
}
