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

export interface ExportJobOptions {
  readonly format: 'webdataset' | 'imagefolder' | 'safetensors';
  readonly out: string;
  readonly shardSize?: number;
  readonly revision?: number;
  readonly split?: 'train' | 'test' | 'all';
  readonly categories?: readonly string[];
  /** Resume waiting for and downloading a job started before (its id), instead of starting one. */
  readonly job?: string;
  readonly progress?: boolean;
}

/**
 * Runs an export job on the service and downloads its files into `out`: a progress bar while the
 * service writes, then one per file while it downloads (resumed where a download stopped).
 */
export async function exportJob(client: SensoryClient, dataset: string, options: ExportJobOptions): Promise<{ id: string; files: string[]; samples: number }> {
  const progress = options.progress ?? true;
  const started = options.job
    ? await client.exports.get(options.job)
    : await client.exports.create(dataset, {
        format: options.format,
        ...(options.shardSize !== undefined ? { shardSize: options.shardSize } : {}),
        ...(options.revision !== undefined ? { revision: options.revision } : {}),
        ...(options.split !== undefined ? { split: options.split } : {}),
        ...(options.categories !== undefined ? { categories: [...options.categories] } : {}),
      });
  if (progress) process.stderr.write(`export job ${started.id} (${started.format}, ${started.samples.total} samples at revision ${started.revision})\n`);
  const bar = progress ? new ProgressBar(`export ${started.dataset}`, started.samples.total) : undefined;
  const job = await client.exports.wait(started.id, { onProgress: (view) => bar?.set(view.samples.done, `${view.files.length} file(s)`) });
  bar?.finish();
  if (job.status !== 'complete') throw new Error(`export job ${job.id} failed: ${job.error ?? 'no reason given'}`);
  const totalBytes = job.files.reduce((sum, file) => sum + file.bytes, 0);
  const download = progress ? new ProgressBar('download (bytes)', totalBytes) : undefined;
  let before = 0;
  const files = await client.exports.download(job, options.out, {
    onBytes: (n, bytes) => {
      before = job.files.slice(0, n).reduce((sum, file) => sum + file.bytes, 0);
      download?.set(before + bytes, job.files[n].name);
    },
  });
  download?.finish();
  return { id: job.id, files, samples: job.samples.total };
}
