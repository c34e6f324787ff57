import type { ExportFile, ExportJob, ExportStatus } from '../domain/export-job.js';

export interface ExportQuery {
  /** Only the jobs of this dataset; all when absent. */
  readonly datasetName?: string;
  readonly limit: number;
}

/** A runner's hold on a job: its name and the lease it renews. */
export interface ExportHold {
  readonly runner: string;
  readonly now: number;
  readonly leaseMs: number;
}

/**
 * Export jobs, as rows. A runner takes a job under a lease (`claim`) and renews it as it writes;
 * every later change names the runner and changes nothing when another runner took the job
 * meanwhile (it returns false). Durable on return. The contract suite in
 * test/export-store.contract.test.ts runs on every backend.
 */
export interface ExportStore {
  insert(job: ExportJob): Promise<void>;
  get(id: string): Promise<ExportJob | undefined>;
  /** Newest first. */
  list(query: ExportQuery): Promise<ExportJob[]>;
  /**
   * Takes the job `id` (or, without an id, the oldest one that can be taken) when it is queued or
   * its lease ran out: it becomes running, held by the runner until now + leaseMs, its attempts
   * raised by one. undefined when there is none to take.
   */
  claim(id: string | undefined, hold: ExportHold): Promise<ExportJob | undefined>;
  /** Records progress and renews the lease. */
  renew(id: string, hold: ExportHold, done: number): Promise<boolean>;
  /** Appends a finished file, records progress and renews the lease. */
  addFile(id: string, hold: ExportHold, file: ExportFile, done: number): Promise<boolean>;
  /** Ends the job: complete, or failed with an error. */
  finish(id: string, runner: string, outcome: { status: 'complete' | 'failed'; error?: string; finishedAt: string }): Promise<boolean>;
  /** Hands the job back (queued, no runner), for another runner to take at once. */
  release(id: string, runner: string): Promise<boolean>;
  /** Removes the job's row; true when there was one. */
  remove(id: string): Promise<boolean>;
  /** How many jobs are in each status (statuses without a job are absent). */
  countByStatus(): Promise<Map<ExportStatus, number>>;
}
