import { SensoryError } from '../domain/errors.js';
import type { BlobStore, CompactingBlobStore, CompactionReport } from '../ports/blob-store.js';
import type { MetadataStore } from '../ports/metadata-store.js';

/** The orders a purge must look at: the live ones of a dataset, with the revision each is pinned to. */
export interface PinnedOrders {
  active(datasetId: number): Promise<{ id: string; revision: number }[]>;
  /** Fails an active order with a reason its owner can read. */
  fail(id: string, reason: string): Promise<void>;
}

export interface CompactionRequest {
  /** Purge samples deleted at least this long ago (default SENSORY_PURGE_RETENTION_SECONDS). */
  readonly retentionSeconds?: number;
  /** Rewrite a segment once at least this share of its bytes is garbage (default 0.3). */
  readonly minGarbageShare?: number;
}

export interface CompactionResult {
  /** Samples deleted before this time were purged. */
  readonly cutoff: string;
  readonly purged: { dataset: string; samples: number; purgedRevision: number }[];
  readonly ordersFailed: { id: string; dataset: string; revision: number }[];
  /** Originals moved from the per-file layout of earlier releases into segments. */
  readonly legacyOriginalsMoved: number;
  /** Originals no sample names any more, forgotten (their bytes went with the compaction). */
  readonly blobsDropped: number;
  readonly segments: CompactionReport | undefined;
  readonly seconds: number;
}

export const DEFAULT_MIN_GARBAGE_SHARE = 0.3;

/**
 * The admin purge and compaction, online: deleted samples older than the retention period are
 * removed (the live orders whose pinned revision still needs one of them are failed first), the
 * originals no sample names are forgotten, and segments holding enough garbage are rewritten so
 * that the disk space comes back. Uploads, batches and orders carry on meanwhile.
 */
export class CompactionService {
  private running = false;

  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly orders: PinnedOrders,
    private readonly retentionSeconds: number,
    /** Removes what was made from originals that are gone (their previews); runs after the drop. */
    private readonly dropDerived: () => Promise<unknown> = async () => undefined,
  ) {}

  async run(request: CompactionRequest = {}): Promise<CompactionResult> {
    const retention = request.retentionSeconds ?? this.retentionSeconds;
    const minGarbageShare = request.minGarbageShare ?? DEFAULT_MIN_GARBAGE_SHARE;
    if (!Number.isInteger(retention) || retention < 0) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'retentionSeconds must be a whole number of 0 or more', { field: 'retentionSeconds' });
    if (!(minGarbageShare >= 0 && minGarbageShare <= 1)) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'minGarbageShare must be from 0 to 1', { field: 'minGarbageShare' });
    if (this.running) throw new SensoryError('SENSORY_ERR_COMPACTION_RUNNING', 'a purge and compaction is already running; wait for it to finish');
    this.running = true;
    const started = performance.now();
    try {
      const cutoff = new Date(Date.now() - retention * 1000).toISOString();
      const purged: CompactionResult['purged'] = [];
      const ordersFailed: CompactionResult['ordersFailed'] = [];
      for (const candidates of await this.store.purgeCandidates(cutoff)) {
        const { datasetId, datasetName } = candidates;
        // The floor first: from now on no batch or order can pin a revision the purge changes.
        await this.store.raisePurgedRevision(datasetId, candidates.maxDeletedRevision);
        for (const order of await this.orders.active(datasetId)) {
          if (!(await this.store.purgeChangesRevision(datasetId, cutoff, order.revision))) continue;
          await this.orders.fail(
            order.id,
            `revision ${order.revision} of dataset ${datasetName} held samples deleted before ${cutoff}, which the admin purge removed (retention ${retention} s)`,
          );
          ordersFailed.push({ id: order.id, dataset: datasetName, revision: order.revision });
        }
        const done = await this.store.purgeSamples(datasetId, cutoff);
        purged.push({ dataset: datasetName, ...done });
      }
      // Originals of earlier releases join the index first, so that those no sample names go too.
      const legacyOriginalsMoved = isCompacting(this.blobs) ? await this.blobs.moveLegacyOriginals() : 0;
      const blobsDropped = await this.store.dropUnreferencedBlobs();
      await this.dropDerived();
      const segments = isCompacting(this.blobs) ? await this.blobs.compact({ minGarbageShare }) : undefined;
      return { cutoff, purged, ordersFailed, legacyOriginalsMoved, blobsDropped, segments, seconds: (performance.now() - started) / 1000 };
    } finally {
      this.running = false;
    }
  }
}

function isCompacting(blobs: BlobStore): blobs is CompactingBlobStore {
  return typeof (blobs as Partial<CompactingBlobStore>).compact === 'function';
}
