import { SensoryError } from '../domain/errors.js';
import { ConcurrencyLimit } from '../lib/concurrency.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { Imaging } from '../ports/imaging.js';
import type { MetadataStore } from '../ports/metadata-store.js';
import type { ThumbnailCache } from '../ports/thumbnail-cache.js';
import { requireDataset } from './dataset.service.js';

/** The preview sizes (longest side, px): few, so the cache stays small and every client shares it. */
export const THUMBNAIL_SIZES = [64, 128, 256, 512] as const;
export const DEFAULT_THUMBNAIL_SIZE = 128;
/** Bumped when the way previews are made changes: part of the validator, so caches let go of the old ones. */
const RECIPE = 'w2';

export interface ThumbnailRef {
  readonly sha256: string;
  readonly size: number;
  /** The recipe and size (`w2-128`): the cache key beside the SHA-256. */
  readonly variant: string;
  /** A strong validator: the original's content and the recipe decide the bytes. */
  readonly etag: string;
}

/**
 * Small WebP previews of samples, made with the imaging port on first request and cached by the
 * original's SHA-256 (the same bytes in two datasets share one preview). Making is bounded to a
 * few at once, and concurrent requests for one preview share a single make.
 */
export class ThumbnailService {
  private readonly making = new Map<string, Promise<Buffer>>();
  private readonly limit: ConcurrencyLimit;

  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly imaging: Imaging,
    private readonly cache: ThumbnailCache,
    concurrency = 2,
  ) {
    this.limit = new ConcurrencyLimit(concurrency);
  }

  /** Which preview answers (dataset, id, size): throws for a wrong size, dataset or id. */
  async locate(datasetName: string, id: number, size: number = DEFAULT_THUMBNAIL_SIZE): Promise<ThumbnailRef> {
    if (!(THUMBNAIL_SIZES as readonly number[]).includes(size)) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `size must be one of ${THUMBNAIL_SIZES.join(', ')}; got ${size}`, { field: 'size', allowed: [...THUMBNAIL_SIZES] });
    }
    const dataset = await requireDataset(this.store, datasetName);
    const sample = await this.store.getSample(dataset.id, id);
    if (!sample) throw new SensoryError('SENSORY_ERR_SAMPLE_NOT_FOUND', `dataset ${dataset.name} has no sample ${id}`);
    const variant = `${RECIPE}-${size}`;
    return { sha256: sample.sha256, size, variant, etag: `"${variant}-${sample.sha256}"` };
  }

  /** The preview's bytes: from the cache, or made from the original and cached. */
  async bytes(ref: ThumbnailRef): Promise<Buffer> {
    const cached = await this.cache.get(ref.sha256, ref.variant);
    if (cached) return cached;
    const key = `${ref.sha256}-${ref.variant}`;
    let pending = this.making.get(key);
    if (!pending) {
      pending = this.limit.run(() => this.make(ref)).finally(() => this.making.delete(key));
      this.making.set(key, pending);
    }
    return pending;
  }

  private async make(ref: ThumbnailRef): Promise<Buffer> {
    const original = await this.blobs.get(ref.sha256);
    const preview = await this.imaging.thumbnail(original, ref.size);
    // A cache that cannot be written (a full disk) costs a remake next time, not this answer.
    await this.cache.put(ref.sha256, ref.variant, preview).catch(() => undefined);
    return preview;
  }

  /**
   * Removes the previews of originals the blob store no longer holds (after the admin purge
   * dropped them): a preview is a copy of the image, so it goes with it. Returns how many.
   */
  async dropOrphans(): Promise<number> {
    let dropped = 0;
    for await (const { sha256, variant } of this.cache.list()) {
      if (await this.blobs.has(sha256)) continue;
      await this.cache.remove(sha256, variant);
      dropped++;
    }
    return dropped;
  }
}
