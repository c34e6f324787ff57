import { releaseChunk } from '../../lib/chunk-pool.js';
import {
  parseTask,
  resultQueueName,
  type OrderQueue,
  type QueueTask,
  type PublishOutcome,
  type ReceivedResult,
  type ResultQueueBound,
  type StreamRef,
  type TaskConsumer,
  type TaskOutcome,
} from '../../ports/order-queue.js';

interface Message {
  /** Publish order: a message handed back goes back to its place, as on RabbitMQ. */
  readonly seq: number;
  readonly body: Buffer;
}

interface ResultQueue {
  readonly messages: Message[];
  readonly bound: ResultQueueBound;
  readonly ttlMs: number;
  /** Bytes of the messages waiting (the bound counts those, as RabbitMQ's does). */
  bytes: number;
  lastUsed: number;
  /** A poll found it empty: its next message is taken even past the total (so it always moves). */
  wanted: boolean;
}

interface Consumer {
  readonly prefetch: number;
  readonly handle: (task: QueueTask) => Promise<TaskOutcome>;
  readonly inFlight: Set<Promise<void>>;
  open: boolean;
}

/**
 * The embedded shape's queue: the same semantics as the RabbitMQ one (result queues bounded in
 * messages and bytes that refuse publishes when full, expiry when unused, requeue on failure),
 * held in this process. Nothing here survives a restart; orders recover when polled. Besides each
 * queue's bound, the bytes waiting in all of them are bounded (`maxTotalBytes`): a publish past it
 * is refused too — unless a poll found that queue empty, so a polled stream always moves (the
 * total is passed by one message per such stream at most) — and the orders refused hear a
 * signal once polls made room.
 */
export class MemoryOrderQueue implements OrderQueue {
  readonly kind = 'memory' as const;
  private readonly tasks: QueueTask[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly results = new Map<string, ResultQueue>();
  private readonly listeners: ((orderId: string, stream?: StreamRef) => void)[] = [];
  private closed = false;
  private seq = 0;
  /** Bytes waiting in every result queue. */
  private totalBytes = 0;
  /** Orders whose publish was refused for the total: signalled once there is room. */
  private readonly refusedForTotal = new Set<string>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxTotalBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Bytes waiting in every result queue (messages taken and not settled are not counted). */
  bufferedBytes(): number {
    return this.totalBytes;
  }

  private addBytes(queue: ResultQueue, bytes: number): void {
    queue.bytes += bytes;
    this.totalBytes += bytes;
    if (bytes < 0 && this.refusedForTotal.size > 0 && this.totalBytes < this.maxTotalBytes) {
      const orders = [...this.refusedForTotal];
      this.refusedForTotal.clear();
      for (const orderId of orders) this.emit(orderId);
    }
  }

  async publishTasks(tasks: readonly QueueTask[]): Promise<void> {
    // Through JSON, as on the broker: a handler never shares an object with the publisher.
    for (const task of tasks) {
      const parsed = parseTask(JSON.parse(JSON.stringify(task)));
      if (parsed) this.tasks.push(parsed);
    }
    this.dispatch();
  }

  async consumeTasks(prefetch: number, handle: (task: QueueTask) => Promise<TaskOutcome>): Promise<TaskConsumer> {
    const consumer: Consumer = { prefetch, handle, inFlight: new Set(), open: true };
    this.consumers.push(consumer);
    this.dispatch();
    return {
      close: async () => {
        consumer.open = false;
        await Promise.allSettled([...consumer.inFlight]);
        const index = this.consumers.indexOf(consumer);
        if (index >= 0) this.consumers.splice(index, 1);
      },
    };
  }

  private dispatch(): void {
    for (const consumer of this.consumers) {
      while (consumer.open && consumer.inFlight.size < consumer.prefetch && this.tasks.length > 0) {
        const task = this.tasks.shift()!;
        const run = consumer
          .handle(task)
          .catch((): TaskOutcome => 'requeue')
          .then((outcome) => {
            if (outcome === 'requeue' && !this.closed) this.tasks.push(task);
          })
          .finally(() => {
            consumer.inFlight.delete(run);
            if (!this.closed) setImmediate(() => this.dispatch());
          });
        consumer.inFlight.add(run);
      }
    }
  }

  async ensureResultQueue(ref: StreamRef, bound: ResultQueueBound, ttlSeconds: number): Promise<boolean> {
    if (this.live(ref)) return false;
    this.results.set(resultQueueName(ref), { messages: [], bound, ttlMs: ttlSeconds * 1000, bytes: 0, lastUsed: this.now(), wanted: false });
    return true;
  }

  async publishResult(ref: StreamRef, body: Buffer): Promise<PublishOutcome> {
    const queue = this.live(ref);
    // Like an unroutable message on the broker: a publish to a missing queue is dropped.
    if (!queue) return dropped(body, 'published');
    if (queue.messages.length >= queue.bound.maxMessages || queue.bytes + body.length > queue.bound.maxBytes) return dropped(body, 'full');
    if (this.totalBytes + body.length > this.maxTotalBytes && !(queue.wanted && queue.messages.length === 0)) {
      this.refusedForTotal.add(ref.orderId);
      return dropped(body, 'full');
    }
    queue.messages.push({ seq: this.seq++, body });
    queue.wanted = false;
    this.addBytes(queue, body.length);
    this.emit(ref.orderId, ref);
    return 'published';
  }

  async takeResults(ref: StreamRef, max: number): Promise<ReceivedResult[]> {
    const queue = this.live(ref);
    if (!queue) return [];
    queue.lastUsed = this.now();
    const taken = queue.messages.splice(0, max);
    if (taken.length === 0) queue.wanted = true;
    this.addBytes(queue, -taken.reduce((sum, message) => sum + message.body.length, 0));
    return taken.map((message) => {
      let settled = false;
      return {
        body: message.body,
        ack: () => {
          if (settled) return;
          settled = true;
          // Acknowledged: gone from the queue, and whoever took it is done reading it.
          releaseChunk(message.body);
        },
        requeue: () => {
          if (settled) return;
          settled = true;
          const current = this.results.get(resultQueueName(ref));
          // Back to the queue it came from, if that queue still exists.
          if (current === queue && this.live(ref)) {
            let at = 0;
            while (at < queue.messages.length && queue.messages[at].seq < message.seq) at++;
            queue.messages.splice(at, 0, message);
            this.addBytes(queue, message.body.length);
            this.emit(ref.orderId, ref);
          } else {
            releaseChunk(message.body);
          }
        },
      };
    });
  }

  async purgeResults(ref: StreamRef): Promise<void> {
    const queue = this.live(ref);
    if (queue) this.drop(queue);
  }

  async deleteResultQueue(ref: StreamRef): Promise<void> {
    const name = resultQueueName(ref);
    const queue = this.results.get(name);
    this.results.delete(name);
    if (queue) this.drop(queue);
  }

  /** A queue emptied or removed: its waiting messages' bodies go back to the pool. */
  private drop(queue: ResultQueue): void {
    for (const message of queue.messages.splice(0)) releaseChunk(message.body);
    this.addBytes(queue, -queue.bytes);
  }

  onSignal(listener: (orderId: string, stream?: StreamRef) => void): void {
    this.listeners.push(listener);
  }

  async signal(orderId: string): Promise<void> {
    this.emit(orderId);
  }

  /** After the current call returns: a listener never runs inside a publish or a requeue. */
  private emit(orderId: string, stream?: StreamRef): void {
    if (this.listeners.length === 0) return;
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(orderId, stream);
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the in-process queue is closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.consumers.flatMap((consumer) => [...consumer.inFlight]));
  }

  /** The queue if it exists and has not expired (unused for its TTL). */
  private live(ref: StreamRef): ResultQueue | undefined {
    const name = resultQueueName(ref);
    const queue = this.results.get(name);
    if (queue && this.now() - queue.lastUsed > queue.ttlMs) {
      this.results.delete(name);
      this.drop(queue);
      return undefined;
    }
    return queue;
  }
}

/** A publish the queue does not keep: its body goes back to the pool. */
function dropped(body: Buffer, outcome: PublishOutcome): PublishOutcome {
  releaseChunk(body);
  return outcome;
}
