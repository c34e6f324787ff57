/** A shard task: small, it names its slice of the order, never its samples' bytes. */
export interface ShardTask {
  readonly kind: 'shard';
  readonly version: 1;
  readonly data: { readonly orderId: string; readonly shard: number };
}

/** What a task handler decides: done, try again later (another worker may take it), or discard. */
export type TaskOutcome = 'ack' | 'requeue' | 'drop';

export interface TaskConsumer {
  /** Stops taking tasks, hands back those not started, waits for those in flight. Safe twice. */
  close(): Promise<void>;
}

/** A result message taken from an order's queue; settle it exactly once. */
export interface ReceivedResult {
  readonly body: Buffer;
  ack(): void;
  /** Back to the queue, to be taken again. */
  requeue(): void;
}

export type PublishOutcome = 'published' | 'full';

/**
 * Shard tasks and per-order result queues. Two implementations: in-process (embedded shape) and
 * RabbitMQ (production); test/order-queue.contract.test.ts runs on both.
 */
export interface OrderQueue {
  readonly kind: 'memory' | 'amqp';
  /** Durable once the promise resolves (publisher confirms on RabbitMQ). */
  publishTasks(tasks: readonly ShardTask[]): Promise<void>;
  consumeTasks(prefetch: number, handle: (task: ShardTask) => Promise<TaskOutcome>): Promise<TaskConsumer>;
  /** Creates the order's result queue (bounded, expiring after ttlSeconds unused); true when it did not exist. */
  ensureResultQueue(orderId: string, maxMessages: number, ttlSeconds: number): Promise<boolean>;
  /** Confirmed publish; 'full' when the bounded queue refused it (back-pressure: wait and retry). */
  publishResult(orderId: string, body: Buffer): Promise<PublishOutcome>;
  /** Takes up to `max` messages now (no waiting); an empty list when none are ready or the queue is missing. */
  takeResults(orderId: string, max: number): Promise<ReceivedResult[]>;
  deleteResultQueue(orderId: string): Promise<void>;
  /** Throws when the queue backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function resultQueueName(orderId: string): string {
  return `sensory.order.${orderId}`;
}
