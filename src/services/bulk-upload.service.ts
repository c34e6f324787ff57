import type { Readable } from 'node:stream';
import { isSensoryError } from '../domain/errors.js';
import { ExternalGarbage } from '../lib/external-garbage.js';
import type { ImageDigests } from '../ports/imaging.js';
import type { Actor, MetadataStore } from '../ports/metadata-store.js';
import { BrokenArchive, archiveItems, brokenArchiveError, type ArchiveLimits } from './archive-items.js';
import { requireDataset } from './dataset.service.js';
import type { IngestService } from './ingest.service.js';

export type ReceiptStatus = 'stored' | 'duplicate' | 'rejected';

/** What became of one item of a bulk upload. */
export interface Receipt {
  readonly path: string;
  readonly status: ReceiptStatus;
  readonly sampleId?: number;
  readonly category?: string;
  readonly sha256?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface BulkResult {
  readonly items: number;
  readonly stored: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** The dataset's revision once the last item was committed. */
  readonly revision: number;
  /** One per item, in input order. */
  readonly receipts: Receipt[];
}

/** Items being decoded and written at once: enough to fill the group commits and both cores. */
const IN_FLIGHT_ITEMS = 256;
/** And at most this many bytes of them, so memory stays flat whatever the items' sizes. */
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;

/**
 * Bulk uploads: a streamed tar of `<category>/<file>` members, each item stored as a single
 * upload would be (same checks, same duplicate rule) and committed in groups as the stream
 * arrives. An item is durable once its group commits; a cut connection keeps exactly the items
 * committed until then, and the same body sent again stores nothing twice (those come back as
 * duplicates, with their ids).
 */
export class BulkUploadService {
  /**
   * With decoding on threads, the event loop's own heap grows too slowly for V8 to collect the
   * read buffers of committed items in time (lib/external-garbage.ts); on the event loop, the
   * decoding's own allocations bring those collections soon enough.
   */
  private readonly garbage = new ExternalGarbage();

  constructor(
    private readonly store: MetadataStore,
    private readonly ingest: IngestService,
    private readonly limits: ArchiveLimits,
    /** Hashing and decoding beside the event loop (SENSORY_INGEST_THREADS); without it, on it. */
    private readonly digests?: ImageDigests,
  ) {}

  async upload(datasetName: string, body: Readable, gzipped: boolean, actor?: Actor): Promise<BulkResult> {
    const dataset = await requireDataset(this.store, datasetName);
    const receipts: Receipt[] = [];
    const inFlight = new Set<Promise<void>>();
    let bytesInFlight = 0;
    let internalError: unknown;
    const record = (index: number, receipt: Receipt) => {
      receipts[index] = receipt;
    };
    try {
      for await (const item of archiveItems(body, gzipped, this.limits)) {
        const index = receipts.length;
        receipts.push(undefined as unknown as Receipt);
        if ('error' in item) {
          this.ingest.refused(item.error);
          record(index, { path: item.path, status: 'rejected', error: { code: item.error.code, message: item.error.message } });
          continue;
        }
        if (this.digests) this.garbage.itemRead();
        const size = item.bytes.length;
        bytesInFlight += size;
        const digest = this.digests?.digest(item.bytes, dataset);
        const task = this.ingest
          .addTo(dataset, { category: item.category, bytes: item.bytes, annotations: { filename: item.filename }, actor }, { offload: true }, digest)
          .then(
            (stored) =>
              record(index, {
                path: item.path,
                status: stored.duplicate ? 'duplicate' : 'stored',
                sampleId: stored.sample.id,
                category: stored.sample.category,
                sha256: stored.sample.sha256,
              }),
            (error: unknown) => {
              if (!isSensoryError(error)) internalError ??= error;
              else record(index, { path: item.path, status: 'rejected', error: { code: error.code, message: error.message } });
            },
          )
          .finally(() => {
            // The item is committed or refused: its pixels, written or not, are not read again.
            digest?.then((digested) => digested.release?.(), () => undefined);
            bytesInFlight -= size;
            inFlight.delete(task);
          });
        inFlight.add(task);
        while (inFlight.size >= IN_FLIGHT_ITEMS || bytesInFlight >= IN_FLIGHT_BYTES) await Promise.race(inFlight);
        if (internalError) break;
      }
    } catch (error) {
      // What was read before the break is committed (or refused) as it would have been.
      await Promise.allSettled(inFlight);
      if (error instanceof BrokenArchive) throw brokenArchiveError(error, summarize(receipts));
      throw error;
    }
    await Promise.all(inFlight);
    // Not the client's fault (a disk error, say): a 500; the items committed before it are kept.
    if (internalError) throw internalError;
    const counts = { stored: 0, duplicates: 0, rejected: 0 };
    for (const receipt of receipts) {
      if (receipt.status === 'stored') counts.stored++;
      else if (receipt.status === 'duplicate') counts.duplicates++;
      else counts.rejected++;
    }
    const revision = (await this.store.getDataset(dataset.name))?.revision ?? dataset.revision;
    return { items: receipts.length, ...counts, revision, receipts };
  }
}

function summarize(receipts: readonly (Receipt | undefined)[]): string {
  const done = receipts.filter((r): r is Receipt => r !== undefined);
  const stored = done.filter((r) => r.status === 'stored').length;
  const duplicates = done.filter((r) => r.status === 'duplicate').length;
  return `${stored} stored and kept, ${duplicates} duplicate(s), ${done.length - stored - duplicates} rejected; send the rest again`;
}
