import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as realSleep } from 'node:timers/promises';
import { FileBlobStore } from '../../src/adapters/files/file.blob-store.js';
import { FilePixelStore } from '../../src/adapters/files/file.pixel-store.js';
import { SharpImaging } from '../../src/adapters/imaging/sharp.imaging.js';
import { MemoryOrderQueue } from '../../src/adapters/queue/memory.order-queue.js';
import { SqliteDatabase } from '../../src/adapters/sqlite/sqlite.database.js';
import { SqliteMetadataStore } from '../../src/adapters/sqlite/sqlite.metadata-store.js';
import { SqliteOrderStore } from '../../src/adapters/sqlite/sqlite.order-store.js';
import type { Clock } from '../../src/ports/clock.js';
import { SILENT_TELEMETRY } from '../../src/ports/telemetry.js';
import { orderTasksOnly, type QueueTask, type TaskConsumer } from '../../src/ports/order-queue.js';
import { BatchService } from '../../src/services/batch.service.js';
import { DatasetService } from '../../src/services/dataset.service.js';
import { IngestService } from '../../src/services/ingest.service.js';
import { OrderService, type Caller, type OrderSettings, type PollRequest, type PollResult } from '../../src/services/order.service.js';
import { OrderWorker } from '../../src/services/order-worker.js';
import { makePng } from './harness.js';

/**
 * The order service on real in-process adapters (SQLite, the in-process queue, files, sharp),
 * with a fake clock: time moves only when a test (or a waiting poll) moves it.
 */

export class FakeClock implements Clock {
  constructor(public time = Date.parse('2030-06-01T00:00:00.000Z')) {}

  now(): number {
    return this.time;
  }

  /** Moves time on, and lets real I/O (file reads, the worker) make progress meanwhile. */
  async sleep(ms: number): Promise<void> {
    this.time += ms;
    await realSleep(1);
  }

  advance(ms: number): void {
    this.time += ms;
  }
}

export const OWNER: Caller = { owner: 'owner-a', admin: false };
export const STRANGER: Caller = { owner: 'owner-b', admin: false };
export const ADMIN: Caller = { owner: 'owner-admin', admin: true };

export const SETTINGS: OrderSettings = {
  shardSize: 5000,
  ttlSeconds: 600,
  leaseMs: 10_000,
  maxSamples: 100_000_000,
  maxShards: 100_000,
  maxRanks: 64,
  maxTtlSeconds: 7 * 24 * 3600,
  // The fake clock moves by what a poll waits: small steps, as a busy worker's results would wake it.
  pollRecheckMs: 15,
};

export interface ServiceWorld {
  readonly clock: FakeClock;
  readonly orders: OrderService;
  readonly store: SqliteMetadataStore;
  readonly orderStore: SqliteOrderStore;
  readonly queue: MemoryOrderQueue;
  readonly datasets: DatasetService;
  /** Every task published, in order. */
  readonly tasks: QueueTask[];
  /** Sample ids of the dataset seeded by `seed`, with their labels. */
  readonly samples: Map<number, number>;
  startWorker(concurrency?: number): Promise<TaskConsumer>;
  seed(name: string, count: number, side?: number): Promise<number[]>;
  close(): Promise<void>;
}

export async function openWorld(settings: Partial<OrderSettings> = {}): Promise<ServiceWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'sensory-orders-service-'));
  const clock = new FakeClock();
  const database = new SqliteDatabase(join(dir, 'sensory.db'));
  const store = new SqliteMetadataStore(database);
  await store.migrate();
  const orderStore = new SqliteOrderStore(database);
  const blobs = new FileBlobStore(join(dir, 'blobs'));
  const pixels = new FilePixelStore(join(dir, 'pixels'));
  const queue = new MemoryOrderQueue(() => clock.now());
  const tasks: QueueTask[] = [];
  const publish = queue.publishTasks.bind(queue);
  queue.publishTasks = async (published) => {
    tasks.push(...published);
    return publish(published);
  };
  const batches = new BatchService(store, pixels, 4096, SILENT_TELEMETRY);
  const orders = new OrderService(orderStore, queue, batches, store, { ...SETTINGS, ...settings }, clock);
  const datasets = new DatasetService(store, pixels, blobs);
  const ingest = new IngestService(store, blobs, pixels, new SharpImaging(), 1 << 20, SILENT_TELEMETRY);
  const consumers: TaskConsumer[] = [];
  const workers: OrderWorker[] = [];
  const samples = new Map<number, number>();
  return {
    clock,
    orders,
    store,
    orderStore,
    queue,
    datasets,
    tasks,
    samples,
    startWorker: async (concurrency = 2) => {
      const worker = new OrderWorker(store, orderStore, orders, queue, batches, clock);
      workers.push(worker);
      const consumer = await queue.consumeTasks(concurrency, orderTasksOnly(worker.handle));
      consumers.push(consumer);
      return consumer;
    },
    seed: async (name, count, side = 4) => {
      await datasets.put(name, { width: side, height: side, channels: 3 });
      const ids: number[] = [];
      for (let i = 0; i < count; i++) {
        const stored = await ingest.add(name, { category: `c${i % 3}`, bytes: await makePng(side, side, 3, 1000 + i) });
        ids.push(stored.sample.id);
        samples.set(stored.sample.id, stored.sample.categoryIndex);
      }
      return ids;
    },
    close: async () => {
      for (const worker of workers) worker.stop();
      await Promise.allSettled(consumers.map((consumer) => consumer.close()));
      await queue.close();
      await pixels.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One poll whose answer is sent whole (or not: `sent` false, a cut connection). */
export async function pollOnce(orders: OrderService, id: string, caller: Caller, request: PollRequest, sent = true): Promise<PollResult> {
  const result = await orders.poll(id, caller, request);
  await result.settle(sent);
  return result;
}

/** Polls until an answer carries samples (or says done), with real pauses while the worker produces. */
export async function pollSome(orders: OrderService, id: string, caller: Caller, request: PollRequest, sent = true, timeoutMs = 15_000): Promise<PollResult> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const result = await pollOnce(orders, id, caller, request, sent);
    if (result.count > 0 || result.done) return result;
    assert.ok(performance.now() < deadline, `no samples for order ${id} after ${timeoutMs} ms`);
    await realSleep(5);
  }
}

/** Every slot a rank is handed until done, polling in shared mode. */
export async function drainShared(orders: OrderService, id: string, caller: Caller, request: PollRequest = {}): Promise<{ slots: number[]; epochs: number[]; ids: number[]; polls: number }> {
  const out = { slots: [] as number[], epochs: [] as number[], ids: [] as number[], polls: 0 };
  for (;;) {
    const result = await pollSome(orders, id, caller, request);
    out.polls++;
    out.slots.push(...result.slots);
    out.epochs.push(...result.epochs);
    out.ids.push(...result.plan.samples.map((sample) => sample.id));
    if (result.done) return out;
  }
}

/** Every slot a rank is handed until done, in cursor mode, acknowledging each answer with the next poll (and a final ack). */
export async function drainCursor(
  orders: OrderService,
  id: string,
  caller: Caller,
  request: PollRequest = {},
  start = 'start',
): Promise<{ slots: number[]; ids: number[]; cursor: string; polls: number }> {
  const out = { slots: [] as number[], ids: [] as number[], cursor: start, polls: 0 };
  let ack: string | undefined;
  for (;;) {
    const result = await pollSome(orders, id, caller, { ...request, cursor: out.cursor, ...(ack ? { ack } : {}) });
    out.polls++;
    out.slots.push(...result.slots);
    out.ids.push(...result.plan.samples.map((sample) => sample.id));
    out.cursor = result.cursor!;
    ack = result.cursor;
    if (result.done) {
      await pollOnce(orders, id, caller, { ...request, cursor: out.cursor, ack: out.cursor, max: 0 });
      return out;
    }
  }
}

export function assertExactlyOnce(slots: readonly number[], count: number, what = 'the order'): void {
  const sorted = [...slots].sort((a, b) => a - b);
  const doubled = sorted.filter((slot, i) => i > 0 && sorted[i - 1] === slot);
  assert.deepEqual(doubled.slice(0, 10), [], `${doubled.length} slot(s) of ${what} delivered twice`);
  assert.deepEqual(sorted, Array.from({ length: count }, (_, i) => i), `every slot of ${what} once`);
}

/** Waits (in real time) until `check` holds, while the worker runs. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await realSleep(5);
  }
}
