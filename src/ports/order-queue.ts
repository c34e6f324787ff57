/**
 * The task catalogue: small messages that name work, never samples' bytes. A worker produces one
 * stream of an order for a while (one shard's worth of positions), then publishes a continuation
 * task, so tasks of every order and stream take turns on the queue.
 */
export interface ProduceTask {
  readonly kind: 'produce';
  readonly version: 2;
  readonly data: {
    readonly orderId: string;
    readonly generation: number;
    readonly stream: number;
    /** Unique per task: the same task delivered again (its worker died) takes over its lease at once. */
    readonly taskId: string;
  };
}

/** A task of an earlier release (one per shard of a single-stream order); handled as a produce task of stream 0. */
export interface ShardTask {
  readonly kind: 'shard';
  readonly version: 1;
  readonly data: { readonly orderId: string; readonly shard: number };
}

export type OrderTask = ProduceTask | ShardTask;

/** An export job to run now: a runner takes it (a sweep takes jobs whose task was lost). */
export interface ExportTask {
  readonly kind: 'export';
  readonly version: 1;
  readonly data: { readonly jobId: string };
}

/** Every task the queue carries. */
export type QueueTask = OrderTask | ExportTask;

/** What a task handler decides: done, try again later (another worker may take it), or discard. */
export type TaskOutcome = 'ack' | 'requeue' | 'drop';

export interface TaskConsumer {
  /** Stops taking tasks, hands back those not started, waits for those in flight. Safe twice. */
  close(): Promise<void>;
}

/** One stream of one generation of an order: it has its own result queue. */
export interface StreamRef {
  readonly orderId: string;
  readonly generation: number;
  readonly stream: number;
}

/** How much a result queue holds before it refuses publishes: messages and bytes of their bodies. */
export interface ResultQueueBound {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

/** A result message taken from a stream's queue; settle it exactly once. */
export interface ReceivedResult {
  readonly body: Buffer;
  ack(): void;
  /** Back to the queue, to be taken again. */
  requeue(): void;
}

export type PublishOutcome = 'published' | 'full';

/**
 * Tasks and per-stream result queues. Two implementations: in-process (embedded shape) and
 * RabbitMQ (production); test/order-queue.contract.test.ts runs on both.
 */
export interface OrderQueue {
  readonly kind: 'memory' | 'amqp';
  /** Durable once the promise resolves (publisher confirms on RabbitMQ). */
  publishTasks(tasks: readonly QueueTask[]): Promise<void>;
  /** Tasks of unknown kinds or versions are dropped without reaching `handle`. */
  consumeTasks(prefetch: number, handle: (task: QueueTask) => Promise<TaskOutcome>): Promise<TaskConsumer>;
  /** Creates the stream's result queue (bounded, expiring after ttlSeconds unused); true when it did not exist. */
  ensureResultQueue(ref: StreamRef, bound: ResultQueueBound, ttlSeconds: number): Promise<boolean>;
  /**
   * Confirmed publish; 'full' when the bounded queue refused it (back-pressure). The body is the
   * queue's from the call on: one from the chunk pool (lib/chunk-pool.ts) goes back to the pool
   * once the queue no longer reads it (sent to the broker; or acknowledged, purged or refused).
   */
  publishResult(ref: StreamRef, body: Buffer): Promise<PublishOutcome>;
  /** Takes up to `max` messages now (no waiting), in queue order; [] when none are ready or the queue is missing. */
  takeResults(ref: StreamRef, max: number): Promise<ReceivedResult[]>;
  /** Removes the messages waiting in the queue (not those taken and unsettled). */
  purgeResults(ref: StreamRef): Promise<void>;
  deleteResultQueue(ref: StreamRef): Promise<void>;
  /**
   * Subscribes to order signals: results published to one of an order's streams or handed back
   * to its queue (with that stream), or signal() called for it (the whole order) — by this
   * process or, on RabbitMQ, by any other. Signals are hints (one may be lost): a listener still
   * looks again now and then.
   */
  onSignal(listener: (orderId: string, stream?: StreamRef) => void): void;
  /** Signals the order to every listener (its status changed, say); best effort. */
  signal(orderId: string): Promise<void>;
  /** Throws when the queue backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function resultQueueName(ref: StreamRef): string {
  return `sensory.order.${ref.orderId}.${ref.generation}.${ref.stream}`;
}

/** A handler of order tasks as a handler of every task: other kinds are dropped (for consumers that only know orders). */
export function orderTasksOnly(handle: (task: OrderTask) => Promise<TaskOutcome>): (task: QueueTask) => Promise<TaskOutcome> {
  return async (task) => (task.kind === 'export' ? 'drop' : handle(task));
}

/** A task read from the queue, or undefined when it is not one this release knows. */
export function parseTask(value: unknown): QueueTask | undefined {
  const task = value as { kind?: unknown; version?: unknown; data?: Record<string, unknown> } | null;
  const data = task?.data;
  if (task?.kind === 'export' && task.version === 1 && typeof data?.jobId === 'string') return task as ExportTask;
  if (!data || typeof data.orderId !== 'string') return undefined;
  const whole = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  if (task.kind === 'produce' && task.version === 2 && whole(data.generation) && whole(data.stream) && typeof data.taskId === 'string') return task as ProduceTask;
  if (task.kind === 'shard' && task.version === 1 && whole(data.shard)) return task as ShardTask;
  return undefined;
}
