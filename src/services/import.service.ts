import type { Readable } from 'node:stream';
import { SensoryError, isSensoryError } from '../domain/errors.js';
import { ConcurrencyLimit } from '../lib/concurrency.js';
import type { Actor, AddOutcome, MetadataStore, NewSample } from '../ports/metadata-store.js';
import { BrokenArchive, archiveItems, brokenArchiveError, type ArchiveLimits } from './archive-items.js';
import type { Telemetry } from '../ports/telemetry.js';
import { requireDataset } from './dataset.service.js';
import { settle, type IngestService, type Prepared } from './ingest.service.js';

export interface ImportSummary {
  imported: number;
  duplicates: number;
  rejected: { path: string; error: { code: string; message: string } }[];
}

const PARALLEL_DECODES = 4;

/**
 * All-or-nothing imports: the same tar of `<category>/<file>` members as a bulk upload, read
 * item by item (never buffered whole). Bytes and pixels are written as items arrive; the metadata
 * of every new sample is committed in one transaction at the end, so a broken or aborted stream
 * stores nothing. (Bulk uploads commit as they go and answer a receipt per item instead.)
 */
export class ImportService {
  constructor(
    private readonly store: MetadataStore,
    private readonly ingest: IngestService,
    private readonly limits: ArchiveLimits,
    private readonly telemetry: Telemetry,
  ) {}

  async importTar(datasetName: string, body: Readable, gzipped: boolean, actor?: Actor): Promise<ImportSummary> {
    const dataset = await requireDataset(this.store, datasetName);
    const summary: ImportSummary = { imported: 0, duplicates: 0, rejected: [] };
    const ready: { path: string; sample: NewSample; bytes: Buffer }[] = [];
    const limit = new ConcurrencyLimit(PARALLEL_DECODES);
    const inFlight = new Set<Promise<void>>();
    let internalError: unknown;
    const reject = (path: string, error: SensoryError, started?: number) => {
      this.ingest.refused(error, started);
      summary.rejected.push({ path, error: { code: error.code, message: error.message } });
    };

    try {
      for await (const item of archiveItems(body, gzipped, this.limits)) {
        if ('error' in item) {
          reject(item.path, item.error);
          continue;
        }
        let started = 0;
        const task = limit
          .run(() => {
            started = performance.now();
            return this.ingest.prepare(dataset, { category: item.category, bytes: item.bytes, annotations: { filename: item.filename }, actor }, { offload: true });
          })
          .then(
            (prepared: Prepared) => {
              // An import commits at its end: an item's time is its checks, decoding and writes.
              this.telemetry.observeIngest(prepared.kind === 'ready' ? 'stored' : 'duplicate', (performance.now() - started) / 1000);
              if (prepared.kind === 'ready') ready.push({ path: item.path, sample: prepared.sample, bytes: item.bytes });
              else summary.duplicates++;
            },
            (error: unknown) => {
              if (isSensoryError(error)) reject(item.path, error, started);
              else internalError ??= error;
            },
          )
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= PARALLEL_DECODES * 2) await Promise.race(inFlight);
        if (internalError) break;
      }
    } catch (error) {
      await Promise.allSettled(inFlight);
      if (error instanceof BrokenArchive) throw brokenArchiveError(error, 'nothing was stored: an import is all or nothing');
      throw error;
    }
    await Promise.all(inFlight);
    // Not the client's fault (a disk error, say): a 500, and nothing committed.
    if (internalError) throw internalError;

    const outcomes = await this.commitAll(dataset.id, ready);
    outcomes.forEach((outcome, i) => {
      try {
        if (settle(dataset, outcome).duplicate) summary.duplicates++;
        else summary.imported++;
      } catch (error) {
        if (!isSensoryError(error)) throw error;
        reject(ready[i].path, error);
      }
    });
    this.telemetry.countSamplesStored(summary.imported);
    return summary;
  }

  /**
   * One transaction for every new sample. A compaction may drop, meanwhile, the index row of a
   * blob an item found already stored: those items are stored again and committed after.
   */
  private async commitAll(datasetId: number, ready: { sample: NewSample; bytes: Buffer }[]): Promise<AddOutcome[]> {
    if (ready.length === 0) return [];
    const outcomes = await this.store.addSamples(datasetId, ready.map((entry) => entry.sample));
    const missing = outcomes.map((outcome, i) => (outcome.kind === 'blob-missing' ? i : -1)).filter((i) => i >= 0);
    for (const i of missing) outcomes[i] = await this.ingest.commit(datasetId, ready[i].sample, ready[i].bytes);
    return outcomes;
  }
}
