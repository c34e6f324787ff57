import type { ExportFile, ExportJob, ExportSpec, ExportStatus } from '../../domain/export-job.js';
import type { ExportHold, ExportQuery, ExportStore } from '../../ports/export-store.js';
import type { SqlExecutor } from './sql-executor.js';

export type { SqlExecutor } from './sql-executor.js';


const COLUMNS = 'id, spec, status, done, files, error, runner, lease_until, attempts, created_at, finished_at';
const CLAIMABLE = `(status = 'queued' OR (status = 'running' AND lease_until <= ?))`;

function jobOf(row: Record<string, unknown>): ExportJob {
  return {
    spec: JSON.parse(row.spec as string) as ExportSpec,
    status: row.status as ExportStatus,
    done: Number(row.done),
    files: JSON.parse(row.files as string) as ExportFile[],
    error: (row.error as string | null) ?? null,
    runner: (row.runner as string | null) ?? null,
    leaseUntil: Number(row.lease_until),
    attempts: Number(row.attempts),
    createdAt: row.created_at as string,
    finishedAt: (row.finished_at as string | null) ?? null,
  };
}

/** The ExportStore on SQL, shared by the SQLite and PostgreSQL adapters: every change is one statement. */
export class SqlExportStore implements ExportStore {
  constructor(private readonly sql: SqlExecutor) {}

  async insert(job: ExportJob): Promise<void> {
    const { spec } = job;
    await this.sql.query(
      `INSERT INTO export_jobs (id, dataset_id, dataset_name, spec, status, done, files, error, runner, lease_until, attempts, created_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [spec.id, spec.datasetId, spec.datasetName, JSON.stringify(spec), job.status, job.done, JSON.stringify(job.files), job.error, job.runner, job.leaseUntil, job.attempts, job.createdAt, job.finishedAt],
    );
  }

  async get(id: string): Promise<ExportJob | undefined> {
    const [row] = await this.sql.query(`SELECT ${COLUMNS} FROM export_jobs WHERE id = ?`, [id]);
    return row && jobOf(row);
  }

  async list(query: ExportQuery): Promise<ExportJob[]> {
    const order = `ORDER BY created_at ${this.sql.byteOrder} DESC, id ${this.sql.byteOrder} DESC`;
    const rows = query.datasetName === undefined
      ? await this.sql.query(`SELECT ${COLUMNS} FROM export_jobs ${order} LIMIT ?`, [query.limit])
      : await this.sql.query(`SELECT ${COLUMNS} FROM export_jobs WHERE dataset_name = ? ${order} LIMIT ?`, [query.datasetName, query.limit]);
    return rows.map(jobOf);
  }

  async claim(id: string | undefined, hold: ExportHold): Promise<ExportJob | undefined> {
    const pick = id === undefined
      ? `(SELECT id FROM export_jobs WHERE ${CLAIMABLE} ORDER BY created_at ${this.sql.byteOrder}, id ${this.sql.byteOrder} LIMIT 1 ${this.sql.skipLocked})`
      : '?';
    const [row] = await this.sql.query(
      `UPDATE export_jobs SET status = 'running', runner = ?, lease_until = ?, attempts = attempts + 1
       WHERE id = ${pick} AND ${CLAIMABLE}
       RETURNING ${COLUMNS}`,
      [hold.runner, hold.now + hold.leaseMs, id ?? hold.now, hold.now],
    );
    return row && jobOf(row);
  }

  async renew(id: string, hold: ExportHold, done: number): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE export_jobs SET done = ?, lease_until = ? WHERE id = ? AND runner = ? AND status = 'running' RETURNING id`,
      [done, hold.now + hold.leaseMs, id, hold.runner],
    );
    return rows.length > 0;
  }

  async addFile(id: string, hold: ExportHold, file: ExportFile, done: number): Promise<boolean> {
    // Read and written in one statement would need JSON functions of each dialect; the runner
    // holding the lease is the only writer of files, so it reads, appends and writes under its name.
    const job = await this.get(id);
    if (!job || job.runner !== hold.runner || job.status !== 'running') return false;
    const files = [...job.files.filter((f) => f.name !== file.name), file];
    const rows = await this.sql.query(
      `UPDATE export_jobs SET files = ?, done = ?, lease_until = ? WHERE id = ? AND runner = ? AND status = 'running' RETURNING id`,
      [JSON.stringify(files), done, hold.now + hold.leaseMs, id, hold.runner],
    );
    return rows.length > 0;
  }

  async finish(id: string, runner: string, outcome: { status: 'complete' | 'failed'; error?: string; finishedAt: string }): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE export_jobs SET status = ?, error = ?, finished_at = ?, runner = NULL, lease_until = 0
       WHERE id = ? AND runner = ? AND status = 'running' RETURNING id`,
      [outcome.status, outcome.error ?? null, outcome.finishedAt, id, runner],
    );
    return rows.length > 0;
  }

  async release(id: string, runner: string): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE export_jobs SET status = 'queued', runner = NULL, lease_until = 0 WHERE id = ? AND runner = ? AND status = 'running' RETURNING id`,
      [id, runner],
    );
    return rows.length > 0;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM export_jobs WHERE id = ? RETURNING id', [id])).length > 0;
  }

  async countByStatus(): Promise<Map<ExportStatus, number>> {
    const rows = await this.sql.query('SELECT status, COUNT(*) AS jobs FROM export_jobs GROUP BY status', []);
    return new Map(rows.map((row) => [row.status as ExportStatus, Number(row.jobs)]));
  }
}
