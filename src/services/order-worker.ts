import { setImmediate } from 'node:timers/promises';
import { recordBytes } from '../domain/dataset-shape.js';
import { isActive } from '../domain/order-lifecycle.js';
import { drawSlots } from '../domain/order-plan.js';
import { positionSlots } from '../domain/order-streams.js';
import { advanceProduced, nextChunk, park, releaseProducer, takeProducer, type NextChunk } from '../domain/stream-production.js';
import type { StreamState } from '../domain/stream-state.js';
import { allocateResultMessage } from '../formats/result-message.js';
import { releaseChunk, takeChunk } from '../lib/chunk-pool.js';
import type { Clock } from '../ports/clock.js';
import type { DatasetRecord, EligibleSample, MetadataStore } from '../ports/metadata-store.js';
import type { OrderQueue, OrderTask, StreamRef, TaskOutcome } from '../ports/order-queue.js';
import type { OrderStore, StoredOrder } from '../ports/order-store.js';
import type { BatchService } from './batch.service.js';
import type { OrderService } from './order.service.js';
import { produceTask } from './stream-queues.js';

const CANDIDATE_CACHE = 8;

/** A message rendered ahead of its publish. */
interface Ahead {
  readonly run: number;
  readonly chunk: NextChunk;
  readonly body: Promise<Buffer>;
}

/** A message rendered ahead and never published: its buffer goes back to the pool. */
function discard(ahead: Ahead | undefined): void {
  ahead?.body.then(releaseChunk, () => undefined);
}
/** How long a task holds a stream's production without renewing it (each recorded frontier renews it). */
export const PRODUCER_LEASE_MS = 30_000;
/** Confirmed messages a task publishes before it writes the stream's produced frontier. */
const RECORD_EVERY = 8;

/**
 * Fulfils produce tasks: takes the stream's producer lease, renders chunks from its produced
 * frontier (candidates and augmentations from the order's seed, pixels from the stored records)
 * and publishes them in position order, recording the frontier every few confirms. After a
 * shard's worth of positions it hands the stream on to a continuation task, so every order and
 * stream takes turns; on a full result queue it parks the stream and lets go (a poll wakes it).
 * It never waits on a queue while holding a worker slot.
 */
export class OrderWorker {
  private readonly candidates = new Map<string, Promise<readonly EligibleSample[]>>();
  private stopping = false;

  constructor(
    private readonly store: MetadataStore,
    private readonly orders: OrderStore,
    private readonly orderService: OrderService,
    private readonly queue: OrderQueue,
    private readonly batches: BatchService,
    private readonly clock: Clock,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  handle = async (task: OrderTask): Promise<TaskOutcome> => {
    // A shard task of an earlier release: its order had one stream.
    const ref: StreamRef = task.kind === 'produce' ? task.data : { orderId: task.data.orderId, generation: 0, stream: 0 };
    const taskId = task.kind === 'produce' ? task.data.taskId : `shard:${task.data.orderId}:${task.data.shard}`;
    if (!(await this.orders.get(ref.orderId))) {
      this.log(`dropped a ${task.kind} task of order ${ref.orderId}, which does not exist`);
      return 'drop';
    }
    const report = await this.orderService.get(ref.orderId);
    if (!isActive(report.status) || report.generation !== ref.generation) return 'ack';
    const stored = (await this.orders.get(ref.orderId))!;
    const dataset = await this.store.getDataset(stored.order.spec.datasetName);
    if (!dataset || dataset.id !== stored.order.spec.datasetId) {
      await this.orderService.fail(ref.orderId, `dataset ${stored.order.spec.datasetName} was deleted`);
      return 'ack';
    }
    const candidates = await this.candidatesOf(stored);
    if (candidates.length !== stored.order.spec.eligibleCount) {
      const { datasetName, eligibleCount, revision } = stored.order.spec;
      await this.orderService.fail(ref.orderId, `dataset ${datasetName} no longer holds the ${eligibleCount} samples of revision ${revision}`);
      return 'ack';
    }
    let state = await this.orders.updateStream(ref, (current) => {
      const taken = takeProducer(current, taskId, this.clock.now(), PRODUCER_LEASE_MS);
      return { state: taken.outcome === 'producing' || taken.state !== current ? taken.state : undefined, result: taken.outcome === 'producing' ? taken.state : undefined };
    });
    if (!state) return 'ack';
    return this.produce(stored, dataset, candidates, ref, taskId, state);
  };

  private async produce(stored: StoredOrder, dataset: DatasetRecord, candidates: readonly EligibleSample[], ref: StreamRef, taskId: string, start: StreamState): Promise<TaskOutcome> {
    // `recorded` is the stream as stored; `state` is it with the frontier moved past every
    // confirmed publish. The frontier is written every RECORD_EVERY messages (and before the task
    // parks, hands on or lets go), not after each one: a write per message was a transaction
    // (SQLite) or a round trip (PostgreSQL) per 1 MiB. A crash in between only publishes those
    // messages again, which delivery drops as copies, as it does for the one message a crash
    // between confirm and write always could.
    let recorded = start;
    let state = start;
    let pending = 0;
    let pendingFrom = start.produced;
    const record = async (): Promise<boolean> => {
      if (pending === 0) return true;
      const span: NextChunk = { skipFrom: recorded.produced, from: pendingFrom, to: state.produced };
      const advanced = await this.orders.updateStream(ref, (current) => {
        const next = advanceProduced(current, taskId, state.run, span, this.clock.now(), PRODUCER_LEASE_MS);
        return { state: next.ok ? next.state : undefined, result: next.ok ? next.state : undefined };
      });
      pending = 0;
      if (!advanced) return false;
      recorded = advanced;
      state = advanced;
      return true;
    };
    let covered = 0;
    // The chunk expected next, rendered while the queue confirms the one before: a message is a
    // function of the order, its run and its positions, so it is used only if production goes
    // on exactly there, and dropped otherwise. Publishes stay one at a time, in position order.
    let ahead: Ahead | undefined;
    try {
      for (;;) {
        const chunk = nextChunk(state, stored.order.spec.chunkSamples);
        if (!chunk) return (await record()) ? await this.letGo(ref, taskId, 'ack') : 'ack';
        if (this.stopping) return (await record()) ? await this.letGo(ref, taskId, 'requeue') : 'ack';
        // Rendering is synchronous work: the process's other work (in the embedded shape, the
        // polls being answered) goes first, once per message.
        await setImmediate();
        let body: Buffer;
        if (ahead && ahead.run === state.run && ahead.chunk.from === chunk.from && ahead.chunk.to === chunk.to) body = await ahead.body;
        else {
          discard(ahead);
          body = await this.render(stored, dataset, candidates, ref, state.run, chunk);
        }
        ahead = undefined;
        const publishing = this.queue.publishResult(ref, body);
        const handsOn = covered + (chunk.to - chunk.skipFrom) >= stored.order.spec.shardSize;
        const guess = handsOn || this.stopping ? undefined : nextChunk({ ...state, produced: chunk.to }, stored.order.spec.chunkSamples);
        if (guess) ahead = { run: state.run, chunk: guess, body: this.render(stored, dataset, candidates, ref, state.run, guess) };
        // Awaited only if used: a failed render of a chunk never published is no error.
        ahead?.body.catch(() => undefined);
        if ((await publishing) === 'full') {
          if (!(await record())) return 'ack';
          await this.orders.updateStream(ref, (current) => {
            const parked = park(current, taskId, state.run);
            return { state: parked.ok ? parked.state : undefined, result: undefined };
          });
          return 'ack';
        }
        if (pending === 0) pendingFrom = chunk.from;
        pending++;
        state = { ...state, produced: chunk.to };
        covered += chunk.to - chunk.skipFrom;
        const shardDone = covered >= stored.order.spec.shardSize && nextChunk(state, 1) !== undefined;
        // Another task took the stream over, or production was reset: this one stops.
        if ((pending >= RECORD_EVERY || shardDone) && !(await record())) return 'ack';
        if (shardDone) {
          await this.letGo(ref, taskId, 'ack');
          await this.queue.publishTasks([produceTask(ref)]);
          return 'ack';
        }
      }
    } finally {
      discard(ahead);
    }
  }

  private async letGo(ref: StreamRef, taskId: string, outcome: TaskOutcome): Promise<TaskOutcome> {
    await this.orders.updateStream(ref, (current) => {
      const released = releaseProducer(current, taskId);
      return { state: released === current ? undefined : released, result: undefined };
    });
    return outcome;
  }

  /** One result message: the chunk's slots, their samples and augmentations, and their pixels. */
  private async render(stored: StoredOrder, dataset: DatasetRecord, candidates: readonly EligibleSample[], ref: StreamRef, run: number, chunk: NextChunk): Promise<Buffer> {
    const { spec, plan } = stored.order;
    const slots = positionSlots(plan, ref.generation, ref.stream, chunk);
    const draws = drawSlots(plan, slots, spec);
    const samples = draws.map((draw) => candidates[draw.candidate]);
    const augments = draws.map((draw) => draw.augment);
    // The pixels are rendered straight into the message (no intermediate array, no copy), a
    // buffer of the chunk pool: the queue gives it back once it no longer reads it.
    const { body, pixels } = allocateResultMessage({
      orderId: ref.orderId,
      generation: ref.generation,
      stream: ref.stream,
      run,
      from: chunk.from,
      to: chunk.to,
      slots,
      ids: samples.map((sample) => sample.id),
      labels: samples.map((sample) => sample.categoryIndex),
      epochs: draws.map((draw) => draw.epoch),
      augments,
      recordBytes: recordBytes(dataset),
    }, takeChunk);
    try {
      await this.batches.render({ dataset, revision: spec.revision, seed: spec.seed, samples, augments, categories: [], dtype: 'uint8', labels: 'index' }, 0, samples.length, pixels);
    } catch (error) {
      releaseChunk(body);
      throw error;
    }
    return body;
  }

  /** Tasks in flight finish their current chunk, let their stream go and go back to the task queue. */
  stop(): void {
    this.stopping = true;
  }

  private candidatesOf(stored: StoredOrder): Promise<readonly EligibleSample[]> {
    const { spec } = stored.order;
    let found = this.candidates.get(spec.id);
    if (!found) {
      found = this.store.eligibleSamples(spec.datasetId, { revision: spec.revision, split: spec.split, categoryIndexes: spec.categoryIndexes ?? undefined });
      this.candidates.set(spec.id, found);
      found.catch(() => this.candidates.delete(spec.id));
      if (this.candidates.size > CANDIDATE_CACHE) this.candidates.delete(this.candidates.keys().next().value!);
    }
    return found;
  }
}

