import type { Split } from './split.js';

/**
 * Export jobs: what a job writes and how its files are named, and the lease rules by which one
 * runner at a time works on it. Plain functions; the runner (services/export-runner.ts) does the I/O.
 */
export const EXPORT_FORMATS = ['webdataset', 'imagefolder', 'safetensors'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_STATUSES = ['queued', 'running', 'complete', 'failed'] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

/** Samples per shard when the request names none (webdataset and safetensors; imagefolder is one tar). */
export const DEFAULT_EXPORT_SHARD_SIZE = 10_000;
export const MAX_EXPORT_SHARD_SIZE = 1_000_000;

/** What a job exports: fixed when it is created. */
export interface ExportSpec {
  readonly id: string;
  readonly datasetId: number;
  readonly datasetName: string;
  readonly format: ExportFormat;
  readonly revision: number;
  readonly split: Split;
  /** Category indices exported; null for all. */
  readonly categoryIndexes: readonly number[] | null;
  /** The category map at the job's revision: index → name. */
  readonly categories: readonly { readonly name: string; readonly index: number }[];
  readonly shardSize: number;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly testPercent: number;
  /** Samples the job exports (counted when it was created; the revision pins them). */
  readonly total: number;
}

/** A finished file of a job: durable under its name once listed. */
export interface ExportFile {
  readonly name: string;
  readonly bytes: number;
  readonly samples: number;
  /** The id of the file's last sample: the next file starts after it. */
  readonly lastId: number;
}

export interface ExportJob {
  readonly spec: ExportSpec;
  readonly status: ExportStatus;
  /** Samples written, in finished files and in the file being written. */
  readonly done: number;
  readonly files: readonly ExportFile[];
  readonly error: string | null;
  /** Who works on it, and until when (epoch ms) unless it renews: a runner that died loses it then. */
  readonly runner: string | null;
  readonly leaseUntil: number;
  /** Times a runner took the job (1 for a job that ran once). */
  readonly attempts: number;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

/** A job gives up after this many takes (each a runner that died or stopped while working on it). */
export const MAX_EXPORT_ATTEMPTS = 20;

/** Whether `runner` may take the job at `now`: it is queued, or running under a lease that ran out. */
export function claimable(job: Pick<ExportJob, 'status' | 'leaseUntil'>, now: number): boolean {
  return job.status === 'queued' || (job.status === 'running' && job.leaseUntil <= now);
}

/** Where a job that is taken again starts: after its last finished file. */
export function resumePoint(files: readonly ExportFile[]): { afterId: number; done: number; nextFile: number } {
  const last = files.at(-1);
  return { afterId: last?.lastId ?? 0, done: files.reduce((sum, file) => sum + file.samples, 0), nextFile: files.length };
}

/** File extension of an original by its media type. */
export function extensionOf(mediaType: string): string {
  switch (mediaType) {
    case 'image/png':
      return 'png';
    case 'image/jpeg':
      return 'jpg';
    case 'image/webp':
      return 'webp';
    case 'image/gif':
      return 'gif';
    case 'image/tiff':
      return 'tiff';
    default:
      return 'bin';
  }
}

/**
 * A name made safe as one path component: characters other than letters, digits, `.`, `_` and
 * `-` become `_`, and a name of dots only (`.`, `..`) gets a leading `_`. Category names already
 * match the name pattern; this is the second lock on the door.
 */
export function pathSafe(name: string): string {
  const replaced = name.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
  return /^\.+$/.test(replaced) ? `_${replaced}` : replaced;
}

/**
 * A sample's WebDataset key: the sample id, zero-padded to 12 digits so keys sort like ids. It
 * has no dot (WebDataset splits a member's name at the first dot of its base name) and no slash.
 */
export function webdatasetKey(sampleId: number): string {
  return String(sampleId).padStart(12, '0');
}

/** The n-th file of a job (0-based): `<dataset>-<format>-<n, 6 digits>.<tar|safetensors>`, or `<dataset>-imagefolder.tar`. */
export function exportFileName(spec: Pick<ExportSpec, 'datasetName' | 'format'>, n: number): string {
  const base = pathSafe(spec.datasetName);
  if (spec.format === 'imagefolder') return `${base}-imagefolder.tar`;
  return `${base}-${spec.format}-${String(n).padStart(6, '0')}.${spec.format === 'safetensors' ? 'safetensors' : 'tar'}`;
}

/** The split a sample is in, by its bucket. */
export function splitOf(splitBucket: number, testPercent: number): 'train' | 'test' {
  return splitBucket < testPercent ? 'test' : 'train';
}

/** How far a job is, 0–1. */
export function progressOf(job: Pick<ExportJob, 'done' | 'status'> & { spec: Pick<ExportSpec, 'total'> }): number {
  if (job.status === 'complete') return 1;
  return job.spec.total === 0 ? 0 : Math.min(1, job.done / job.spec.total);
}
