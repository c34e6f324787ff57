import type { Readable } from 'node:stream';
import { SensoryError, isSensoryError } from '../domain/errors.js';
import { tarEntries } from '../formats/tar.reader.js';
import { ConcurrencyLimit } from '../lib/concurrency.js';
import type { MetadataStore, NewSample } from '../ports/metadata-store.js';
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
 * A tar stream laid out `<category>/<file>`, read entry by entry (never buffered whole). Bytes
 * and pixels are written as entries arrive; the metadata of every new sample is committed in one
 * transaction at the end, so a broken or aborted stream stores nothing.
 */
export class ImportService {
  constructor(
    private readonly store: MetadataStore,
    private readonly ingest: IngestService,
    private readonly telemetry: Telemetry,
  ) {}

  async importTar(datasetName: string, body: Readable, gzipped: boolean): Promise<ImportSummary> {
    const dataset = await requireDataset(this.store, datasetName);
    const summary: ImportSummary = { imported: 0, duplicates: 0, rejected: [] };
    const ready: { path: string; sample: NewSample }[] = [];
    const limit = new ConcurrencyLimit(PARALLEL_DECODES);
    const inFlight = new Set<Promise<void>>();
    let internalError: unknown;
    const reject = (path: string, error: SensoryError) => summary.rejected.push({ path, error: { code: error.code, message: error.message } });

    try {
      for await (const entry of tarEntries(body, gzipped)) {
        const path = entry.path;
        if (!entry.isFile) {
          entry.skip();
          continue;
        }
        const parts = path.split('/').filter((part) => part !== '');
        if (parts.length !== 2) {
          entry.skip();
          reject(path, new SensoryError('SENSORY_ERR_BAD_REQUEST', 'expected a <category>/<file> path'));
          continue;
        }
        const sizeError = this.ingest.sizeError(entry.size);
        if (sizeError) {
          entry.skip();
          reject(path, sizeError);
          continue;
        }
        const bytes = await entry.readAll();
        const task = limit
          .run(() => this.ingest.prepare(dataset, { category: parts[0], bytes }))
          .then(
            (prepared: Prepared) => {
              if (prepared.kind === 'ready') ready.push({ path, sample: prepared.sample });
              else summary.duplicates++;
            },
            (error: unknown) => {
              if (isSensoryError(error)) reject(path, error);
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
      if (isSensoryError(error)) throw error;
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `the tar stream could not be read: ${(error as Error).message}`);
    }
    await Promise.all(inFlight);
    // Not the client's fault (a disk error, say): a 500, and nothing committed.
    if (internalError) throw internalError;

    const outcomes = ready.length > 0 ? await this.store.addSamples(dataset.id, ready.map((entry) => entry.sample)) : [];
    outcomes.forEach((outcome, i) => {
      try {
        if (settle(dataset, outcome).duplicate) summary.duplicates++;
        else summary.imported++;
      } catch (error) {
        reject(ready[i].path, error as SensoryError);
      }
    });
    this.telemetry.countSamplesStored(summary.imported);
    return summary;
  }
}
