import type { OrderQueue, PublishOutcome, ReceivedResult, ShardTask, TaskConsumer, TaskOutcome } from '../../ports/order-queue.js';

interface ResultQueue {
  readonly messages: Buffer[];
  readonly maxMessages: number;
  readonly ttlMs: number;
  lastUsed: number;
}

interface Consumer {
  readonly prefetch: number;
  readonly handle: (task: ShardTask) => Promise<TaskOutcome>;
  readonly inFlight: Set<Promise<void>>;
  open: boolean;
}

/**
 * The embedded shape's queue: the same semantics as the RabbitMQ one (bounded result queues that
 * refuse publishes when full, expiry when unused, requeue on failure), held in this process.
 * Nothing here survives a restart; orders recover by re-publishing their pending shards.
 */
export class MemoryOrderQueue implements OrderQueue {
  readonly kind = 'memory' as const;
  private readonly tasks: ShardTask[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly results = new Map<string, ResultQueue>();
  private closed = false;

  constructor(private readonly now: () => number = Date.now) {}

  async publishTasks(tasks: readonly ShardTask[]): Promise<void> {
    this.tasks.push(...tasks);
    this.dispatch();
  }

  async consumeTasks(prefetch: number, handle: (task: ShardTask) => Promise<TaskOutcome>): Promise<TaskConsumer> {
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

  async ensureResultQueue(orderId: string, maxMessages: number, ttlSeconds: number): Promise<boolean> {
    if (this.live(orderId)) return false;
    this.results.set(orderId, { messages: [], maxMessages, ttlMs: ttlSeconds * 1000, lastUsed: this.now() });
    return true;
  }

  async publishResult(orderId: string, body: Buffer): Promise<PublishOutcome> {
    const queue = this.live(orderId);
    // Like an unroutable message on the broker: a publish to a missing queue is dropped.
    if (!queue) return 'published';
    if (queue.messages.length >= queue.maxMessages) return 'full';
    queue.messages.push(body);
    return 'published';
  }

  async takeResults(orderId: string, max: number): Promise<ReceivedResult[]> {
    const queue = this.live(orderId);
    if (!queue) return [];
    queue.lastUsed = this.now();
    return queue.messages.splice(0, max).map((body) => {
      let settled = false;
      return {
        body,
        ack: () => {
          settled = true;
        },
        requeue: () => {
          if (settled) return;
          settled = true;
          this.live(orderId)?.messages.unshift(body);
        },
      };
    });
  }

  async deleteResultQueue(orderId: string): Promise<void> {
    this.results.delete(orderId);
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the in-process queue is closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.consumers.flatMap((consumer) => [...consumer.inFlight]));
  }

  /** The queue if it exists and has not expired (unused for its TTL). */
  private live(orderId: string): ResultQueue | undefined {
    const queue = this.results.get(orderId);
    if (queue && this.now() - queue.lastUsed > queue.ttlMs) {
      this.results.delete(orderId);
      return undefined;
    }
    return queue;
  }
}
