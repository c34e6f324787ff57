import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { SensoryError } from '../../domain/errors.js';
import { releaseChunk } from '../../lib/chunk-pool.js';
import { AmqpResultConnection, ResultChannelClosed, type TakenMessage } from './amqp-result-connection.js';
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

export interface AmqpTopology {
  readonly url: string;
  readonly exchange: string;
  readonly taskQueue: string;
  readonly taskRoutingKey: string;
}

interface Subscription {
  readonly prefetch: number;
  readonly handle: (task: QueueTask) => Promise<TaskOutcome>;
  readonly inFlight: Set<Promise<void>>;
  channel?: Channel;
  consumerTag?: string;
  open: boolean;
}

interface Link {
  readonly connection: ChannelModel;
  /** Replaced when the broker closes it (a channel error) while the connection lives on. */
  publisher: ConfirmChannel;
  /** basic.get with amqplib: for amqps: URLs, which the result connection does not speak. */
  getter: Channel;
  /**
   * Takes and publishes result messages on a connection of its own, without amqplib's copies
   * (amqp: URLs); undefined while it is being opened again after a loss.
   */
  results?: AmqpResultConnection;
  resultsRetryMs: number;
  resultsTimer?: NodeJS.Timeout;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
/** A stream's results are signalled at most once per this window (see announceStream). */
const SIGNAL_EVERY_MS = 50;
/** Past this many streams remembered, those whose window is over are forgotten. */
const MAX_SIGNALLED_STREAMS = 1024;

/** Addresses (IPv4, IPv6, host:port) in a driver's message: logged, never sent to a client. */
const ADDRESS = /\[?[0-9a-f]*:[0-9a-f:]+\]?(:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[a-z0-9.-]+:\d{2,5}\b/gi;

/** The client-facing error: why (e.g. "connect ECONNREFUSED"), but never the broker's address. */
function unavailable(reason?: string): SensoryError {
  const why = reason ? ` (${reason.replace(/(ENOTFOUND|EAI_AGAIN)\s+\S+/g, '$1').replace(ADDRESS, '').replace(/\s+/g, ' ').trim()})` : '';
  return new SensoryError('SENSORY_ERR_UNAVAILABLE', `RabbitMQ is unavailable${why}; retry shortly`);
}

/** A failed broker call as the client sees it: a SensoryError passes, anything else is "unavailable". */
function asUnavailable(error: unknown): SensoryError {
  return error instanceof SensoryError ? error : unavailable();
}

/**
 * RabbitMQ with amqplib. One connection (TCP_NODELAY: basic.get stalls ~40 ms per message
 * without it) with a confirm channel for tasks and signals and a channel per task subscription;
 * result messages are taken and published on a second, lean connection (AmqpResultConnection: one
 * copy per byte received, none published, pooled buffers) — or, for amqps: URLs and while that
 * connection is being opened again, on amqplib channels (basic.get, confirms). The topology
 * and the subscriptions are declared again on every reconnect; while the broker is away, calls
 * fail fast with SENSORY_ERR_UNAVAILABLE.
 */
export class AmqpOrderQueue implements OrderQueue {
  readonly kind = 'amqp' as const;
  private link: Link | undefined;
  private connecting: Promise<void> | undefined;
  private lastError = 'not connected yet';
  private closed = false;
  private retryMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions = new Set<Subscription>();
  private readonly signalListeners: ((orderId: string, stream?: StreamRef) => void)[] = [];
  /** When each stream was last signalled, and the signal due at the end of its window, if any. */
  private readonly signalled = new Map<string, { at: number; timer: NodeJS.Timeout | undefined }>();

  constructor(
    private readonly topology: AmqpTopology,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  /** Connects now; on failure keeps retrying in the background and resolves anyway. */
  async start(): Promise<void> {
    await this.connect();
  }

  private connect(): Promise<void> {
    this.connecting ??= this.open()
      .then(() => {
        this.retryMs = RECONNECT_MIN_MS;
      })
      .catch((error: Error) => {
        if (error.message !== this.lastError) this.log(`RabbitMQ connection failed: ${error.message}`);
        this.lastError = error.message;
        this.scheduleReconnect();
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(RECONNECT_MAX_MS, this.retryMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
    // A worker (task subscriptions) has nothing else keeping its process alive while the broker
    // is away: without this it would exit, silently, at the first broker restart.
    if (this.subscriptions.size === 0) this.reconnectTimer.unref();
  }

  private async open(): Promise<void> {
    const connection = await amqp.connect(this.topology.url, { noDelay: true, timeout: 5000 });
    connection.on('error', (error: Error) => {
      this.lastError = error.message;
    });
    connection.on('close', () => {
      const link = this.link;
      if (link?.connection === connection) {
        this.link = undefined;
        this.dropResults(link);
      }
      this.log('RabbitMQ connection closed');
      this.scheduleReconnect();
    });
    let link: Link | undefined;
    try {
      const publisher = await this.newPublisher(connection);
      await publisher.assertExchange(this.topology.exchange, 'topic', { durable: true });
      await publisher.assertQueue(this.topology.taskQueue, { durable: true });
      await publisher.bindQueue(this.topology.taskQueue, this.topology.exchange, this.topology.taskRoutingKey);
      const opened: Link = { connection, publisher, getter: await this.newChannel(connection), resultsRetryMs: RECONNECT_MIN_MS };
      link = opened;
      this.link = opened;
      // Results go through amqplib until the result connection opens (it is tried again on failure).
      if (this.readsLean) {
        await this.openResults(opened).catch((error: Error) => {
          this.log(`RabbitMQ: the result connection did not open: ${error.message}`);
          this.reopenResults(opened);
        });
      }
      this.watchPublisher(opened);
      for (const subscription of this.subscriptions) await this.subscribe(subscription);
      if (this.signalListeners.length > 0) await this.listenForSignals(opened);
    } catch (error) {
      if (link) {
        if (this.link === link) this.link = undefined;
        this.dropResults(link);
      }
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  /** The lean result connection speaks plain amqp: (no TLS). */
  private get readsLean(): boolean {
    return this.topology.url.startsWith('amqp:');
  }

  private async openResults(link: Link): Promise<void> {
    const results = await AmqpResultConnection.open(this.topology.url, { timeoutMs: 5000, log: this.log });
    link.results = results;
    link.resultsRetryMs = RECONNECT_MIN_MS;
    results.onClose((error) => {
      if (link.results !== results) return;
      link.results = undefined;
      if (this.closed || this.link !== link) return;
      this.log(`RabbitMQ result connection lost: ${error.message}`);
      this.reopenResults(link);
    });
  }

  /** The result connection alone was lost (the main one lives on): open it again, backing off. */
  private reopenResults(link: Link): void {
    if (link.resultsTimer || this.closed || this.link !== link) return;
    const delay = link.resultsRetryMs;
    link.resultsRetryMs = Math.min(RECONNECT_MAX_MS, link.resultsRetryMs * 2);
    link.resultsTimer = setTimeout(() => {
      link.resultsTimer = undefined;
      if (this.closed || this.link !== link || link.results) return;
      this.openResults(link).catch((error: Error) => {
        this.lastError = error.message;
        this.reopenResults(link);
      });
    }, delay);
    link.resultsTimer.unref();
  }

  private dropResults(link: Link): void {
    clearTimeout(link.resultsTimer);
    link.resultsTimer = undefined;
    const results = link.results;
    link.results = undefined;
    void results?.close();
  }

  private async newPublisher(connection: ChannelModel): Promise<ConfirmChannel> {
    const publisher = await connection.createConfirmChannel();
    publisher.on('error', (error: Error) => this.log(`RabbitMQ closed the publishing channel: ${error.message}`));
    return publisher;
  }

  /**
   * A channel error (e.g. a queue declared again with other arguments) makes the broker close the
   * channel but not the connection: open another, or every later publish would fail until the
   * connection dropped. Calls in between fail with SENSORY_ERR_UNAVAILABLE.
   */
  private watchPublisher(link: Link): void {
    link.publisher.once('close', () => {
      if (this.closed || this.link !== link) return;
      this.newPublisher(link.connection).then(
        (publisher) => {
          link.publisher = publisher;
          this.watchPublisher(link);
        },
        // The connection is going too: its 'close' handler reconnects everything.
        () => undefined,
      );
    });
  }

  private async newChannel(connection: ChannelModel): Promise<Channel> {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return channel;
  }

  private current(): Link {
    if (this.closed) throw unavailable('the queue is closed');
    if (!this.link) throw unavailable(this.lastError);
    return this.link;
  }

  async publishTasks(tasks: readonly QueueTask[]): Promise<void> {
    const { publisher } = this.current();
    try {
      for (const task of tasks) {
        publisher.publish(this.topology.exchange, this.topology.taskRoutingKey, Buffer.from(JSON.stringify(task)), {
          persistent: true,
          contentType: 'application/json',
          type: task.kind,
        });
      }
      await publisher.waitForConfirms();
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  async consumeTasks(prefetch: number, handle: (task: QueueTask) => Promise<TaskOutcome>): Promise<TaskConsumer> {
    const subscription: Subscription = { prefetch, handle, inFlight: new Set(), open: true };
    this.subscriptions.add(subscription);
    this.reconnectTimer?.ref();
    if (this.link) await this.subscribe(subscription);
    return {
      close: async () => {
        subscription.open = false;
        this.subscriptions.delete(subscription);
        if (subscription.channel && subscription.consumerTag) await subscription.channel.cancel(subscription.consumerTag).catch(() => undefined);
        await Promise.allSettled([...subscription.inFlight]);
        // Closing the channel hands prefetched, unstarted tasks back to the queue.
        await subscription.channel?.close().catch(() => undefined);
      },
    };
  }

  private async subscribe(subscription: Subscription): Promise<void> {
    const link = this.current();
    const channel = await this.newChannel(link.connection);
    await channel.prefetch(subscription.prefetch);
    subscription.channel = channel;
    // Closed by the broker while the connection lives on (a channel error, the task queue deleted):
    // subscribe again after a pause; a lost connection resubscribes on reconnect instead.
    channel.once('close', () => {
      if (!subscription.open || this.closed || this.link !== link || subscription.channel !== channel) return;
      const retry = setTimeout(() => {
        if (subscription.open && this.link === link) {
          this.subscribe(subscription).catch((error: Error) => this.log(`RabbitMQ: could not subscribe again: ${error.message}`));
        }
      }, RECONNECT_MIN_MS);
      retry.unref();
    });
    await channel.assertQueue(this.topology.taskQueue, { durable: true });
    await channel.bindQueue(this.topology.taskQueue, this.topology.exchange, this.topology.taskRoutingKey);
    const reply = await channel.consume(this.topology.taskQueue, (message: ConsumeMessage | null) => {
      // null: the broker cancelled the consumer (its queue was deleted); closing the channel subscribes again.
      if (!message) {
        channel.close().catch(() => undefined);
        return;
      }
      if (!subscription.open) {
        channel.nack(message, false, true);
        return;
      }
      const run = this.runTask(channel, message, subscription.handle).finally(() => subscription.inFlight.delete(run));
      subscription.inFlight.add(run);
    });
    subscription.consumerTag = reply.consumerTag;
  }

  private async runTask(channel: Channel, message: ConsumeMessage, handle: (task: QueueTask) => Promise<TaskOutcome>): Promise<void> {
    let outcome: TaskOutcome;
    let task: QueueTask | undefined;
    try {
      task = parseTask(JSON.parse(message.content.toString('utf8')));
    } catch {
      task = undefined;
    }
    try {
      outcome = task ? await handle(task) : 'drop';
    } catch {
      outcome = 'requeue';
    }
    try {
      if (outcome === 'ack') channel.ack(message);
      else channel.nack(message, false, outcome === 'requeue');
    } catch {
      // The channel is gone: the broker has requeued the task already.
    }
  }

  /**
   * Declares the queue only when it is missing: its arguments are fixed at creation (a later
   * declaration with other ones would be refused), and a queue that exists is left as it is.
   */
  async ensureResultQueue(ref: StreamRef, bound: ResultQueueBound, ttlSeconds: number): Promise<boolean> {
    try {
      return await this.declareResultQueue(ref, bound, ttlSeconds);
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  private async declareResultQueue(ref: StreamRef, bound: ResultQueueBound, ttlSeconds: number): Promise<boolean> {
    const link = this.current();
    const name = resultQueueName(ref);
    if (await this.exists(link, name)) return false;
    await link.publisher.assertQueue(name, {
      durable: false,
      arguments: {
        'x-expires': ttlSeconds * 1000,
        'x-max-length': bound.maxMessages,
        'x-max-length-bytes': bound.maxBytes,
        'x-overflow': 'reject-publish',
      },
    });
    return true;
  }

  /** A failed check closes the channel it ran on (404): it runs on a channel of its own. */
  private async exists(link: Link, name: string): Promise<boolean> {
    const probe = await this.newChannel(link.connection);
    try {
      await probe.checkQueue(name);
      return true;
    } catch {
      return false;
    } finally {
      await probe.close().catch(() => undefined);
    }
  }

  publishResult(ref: StreamRef, body: Buffer): Promise<PublishOutcome> {
    let link: Link;
    try {
      link = this.current();
    } catch (error) {
      releaseChunk(body);
      throw error;
    }
    if (link.results) {
      // Written from the body itself (no copy): it goes back to the pool once the broker has
      // confirmed it (every byte was read), or the connection is gone (nothing more is written).
      return link.results.publish(resultQueueName(ref), body).then(
        (outcome) => {
          releaseChunk(body);
          if (outcome === 'published') this.announceStream(ref);
          return outcome;
        },
        (error: Error) => {
          releaseChunk(body);
          throw unavailable(error.message);
        },
      );
    }
    const publisher = link.publisher;
    return new Promise((resolve, reject) => {
      try {
        // reject-publish overflow: the broker nacks a publish to a full queue.
        publisher.sendToQueue(resultQueueName(ref), body, { persistent: false }, (error) => {
          if (!error) this.announceStream(ref);
          resolve(error ? 'full' : 'published');
        });
      } catch (error) {
        // The channel closed under us (it is being replaced).
        reject(asUnavailable(error));
      } finally {
        // amqplib copies the body into its frames before sendToQueue returns: a pooled one is free.
        releaseChunk(body);
      }
    });
  }

  async takeResults(ref: StreamRef, max: number): Promise<ReceivedResult[]> {
    const link = this.current();
    const results = link.results;
    // amqps:, or the result connection alone was lost and is being opened again.
    if (!results) return this.takeWithAmqplib(link, ref, max);
    const taken: TakenMessage[] = [];
    try {
      while (taken.length < max) {
        const message = await results.get(resultQueueName(ref));
        if (!message) break;
        taken.push(message);
      }
    } catch (error) {
      // The broker closed the channel (404: the queue is missing) or the connection is gone: what
      // was taken went back to the queue already; its buffers go back to the pool.
      for (const message of taken) releaseChunk(message.body);
      if (error instanceof ResultChannelClosed) return [];
      throw unavailable((error as Error).message);
    }
    return taken.map((message) => this.takenLean(message, ref));
  }

  private takenLean(message: TakenMessage, ref: StreamRef): ReceivedResult {
    let settled = false;
    const settle = (outcome: 'ack' | 'requeue') => {
      if (settled) return false;
      settled = true;
      message.settle(outcome);
      // Settled (or put back by the broker): whoever took it is done reading it.
      releaseChunk(message.body);
      return true;
    };
    return {
      body: message.body,
      ack: () => void settle('ack'),
      requeue: () => {
        if (settle('requeue')) this.announce(ref.orderId, ref);
      },
    };
  }

  private async takeWithAmqplib(link: Link, ref: StreamRef, max: number, retried = false): Promise<ReceivedResult[]> {
    const channel = link.getter;
    const taken: ReceivedResult[] = [];
    try {
      while (taken.length < max) {
        const message = await channel.get(resultQueueName(ref), { noAck: false });
        if (!message) break;
        taken.push(this.received(channel, message, ref));
      }
    } catch {
      // A missing queue closes the channel (404): make a new one; what was taken is requeued.
      if (link.getter === channel && this.link === link) {
        link.getter = await this.newChannel(link.connection).catch(() => channel);
      }
      // The channel is shared: a get of another, deleted queue may have closed it under this one.
      // A waiting poll would not look again until signalled, so an existing queue is read again.
      if (!retried && this.link === link && link.getter !== channel && (await this.exists(link, resultQueueName(ref)).catch(() => false))) {
        return this.takeWithAmqplib(link, ref, max, true);
      }
      return [];
    }
    return taken;
  }

  async purgeResults(ref: StreamRef): Promise<void> {
    const link = this.current();
    const name = resultQueueName(ref);
    let channel: Channel;
    try {
      if (!(await this.exists(link, name))) return;
      channel = await this.newChannel(link.connection);
    } catch (error) {
      throw asUnavailable(error);
    }
    try {
      await channel.purgeQueue(name);
    } catch {
      // Deleted in between: nothing to purge.
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  private received(channel: Channel, message: amqp.GetMessage, ref: StreamRef): ReceivedResult {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      try {
        fn();
      } catch {
        // The channel is gone: the broker requeues the message by itself.
      }
    };
    return {
      body: message.content,
      ack: () => settle(() => channel.ack(message)),
      requeue: () =>
        settle(() => {
          channel.nack(message, false, true);
          this.announce(ref.orderId, ref);
        }),
    };
  }

  async deleteResultQueue(ref: StreamRef): Promise<void> {
    try {
      await this.current().publisher.deleteQueue(resultQueueName(ref));
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  /** Signals travel on the exchange under this routing key (never the task queue's). */
  private get signalRoutingKey(): string {
    return `${this.topology.taskRoutingKey}.signals`;
  }

  onSignal(listener: (orderId: string, stream?: StreamRef) => void): void {
    this.signalListeners.push(listener);
    if (this.signalListeners.length === 1 && this.link) {
      this.listenForSignals(this.link).catch((error: Error) => this.log(`RabbitMQ: could not listen for order signals: ${error.message}`));
    }
  }

  async signal(orderId: string): Promise<void> {
    this.announce(orderId);
  }

  /**
   * Signals results published to the stream: at once when it had no such signal for
   * SIGNAL_EVERY_MS, else once at the end of that window for all of them. A worker publishes a
   * result every few milliseconds; a signal for each one cost the worker a write and every serve
   * process a delivery and a parse, while a waiting poll needs only to hear that its queue is no
   * longer empty. A result handed back is signalled at once (announce): polls that compete for a
   * stream hand results back to each other, and 600 polls on 20 streams took up to three times
   * as long to be served when those signals waited for their window too.
   */
  private announceStream(ref: StreamRef): void {
    const key = resultQueueName(ref);
    const now = performance.now();
    const last = this.signalled.get(key);
    if (!last || now - last.at >= SIGNAL_EVERY_MS) {
      if (this.signalled.size >= MAX_SIGNALLED_STREAMS) this.forgetSignalled(now);
      this.signalled.set(key, { at: now, timer: undefined });
      this.announce(ref.orderId, ref);
      return;
    }
    if (last.timer) return;
    last.timer = setTimeout(() => {
      last.timer = undefined;
      last.at = performance.now();
      this.announce(ref.orderId, ref);
    }, SIGNAL_EVERY_MS - (now - last.at));
    last.timer.unref();
  }

  /** Streams signalled longer ago than the window (nothing pending) need no entry any more. */
  private forgetSignalled(now: number): void {
    for (const [key, last] of this.signalled) if (!last.timer && now - last.at >= SIGNAL_EVERY_MS) this.signalled.delete(key);
  }

  /**
   * A small message to every process listening for signals — `{o: orderId}`, with `g` and `s`
   * when it concerns one stream — fire and forget (signals are hints).
   */
  private announce(orderId: string, stream?: StreamRef): void {
    const link = this.link;
    if (!link || this.closed) return;
    const body = stream ? { o: orderId, g: stream.generation, s: stream.stream } : { o: orderId };
    try {
      link.publisher.publish(this.topology.exchange, this.signalRoutingKey, Buffer.from(JSON.stringify(body), 'utf8'), { persistent: false });
    } catch {
      // The channel is being replaced: a waiting poll's re-check covers the lost signal.
    }
  }

  /** An exclusive queue of this process, bound to the signals' routing key (it goes with the connection). */
  private async listenForSignals(link: Link): Promise<void> {
    const channel = await this.newChannel(link.connection);
    channel.once('close', () => {
      if (this.closed || this.link !== link) return; // a new connection listens again
      const retry = setTimeout(() => {
        if (!this.closed && this.link === link) this.listenForSignals(link).catch(() => undefined);
      }, RECONNECT_MIN_MS);
      retry.unref();
    });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.topology.exchange, this.signalRoutingKey);
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        const signal = parseSignal(message.content);
        if (!signal) return;
        for (const listener of this.signalListeners) listener(signal.orderId, signal.stream);
      },
      { noAck: true },
    );
  }

  async ping(): Promise<void> {
    this.current();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const subscriptions = [...this.subscriptions];
    await Promise.allSettled(subscriptions.map(async (subscription) => {
      subscription.open = false;
      if (subscription.channel && subscription.consumerTag) await subscription.channel.cancel(subscription.consumerTag);
      await Promise.allSettled([...subscription.inFlight]);
    }));
    this.closed = true;
    for (const last of this.signalled.values()) clearTimeout(last.timer);
    this.signalled.clear();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const link = this.link;
    this.link = undefined;
    if (link) {
      this.dropResults(link);
      await link.connection.close().catch(() => undefined);
    }
  }
}

/** A signal message as announce() writes it; undefined for anything else. */
function parseSignal(content: Buffer): { orderId: string; stream?: StreamRef } | undefined {
  try {
    const value = JSON.parse(content.toString('utf8')) as { o?: unknown; g?: unknown; s?: unknown };
    if (typeof value?.o !== 'string') return undefined;
    const whole = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
    return whole(value.g) && whole(value.s) ? { orderId: value.o, stream: { orderId: value.o, generation: value.g, stream: value.s } } : { orderId: value.o };
  } catch {
    return undefined;
  }
}
