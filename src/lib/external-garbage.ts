import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'major' | 'minor'; execution?: 'async' | 'sync' }) => void;
let exposedGc: Collect | undefined;

/** V8's `gc`, exposed to a fresh context only: the flag changes nothing else. */
function gc(): Collect {
  if (!exposedGc) {
    setFlagsFromString('--expose-gc');
    exposedGc = runInNewContext('gc') as Collect;
  }
  return exposedGc;
}

/**
 * Asks for a full collection of the event loop's heap once memory outside it (the buffers of
 * network reads, above all) has grown by `growthBytes` since the lowest level seen.
 *
 * V8 frees an outside buffer only when its handle is collected, and schedules full collections
 * by what grows on its own heap, or once the outside memory has grown by 64 MiB. A bulk upload
 * whose items are decoded on threads allocates little on the event loop's heap for the ~30 KB
 * each item read from the socket: the buffers of items committed long ago piled up to that
 * 64 MiB line (serve grew ~40 MB more in a 120 MB body than with decoding on the event loop).
 * One incremental collection per `growthBytes` of buffers keeps the pile at about that size; it
 * replaces the collection V8 would make a little later rather than adding one.
 */
export class ExternalGarbage {
  private lowest = Number.POSITIVE_INFINITY;
  private sinceCheck = 0;

  constructor(
    private readonly growthBytes = 24 * 1024 * 1024,
    /** Items between two looks at the outside memory (a look costs a few microseconds). */
    private readonly checkEvery = 64,
    /** Bytes outside the heap now, and the collection to ask for (given by tests of the rule). */
    private readonly outsideBytes: () => number = () => getHeapStatistics().external_memory,
    private readonly collect: () => void = requestFullCollection,
  ) {}

  /** Counts one item read; every `checkEvery` items, collects if the outside memory grew enough. */
  itemRead(): void {
    if (++this.sinceCheck < this.checkEvery) return;
    this.sinceCheck = 0;
    const outside = this.outsideBytes();
    if (outside < this.lowest) this.lowest = outside;
    if (outside - this.lowest < this.growthBytes) return;
    this.lowest = outside;
    this.collect();
  }
}

/** An incremental full collection of this thread's heap. */
export function requestFullCollection(): void {
  gc()({ type: 'major', execution: 'async' });
}

/**
 * A minor collection of this thread's heap (for the decode threads). Buffers outside the heap
 * (the inflate output of each decode) are freed only when their handles are collected, and a
 * thread that allocates so little on its heap is collected rarely: about 40 MB of dead buffers
 * piled up in 4,000 decodes, 23 MB with a collection every 128.
 */
export function collectYoung(): void {
  gc()({ type: 'minor' });
}
