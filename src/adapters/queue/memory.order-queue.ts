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
 * held in this process. Nothing here survives a restart; orders recover when polled.
 */
export class MemoryOrderQueue implements OrderQueue {
  readonly kind = 'memory' as const;
  private readonly tasks: QueueTask[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly results = new Map<string, ResultQueue>();
  private closed = false;
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

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
    this.results.set(resultQueueName(ref), { messages: [], bound, ttlMs: ttlSeconds * 1000, bytes: 0, lastUsed: this.now() });
    return true;
  }

  async publishResult(ref: StreamRef, body: Buffer): Promise<PublishOutcome> {
    const queue = this.live(ref);
    // Like an unroutable message on the broker: a publish to a missing queue is dropped.
    if (!queue) return 'published';
    if (queue.messages.length >= queue.bound.maxMessages || queue.bytes + body.length > queue.bound.maxBytes) return 'full';
    queue.messages.push({ seq: this.seq++, body });
    queue.bytes += body.length;
    return 'published';
  }

  async takeResults(ref: StreamRef, max: number): Promise<ReceivedResult[]> {
    const queue = this.live(ref);
    if (!queue) return [];
    queue.lastUsed = this.now();
    const taken = queue.messages.splice(0, max);
    queue.bytes -= taken.reduce((sum, message) => sum + message.body.length, 0);
    return taken.map((message) => {
      let settled = false;
      return {
        body: message.body,
        ack: () => {
          settled = true;
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
            queue.bytes += message.body.length;
          }
        },
      };
    });
  }

  async purgeResults(ref: StreamRef): Promise<void> {
    const queue = this.live(ref);
    if (!queue) return;
    queue.messages.length = 0;
    queue.bytes = 0;
  }

  async deleteResultQueue(ref: StreamRef): Promise<void> {
    this.results.delete(resultQueueName(ref));
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
      return undefined;
    }
    return queue;
  }
}
