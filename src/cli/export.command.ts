import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SensoryClient } from '@sensory/client';
import { ProgressBar } from './progress-bar.js';

const EXTENSIONS: Record<string, string> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/webp': '.webp',
  'image/gif': '.gif',
  'image/tiff': '.tiff',
};

/**
 * Writes `<dir>/<category>/<sha256>.<ext>` with each sample's original bytes, page by page.
 * Files are named by content, so exporting again rewrites nothing and import round-trips.
 */
export async function exportDataset(client: SensoryClient, dataset: string, dir: string, progress = true): Promise<{ written: number; unchanged: number }> {
  const info = await client.datasets.get(dataset);
  const bar = progress ? new ProgressBar(`export ${dataset}`, info.sampleCount) : undefined;
  const result = { written: 0, unchanged: 0 };
  for await (const sample of client.samples.list(dataset, { limit: 500 })) {
    const folder = join(dir, sample.category);
    const target = join(folder, `${sample.sha256}${EXTENSIONS[sample.mediaType] ?? '.bin'}`);
    const existing = await stat(target).catch(() => undefined);
    if (existing?.size === sample.bytes) {
      result.unchanged++;
    } else {
      const { bytes } = await client.samples.content(dataset, sample.id);
      await mkdir(folder, { recursive: true });
      await writeFile(`${target}.partial`, bytes);
      await rename(`${target}.partial`, target);
      result.written++;
    }
    bar?.tick();
  }
  bar?.finish();
  return result;
}
