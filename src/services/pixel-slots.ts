import type { MetadataStore } from '../ports/metadata-store.js';

const BLOCK = 64;

/**
 * Hands out pixel slots from blocks reserved in the metadata store, so most samples need no
 * extra database round trip. Slots of a block left unused (a crash, a restart, a duplicate) stay
 * holes in the pixel file: nothing refers to them.
 */
export class PixelSlotAllocator {
  private readonly blocks = new Map<number, Promise<{ next: number; end: number }>>();

  constructor(private readonly store: MetadataStore) {}

  async next(datasetId: number): Promise<number> {
    for (;;) {
      let block = this.blocks.get(datasetId);
      if (!block) {
        block = this.store.reservePixelSlots(datasetId, BLOCK).then((first) => ({ next: first, end: first + BLOCK }));
        this.blocks.set(datasetId, block);
        block.catch(() => this.blocks.delete(datasetId));
      }
      const current = await block;
      if (current.next < current.end) return current.next++;
      if (this.blocks.get(datasetId) === block) this.blocks.delete(datasetId);
    }
  }

  forget(datasetId: number): void {
    this.blocks.delete(datasetId);
  }
}
