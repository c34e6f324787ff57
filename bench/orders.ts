/**
 * Figures 4 and 5 of `npm run bench`: batch orders through RabbitMQ, the production shape.
 *
 *   4. an order of 20,000 samples (uint8) from create to its last sample, polled with safetensors
 *      (max 4096, waitMs 2000) by a node:http client here, one `sensory worker --concurrency 2`
 *      child fulfilling the shards — vs a bare amqplib client in this process publishing (confirm
 *      channel) and consuming (prefetch 200, ack each) 20,000 messages of 30,000 bytes at the same
 *      time through the same broker. Every slot is checked to arrive exactly once.
 *   5. memory during an order of 200,000 samples: peak RSS of the serve and worker processes
 *      (VmRSS every 200 ms, VmHWM at the end) and the longest result queue seen (checkQueue every
 *      200 ms) against its x-max-length bound.
 *
 * The service is `node dist/cli/main.js serve` with SENSORY_AMQP_URL set (it then runs no
 * worker) and unique exchange / task-queue names; the worker is `node dist/cli/main.js worker`.
 * Figure 5 restarts both on the same data dir, so their high-water marks are its own.
 * Everything this module declares on the broker is deleted at the end, also on error.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { chunkSamplesFor } from '../src/domain/order-plan.js';
import { messageBytes } from '../src/formats/result-message.js';
import { resultQueueName } from '../src/ports/order-queue.js';
import { resultQueueBound } from '../src/services/order-report.js';
import { serviceEnv, startChild, startServe, type Child } from './children.js';
import type { Figure } from './figure.js';
import { apiRequest, createDataset, safetensorsBatch, uploadRaw, type Service } from './service-load.js';
import type { BenchClient } from './http-client.js';
import { CHANNELS, RECORD_BYTES, SIDE } from './images.js';
import { ownCpuMs, processCpuMs, summarize, type Summary } from './pool.js';

/** Figure 4: the order against bare amqplib moving the same messages. */
export const ORDER_TARGET = 0.8;
/** Figure 4: service + worker CPU per sample. */
const ORDER_CPU_TARGET_MS = 0.15;
/** Figure 4e: an embedded order against small batches of the same samples. */
const EMBEDDED_TARGET = 0.8;
/** Figure 4w: ranks polled at once, against one rank. */
const RANKS = 4;
const RANKS_TARGET = 0.9;
const MIB = 1024 * 1024;
const RSS_TARGET_BYTES = 512 * MIB;
const SAMPLE_EVERY_MS = 200;
const POLL_MAX = 4096;
const POLL_WAIT_MS = 2000;
const WORKER_CONCURRENCY = 2;
const REF_PREFETCH = 200;
/** Bytes of publishes awaiting their confirm at once, in the reference (512 messages of 30 KB). */
const REF_CONFIRM_WINDOW = 512 * RECORD_BYTES;
/** The reference publisher also waits while this many bytes are published and not consumed (2,000 messages of 30 KB, ≈ 60 MB). */
const REF_BACKLOG = 2000 * RECORD_BYTES;

export interface OrderSettings {
  readonly orderSize: number;
  readonly memoryOrderSize: number;
  readonly rounds: number;
  readonly amqpUrl: string;
  readonly serverNodeArgs: readonly string[];
  readonly workerNodeArgs: readonly string[];
}

export interface OrderContext {
  readonly figures: ReadonlySet<string>;
  readonly settings: OrderSettings;
  readonly pngs: readonly Buffer[];
  readonly categories: readonly string[];
  readonly client: BenchClient;
  readonly tmp: string;
  readonly repo: string;
  readonly mainJs: string;
  readonly outDir: string;
  /** Children started here are added, so that a signal in run.ts kills them too. */
  readonly children: Child[];
  /** Broker clean-up run by run.ts on a signal (the finally below covers errors). */
  readonly cleanups: (() => Promise<void>)[];
  readonly log: (line: string) => void;
}

// ---------------------------------------------------------------- polling with safetensors

interface PollReply {
  readonly status: number;
  readonly ms: number;
  /** Until the response headers arrived: the service taking messages off the queue and claiming them. */
  readonly headersMs: number;
  readonly bytes: number;
  readonly slots: number[];
  readonly done: boolean;
  readonly remaining: number;
  readonly orderStatus: string;
}

/**
 * One poll, node:http on the bench's keep-alive agent. Only the safetensors header is kept (the
 * slots are in its __metadata__); the pixels are counted, never copied, so the client costs little.
 */
function pollSafetensors(agent: http.Agent, port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<PollReply> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, agent, headers: { ...headers, 'content-length': body.length } },
      (response) => {
        const headersMs = performance.now() - started;
        const status = response.statusCode ?? 0;
        const head: Buffer[] = [];
        let headBytes = 0;
        let bytes = 0;
        let headerLength = -1;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (status !== 200 || headerLength < 0 || headBytes < 8 + headerLength) {
            head.push(chunk);
            headBytes += chunk.length;
            if (headerLength < 0 && headBytes >= 8) headerLength = Number(Buffer.concat(head).readBigUInt64LE(0));
          }
        });
        response.on('error', reject);
        response.on('end', () => {
          const ms = performance.now() - started;
          const buffer = Buffer.concat(head);
          if (status !== 200) {
            reject(new Error(`POST ${path} → ${status}: ${buffer.subarray(0, 400).toString('utf8')}`));
            return;
          }
          try {
            const header = JSON.parse(buffer.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
            const meta = header.__metadata__ as Record<string, string>;
            const data = header.data as { dtype: string; shape: number[]; data_offsets: number[] };
            const labels = header.labels as { dtype: string; shape: number[]; data_offsets: number[] };
            const slots = JSON.parse(meta.slots) as number[];
            const n = slots.length;
            if (data.dtype !== 'U8' || data.shape.join() !== [n, SIDE, SIDE, CHANNELS].join()) throw new Error(`data tensor ${JSON.stringify(data)} for ${n} slots`);
            if (data.data_offsets[1] - data.data_offsets[0] !== n * RECORD_BYTES) throw new Error('data tensor has the wrong byte length');
            if (labels.shape[0] !== n) throw new Error(`labels tensor ${JSON.stringify(labels)} for ${n} slots`);
            const end = Math.max(data.data_offsets[1], labels.data_offsets[1]);
            if (8 + headerLength + end !== bytes) throw new Error(`safetensors reply is ${bytes} bytes, its header says ${8 + headerLength + end}`);
            if (meta.remaining !== response.headers['sensory-remaining'] || meta.done !== response.headers['sensory-done']) throw new Error('__metadata__ and headers disagree on remaining/done');
            resolve({ status, ms, headersMs, bytes, slots, done: meta.done === 'true', remaining: Number(meta.remaining), orderStatus: meta.status });
          } catch (error) {
            reject(new Error(`poll ${path}: ${(error as Error).message}`));
          }
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

interface OrderRun {
  readonly id: string;
  readonly size: number;
  /** From sending the create request to receiving the last sample. */
  readonly seconds: number;
  readonly createMs: number;
  /** From create to the end of the first poll that carried samples (a poll waits for up to max samples while they keep coming). */
  readonly firstSampleMs: number;
  readonly polls: number;
  readonly emptyPolls: number;
  /** Polls whose `remaining` did not yet count the previous poll's samples. */
  readonly staleRemaining: number;
  readonly pollMs: Summary;
  /** Per poll that carried samples: until its headers, and from its headers to its last byte. */
  readonly headersMs: Summary;
  readonly bodyMs: Summary;
  readonly samplesPerPoll: Summary;
  readonly bytes: number;
  readonly cpuMs: { service: number; worker: number; client: number };
}

// ---------------------------------------------------------------- the stack: serve + one worker

interface Stack {
  service: Child;
  /** Absent in the embedded shape: serve runs the worker itself (in-process queue). */
  worker?: Child;
}

class OrderBench {
  readonly tag = `bench.${process.pid}.${randomBytes(4).toString('hex')}`;
  readonly exchange = `${this.tag}.exchange`;
  readonly taskQueue = `${this.tag}.tasks`;
  readonly orderIds: string[] = [];
  readonly referenceQueues: string[] = [];
  readonly key = `bench-${randomBytes(12).toString('hex')}`;
  readonly dataDir: string;
  private stack: Stack | undefined;
  private admin: ChannelModel | undefined;
  private cleaned = false;

  constructor(
    private readonly ctx: OrderContext,
    /** The embedded shape: serve alone, with its in-process queue and worker (no RabbitMQ). */
    readonly embedded = false,
  ) {
    this.dataDir = join(ctx.tmp, embedded ? 'orders-embedded-data' : 'orders-data');
  }

  get service(): Child {
    return this.stack!.service;
  }

  get worker(): Child | undefined {
    return this.stack!.worker;
  }

  async adminConnection(): Promise<ChannelModel> {
    if (!this.admin) {
      const connection = await amqp.connect(this.ctx.settings.amqpUrl, { noDelay: true });
      connection.on('error', () => undefined);
      connection.on('close', () => {
        if (this.admin === connection) this.admin = undefined;
      });
      this.admin = connection;
    }
    return this.admin;
  }

  async start(label: string): Promise<Stack> {
    const { ctx } = this;
    await mkdir(this.dataDir, { recursive: true });
    const env = await serviceEnv(
      this.dataDir,
      this.key,
      this.embedded
        ? {}
        : {
            SENSORY_AMQP_URL: ctx.settings.amqpUrl,
            SENSORY_AMQP_EXCHANGE: this.exchange,
            SENSORY_AMQP_TASK_QUEUE: this.taskQueue,
            // Result queues left behind by a killed run expire on their own.
            SENSORY_ORDER_TTL_SECONDS: '600',
          },
    );
    if (ctx.settings.serverNodeArgs.length || ctx.settings.workerNodeArgs.length) await mkdir(ctx.outDir, { recursive: true });
    const service = await startServe({
      name: 'order service',
      mainJs: ctx.mainJs,
      nodeArgs: ctx.settings.serverNodeArgs,
      env,
      cwd: ctx.repo,
      stdoutFile: join(ctx.tmp, `order-service-${label}.log`),
    });
    ctx.children.push(service);
    if (this.embedded) {
      this.stack = { service };
      ctx.log(`embedded order stack (${label}): serve pid ${service.process.pid} port ${service.port}, in-process queue and worker`);
      await ctx.client.expect(200, { ...this.api('GET', '/health/ready'), keepBody: true });
      return this.stack;
    }
    const worker = await startChild({
      name: 'order worker',
      args: [...ctx.settings.workerNodeArgs, ctx.mainJs, 'worker', '--concurrency', String(WORKER_CONCURRENCY)],
      env,
      cwd: ctx.repo,
      stdoutFile: join(ctx.tmp, `order-worker-${label}.log`),
      ready: /Sensory worker: (\d+) shard/,
    }).catch(async (error) => {
      await service.stop(3000);
      throw error;
    });
    ctx.children.push(worker);
    this.stack = { service, worker };
    ctx.log(
      `order stack (${label}): serve pid ${service.process.pid} port ${service.port}, worker pid ${worker.process.pid} (--concurrency ${WORKER_CONCURRENCY}); exchange ${this.exchange}, task queue ${this.taskQueue}`,
    );
    await ctx.client.expect(200, { ...this.api('GET', '/health/ready'), keepBody: true });
    return this.stack;
  }

  async stop(): Promise<void> {
    const stack = this.stack;
    this.stack = undefined;
    if (!stack) return;
    // The worker first: shards waiting for room hand themselves back, then the service.
    const [workerCode, serviceCode] = [(await stack.worker?.stop(10_000)) ?? 0, await stack.service.stop(10_000)];
    if (workerCode !== 0) this.ctx.log(`order worker exited with ${workerCode} on SIGTERM`);
    if (serviceCode !== 0) this.ctx.log(`order service exited with ${serviceCode} on SIGTERM`);
  }

  /** The running service, as the shared load helpers address it. */
  get endpoint(): Service {
    return { port: this.service.port, key: this.key };
  }

  api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return apiRequest(this.endpoint, method, path, body, headers);
  }

  /** The bench's ingest setup: raw image/png uploads, 8 concurrent, categories round-robin. */
  async makeDataset(name: string): Promise<number> {
    const { ctx } = this;
    await createDataset(ctx.client, this.endpoint, name);
    const t = performance.now();
    await uploadRaw(ctx.client, this.endpoint, name, ctx.pngs, ctx.categories);
    const seconds = (performance.now() - t) / 1000;
    ctx.log(`order dataset ${name}: ${ctx.pngs.length} raw image/png uploads, 8 concurrent: ${(ctx.pngs.length / seconds).toFixed(0)} samples/s (not a target)`);
    return ctx.pngs.length;
  }

  /**
   * Creates an order and polls it to the end; every slot must come exactly once. With `ranks`
   * above 1, one poller per rank, all at once (each rank's part is size / ranks).
   */
  async runOrder(dataset: string, size: number, seed: number, onCreated?: (id: string) => void, ranks = 1): Promise<OrderRun> {
    const { ctx } = this;
    const timeoutMs = 60_000 + size; // 1 ms per sample on top of a minute: far beyond any sane run
    const workerCpu = () => (this.worker ? processCpuMs(this.worker.process.pid!) : 0);
    const cpu0 = { service: processCpuMs(this.service.process.pid!), worker: workerCpu(), client: ownCpuMs() };
    const t0 = performance.now();
    const created = await ctx.client.expect(202, { ...this.api('POST', `/v1/datasets/${dataset}/orders`, { size, seed, dtype: 'uint8', ...(ranks > 1 ? { ranks } : {}) }), keepBody: true });
    const createMs = performance.now() - t0;
    const { id, size: acceptedSize } = JSON.parse(created.body!.toString()) as { id: string; size: number };
    if (acceptedSize !== size) throw new Error(`order ${id} has size ${acceptedSize}, asked ${size}`);
    this.orderIds.push(id);
    onCreated?.(id);
    const seen = new Uint8Array(size);
    let total = 0;
    let bytes = 0;
    let last = t0;
    let first = 0;
    let emptyPolls = 0;
    let staleRemaining = 0;
    const pollMs: number[] = [];
    const headersMs: number[] = [];
    const bodyMs: number[] = [];
    const perPoll: number[] = [];
    const path = `/v1/orders/${id}/poll`;
    const headers = { 'api-access-key': this.key, 'content-type': 'application/json', accept: 'application/x-safetensors' };
    const part = size / ranks;
    const drainRank = async (rank: number) => {
      const body = Buffer.from(JSON.stringify({ max: POLL_MAX, waitMs: POLL_WAIT_MS, ...(ranks > 1 ? { rank } : {}) }));
      let received = 0;
      for (;;) {
        const reply = await pollSafetensors(ctx.client.agent, this.service.port, path, headers, body);
        pollMs.push(reply.ms);
        bytes += reply.bytes;
        if (reply.slots.length === 0) emptyPolls++;
        else {
          perPoll.push(reply.slots.length);
          headersMs.push(reply.headersMs);
          bodyMs.push(reply.ms - reply.headersMs);
          last = performance.now();
          if (!first) first = last;
        }
        for (const slot of reply.slots) {
          if (!Number.isInteger(slot) || slot < 0 || slot >= size) throw new Error(`order ${id}: slot ${slot} is outside 0..${size - 1}`);
          if (seen[slot]) throw new Error(`order ${id}: slot ${slot} delivered twice`);
          seen[slot] = 1;
        }
        received += reply.slots.length;
        total += reply.slots.length;
        // The previous poll's delivery is committed after its response was sent: the next poll
        // may read it a moment late. Counted, not an error (exactly-once is checked on the slots).
        if (reply.remaining !== part - received) staleRemaining++;
        if (reply.done) {
          // A rank that ends before the others leaves the order running; the last one completes it.
          if (ranks === 1 && reply.orderStatus !== 'complete') throw new Error(`order ${id} ended ${reply.orderStatus} after ${total} of ${size} samples`);
          if (received !== part) throw new Error(`order ${id}: rank ${rank} ended with ${received} samples, its part is ${part}`);
          return;
        }
        if (performance.now() - t0 > timeoutMs) throw new Error(`order ${id}: ${total} of ${size} samples after ${(timeoutMs / 1000).toFixed(0)} s`);
      }
    };
    await Promise.all(Array.from({ length: ranks }, (_, rank) => drainRank(rank)));
    if (total !== size) throw new Error(`order ${id}: ${total} samples delivered, expected exactly ${size}`);
    if (seen.indexOf(0) !== -1) throw new Error(`order ${id}: slot ${seen.indexOf(0)} never delivered`);
    const status = JSON.parse((await ctx.client.expect(200, { ...this.api('GET', `/v1/orders/${id}`), keepBody: true })).body!.toString()) as {
      status: string;
      samples: { delivered: number };
    };
    if (status.status !== 'complete' || status.samples.delivered !== size) throw new Error(`order ${id} reports ${JSON.stringify(status)}`);
    return {
      id,
      size,
      seconds: (last - t0) / 1000,
      createMs,
      firstSampleMs: first - t0,
      polls: pollMs.length,
      emptyPolls,
      staleRemaining,
      pollMs: summarize(pollMs),
      headersMs: summarize(headersMs.length ? headersMs : [0]),
      bodyMs: summarize(bodyMs.length ? bodyMs : [0]),
      samplesPerPoll: summarize(perPoll.length ? perPoll : [0]),
      bytes,
      cpuMs: {
        service: processCpuMs(this.service.process.pid!) - cpu0.service,
        worker: workerCpu() - cpu0.worker,
        client: ownCpuMs() - cpu0.client,
      },
    };
  }

  /** Deletes what this module declared on the broker; safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.stop().catch(() => undefined);
    if (this.embedded) return;
    // The broker is shared: it may be restarting just now. Retry each deletion for up to ~15 s.
    const deadline = performance.now() + 15_000;
    const each = async (what: string, run: (channel: Channel) => Promise<unknown>) => {
      for (let attempt = 1; ; attempt++) {
        try {
          const channel = await (await this.adminConnection()).createChannel();
          channel.on('error', () => undefined);
          await run(channel);
          await channel.close().catch(() => undefined);
          return;
        } catch (error) {
          if (performance.now() > deadline) {
            this.ctx.log(`clean-up of ${what} failed after ${attempt} attempts: ${(error as Error).message}`);
            return;
          }
          await sleep(500);
        }
      }
    };
    for (const id of this.orderIds) await each(resultQueueName({ orderId: id, generation: 0, stream: 0 }), (c) => c.deleteQueue(resultQueueName({ orderId: id, generation: 0, stream: 0 })));
    for (const queue of this.referenceQueues) await each(queue, (c) => c.deleteQueue(queue));
    await each(this.taskQueue, (c) => c.deleteQueue(this.taskQueue));
    await each(this.exchange, (c) => c.deleteExchange(this.exchange));
    await this.admin?.close().catch(() => undefined);
    this.admin = undefined;
  }
}

// ---------------------------------------------------------------- the reference: bare amqplib

interface ReferenceRun {
  readonly seconds: number;
  readonly messages: number;
  readonly bytes: number;
  readonly cpuMs: number;
}

/** `count` messages of `bytes` bytes each. */
const sameSize = (count: number, bytes: number): number[] => Array.from({ length: count }, () => bytes);

/**
 * The sizes of the result messages an order of `size` samples is published as (one stream):
 * full chunks of chunkSamplesFor(record) samples, then the rest (result-message.ts).
 */
export function orderMessageSizes(size: number): number[] {
  const chunk = chunkSamplesFor(RECORD_BYTES);
  const sizes = sameSize(Math.floor(size / chunk), messageBytes(chunk, RECORD_BYTES));
  if (size % chunk > 0) sizes.push(messageBytes(size % chunk, RECORD_BYTES));
  return sizes;
}

/**
 * Publish + consume at once of one message per entry of `sizes` (bytes each): a confirm channel (at most
 * REF_CONFIRM_WINDOW bytes unconfirmed, REF_BACKLOG unconsumed, one message at least) on one connection, a consumer with prefetch REF_PREFETCH acking
 * each on another, both noDelay, to a fresh non-durable queue that is deleted after.
 */
async function amqpReference(bench: OrderBench, url: string, sizes: readonly number[]): Promise<ReferenceRun> {
  const count = sizes.length;
  const queue = `${bench.tag}.reference.${bench.referenceQueues.length + 1}`;
  bench.referenceQueues.push(queue);
  const publisherConnection = await amqp.connect(url, { noDelay: true });
  const consumerConnection = await amqp.connect(url, { noDelay: true }).catch(async (error) => {
    await publisherConnection.close().catch(() => undefined);
    throw error;
  });
  publisherConnection.on('error', () => undefined);
  consumerConnection.on('error', () => undefined);
  try {
    const publisher = await publisherConnection.createConfirmChannel();
    await publisher.assertQueue(queue, { durable: false });
    const consumer = await consumerConnection.createChannel();
    await consumer.prefetch(REF_PREFETCH);
    const pool = randomBytes(Math.max(...sizes));
    let consumed = 0;
    let confirmed = 0;
    let published = 0;
    // Bytes of the first n messages: the windows are in bytes, so that large messages are not
    // buffered by the hundred (which costs a bare client more, not less).
    const upTo = [0];
    for (const size of sizes) upTo.push(upTo[upTo.length - 1] + size);
    const unconfirmed = () => upTo[published] - upTo[confirmed];
    const unconsumed = () => upTo[published] - upTo[consumed];
    let wake: (() => void) | undefined;
    const nudge = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const cpu0 = ownCpuMs();
    const t0 = performance.now();
    const allConsumed = new Promise<void>((resolve, reject) => {
      consumer
        .consume(queue, (message) => {
          if (!message) return reject(new Error('reference consumer cancelled'));
          if (message.content.length !== sizes[consumed]) return reject(new Error(`reference message of ${message.content.length} bytes, expected ${sizes[consumed]}`));
          consumer.ack(message);
          consumed++;
          if (unconsumed() < REF_BACKLOG) nudge();
          if (consumed === count) resolve();
        })
        .catch(reject);
    });
    let publishError: Error | undefined;
    while (published < count) {
      if (publishError) throw publishError;
      if ((published > confirmed && unconfirmed() >= REF_CONFIRM_WINDOW) || (published > consumed && unconsumed() >= REF_BACKLOG)) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const ok = publisher.sendToQueue(queue, pool.subarray(0, sizes[published++]), { persistent: false }, (error) => {
        if (error) publishError = new Error('reference publish nacked');
        confirmed++;
        nudge();
      });
      if (!ok) await new Promise<void>((resolve) => publisher.once('drain', () => resolve()));
    }
    await publisher.waitForConfirms();
    await allConsumed;
    const seconds = (performance.now() - t0) / 1000;
    const cpuMs = ownCpuMs() - cpu0;
    await publisher.deleteQueue(queue);
    return { seconds, messages: count, bytes: sizes.reduce((a, b) => a + b, 0), cpuMs };
  } finally {
    await publisherConnection.close().catch(() => undefined);
    await consumerConnection.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- memory sampling

interface MemoryTrace {
  servicePeakRss: number;
  workerPeakRss: number;
  serviceStartRss: number;
  workerStartRss: number;
  serviceHwm: number;
  workerHwm: number;
  longestQueue: number;
  queueSamples: number;
  rssSamples: number;
}

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of both children and the result queue's ready-message count, every 200 ms. */
class MemorySampler {
  readonly trace: MemoryTrace = { servicePeakRss: 0, workerPeakRss: 0, serviceStartRss: 0, workerStartRss: 0, serviceHwm: 0, workerHwm: 0, longestQueue: 0, queueSamples: 0, rssSamples: 0 };
  private timer: NodeJS.Timeout | undefined;
  private queue: string | undefined;
  private channel: Channel | undefined;
  private checking = false;
  private queueGone = false;

  constructor(
    /** Undefined in the embedded shape: no broker queue to watch. */
    private readonly connection: ChannelModel | undefined,
    private readonly servicePid: number,
    private readonly workerPid: number | undefined,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), SAMPLE_EVERY_MS);
  }

  watchQueue(name: string): void {
    this.queue = name;
  }

  private tick(): void {
    const s = statusBytes(this.servicePid, 'VmRSS');
    const w = this.workerPid === undefined ? 0 : statusBytes(this.workerPid, 'VmRSS');
    if (s > this.trace.servicePeakRss) this.trace.servicePeakRss = s;
    if (w > this.trace.workerPeakRss) this.trace.workerPeakRss = w;
    if (this.trace.rssSamples++ === 0) {
      this.trace.serviceStartRss = s;
      this.trace.workerStartRss = w;
    }
    if (this.connection && this.queue && !this.checking && !this.queueGone) {
      this.checking = true;
      void this.checkQueue(this.queue).finally(() => (this.checking = false));
    }
  }

  private async checkQueue(name: string): Promise<void> {
    try {
      if (!this.channel) {
        this.channel = await this.connection!.createChannel();
        this.channel.on('error', () => undefined);
        this.channel.on('close', () => (this.channel = undefined));
      }
      const { messageCount } = await this.channel.checkQueue(name);
      this.trace.queueSamples++;
      if (messageCount > this.trace.longestQueue) this.trace.longestQueue = messageCount;
    } catch {
      // 404: the service deleted the queue once the order was complete.
      this.channel = undefined;
      this.queueGone = true;
    }
  }

  /** Stops sampling and reads the high-water marks (before the children stop). */
  async finish(): Promise<MemoryTrace> {
    clearInterval(this.timer);
    this.tick();
    this.trace.serviceHwm = statusBytes(this.servicePid, 'VmHWM');
    this.trace.workerHwm = this.workerPid === undefined ? 0 : statusBytes(this.workerPid, 'VmHWM');
    this.trace.servicePeakRss = Math.max(this.trace.servicePeakRss, this.trace.serviceHwm || 0);
    this.trace.workerPeakRss = Math.max(this.trace.workerPeakRss, this.trace.workerHwm || 0);
    await this.channel?.close().catch(() => undefined);
    return this.trace;
  }
}

/** The queue's x-max-length as the broker holds it (rabbitmqctl, once); undefined when unreadable. */
function brokerMaxLength(queue: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('rabbitmqctl', ['-q', 'list_queues', 'name', 'arguments'], { timeout: 60_000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      const line = stdout.split('\n').find((l) => l.startsWith(`${queue}\t`));
      const match = line ? /"x-max-length",(\d+)/.exec(line) : null;
      resolve(match ? Number(match[1]) : undefined);
    });
  });
}

// ---------------------------------------------------------------- the figures

const mib = (bytes: number) => `${(bytes / MIB).toFixed(0)} MiB`;
const rate = (n: number) => `${n.toFixed(0)} samples/s`;
const grouped = (n: number) => n.toLocaleString('en-US');

export async function orderFigures(ctx: OrderContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  const bench = new OrderBench(ctx);
  ctx.cleanups.push(() => bench.cleanup());
  const dataset = 'orders';
  const bound = resultQueueBound({ chunkSamples: chunkSamplesFor(RECORD_BYTES), width: SIDE, height: SIDE, channels: CHANNELS }).maxMessages;
  try {
    await bench.start('figure 4');
    await bench.makeDataset(dataset);

    if (ctx.figures.has('4')) {
      const size = ctx.settings.orderSize;
      // Warm-up, not timed: JIT on both children, broker queues and connections in place.
      const warm = await bench.runOrder(dataset, Math.min(size, 4096), 1);
      ctx.log(`order warm-up: ${warm.size} samples in ${warm.seconds.toFixed(2)} s`);
      const messageSizes = orderMessageSizes(size);
      await amqpReference(bench, ctx.settings.amqpUrl, orderMessageSizes(2000));
      const ours: OrderRun[] = [];
      const refs: ReferenceRun[] = [];
      const small: ReferenceRun[] = [];
      for (let round = 1; round <= ctx.settings.rounds; round++) {
        const ref = await amqpReference(bench, ctx.settings.amqpUrl, messageSizes);
        refs.push(ref);
        const run = await bench.runOrder(dataset, size, 1000 + round);
        ours.push(run);
        const ref30 = await amqpReference(bench, ctx.settings.amqpUrl, sameSize(size, RECORD_BYTES));
        small.push(ref30);
        ctx.log(
          `order round ${round}: reference ${ref.messages} result-size messages in ${ref.seconds.toFixed(2)} s (${(size / ref.seconds).toFixed(0)} samples/s), ours ${(run.size / run.seconds).toFixed(0)} samples/s (${run.seconds.toFixed(2)} s, ${run.polls} polls, ${run.emptyPolls} empty, created in ${run.createMs.toFixed(0)} ms, first poll answered at ${run.firstSampleMs.toFixed(0)} ms); 30 KB messages ${(ref30.messages / ref30.seconds).toFixed(0)} msg/s`,
        );
      }
      const oursRate = summarize(ours.map((r) => r.size / r.seconds));
      // The same bytes in the same messages: its samples/s is the order's size over its seconds.
      const refRate = summarize(refs.map((r) => size / r.seconds));
      const smallRate = summarize(small.map((r) => r.messages / r.seconds));
      const ratio = oursRate.median / refRate.median;
      const medianOf = (pick: (r: OrderRun) => number) => summarize(ours.map(pick)).median;
      const perSample = (ms: number) => (ms / size).toFixed(3);
      const secondsMedian = medianOf((r) => r.seconds);
      const cpuPerSample = (medianOf((r) => r.cpuMs.service) + medianOf((r) => r.cpuMs.worker)) / size;
      const messageText = `${grouped(messageSizes.length)} messages of ${grouped(messageSizes[0])} B`;
      figures.push({
        id: '4',
        title: `order ${grouped(size)} U8, safetensors polls, 1 worker ×${WORKER_CONCURRENCY}`,
        unit: 'samples/s',
        ours: oursRate,
        reference: refRate,
        ratio,
        target: ORDER_TARGET,
        verdict: ratio >= ORDER_TARGET ? 'PASS' : 'BELOW',
        details: {
          size,
          rounds: ours.map((r, i) => ({ ours: r, reference: refs[i], reference30k: small[i] })),
          reference: `bare amqplib, noDelay: confirm channel (≤ ${grouped(REF_CONFIRM_WINDOW)} B unconfirmed, ≤ ${grouped(REF_BACKLOG)} B unconsumed) + consumer (prefetch ${REF_PREFETCH}, ack each) at once, the order's result messages (${messageText}, ${grouped(refs[0].bytes)} B in all), fresh queue`,
          reference30k: `the same with ${grouped(size)} × ${RECORD_BYTES} B`,
          poll: { max: POLL_MAX, waitMs: POLL_WAIT_MS },
        },
        rows: [
          [
            '4',
            `order end to end: ${grouped(size)} × ${SIDE}×${SIDE}×${CHANNELS} U8, safetensors polls (max ${POLL_MAX}), serve + 1 worker ×${WORKER_CONCURRENCY}, ×${ours.length}`,
            `${rate(oursRate.median)} (${secondsMedian.toFixed(2)} s)`,
            `${rate(refRate.median)} (raw AMQP pub+consume, same ${messageText})`,
            ratio.toFixed(2),
            `≥ ${ORDER_TARGET}`,
            ratio >= ORDER_TARGET ? 'PASS' : 'BELOW',
          ],
          ['4', `same order: service + worker CPU per sample`, `${cpuPerSample.toFixed(3)} ms`, '–', '–', `≤ ${ORDER_CPU_TARGET_MS} ms`, cpuPerSample <= ORDER_CPU_TARGET_MS ? 'PASS' : 'BELOW'],
          ['4', `same order beside raw AMQP ${grouped(size)} × 30 KB pub+consume (the earlier reference)`, rate(oursRate.median), `${(smallRate.median).toFixed(0)} msg/s`, (oursRate.median / smallRate.median).toFixed(2), '–', 'info'],
        ],
        runsLine: `  4: ours ${ours.map((r) => (r.size / r.seconds).toFixed(0)).join(' ')}; reference ${refs.map((r) => (size / r.seconds).toFixed(0)).join(' ')} (samples/s, in run order); 30 KB reference ${small.map((r) => (r.messages / r.seconds).toFixed(0)).join(' ')} msg/s; polls per order ${ours.map((r) => `${r.polls} (${r.emptyPolls} empty)`).join(', ')}; median poll ${medianOf((r) => r.pollMs.median).toFixed(0)} ms (headers after ${medianOf((r) => r.headersMs.median).toFixed(0)} ms + body ${medianOf((r) => r.bodyMs.median).toFixed(0)} ms), ${medianOf((r) => r.samplesPerPoll.median).toFixed(0)} samples/poll; first poll answered after ${ours.map((r) => r.firstSampleMs.toFixed(0)).join(', ')} ms`,
        cpuLine: `  4: per sample: service ${perSample(medianOf((r) => r.cpuMs.service))} ms + worker ${perSample(medianOf((r) => r.cpuMs.worker))} ms + client ${perSample(medianOf((r) => r.cpuMs.client))} ms; reference client ${(summarize(refs.map((r) => r.cpuMs)).median / size).toFixed(3)} ms per sample (result-size messages), ${(summarize(small.map((r) => r.cpuMs)).median / size).toFixed(3)} ms per 30 KB message (medians, all threads)`,
      });
    }

    if (ctx.figures.has('4w')) {
      // The same order with 4 ranks polled at once beside 1 rank, alternating: ranks must not
      // serialise on one lock (the stream rows, the result queues, the worker's tasks).
      const size = ctx.settings.orderSize - (ctx.settings.orderSize % RANKS);
      if (!ctx.figures.has('4')) await bench.runOrder(dataset, Math.min(size, 4096), 1);
      const single: OrderRun[] = [];
      const ranked: OrderRun[] = [];
      for (let round = 1; round <= ctx.settings.rounds; round++) {
        single.push(await bench.runOrder(dataset, size, 2000 + round));
        ranked.push(await bench.runOrder(dataset, size, 3000 + round, undefined, RANKS));
        ctx.log(`ranks round ${round}: 1 rank ${(size / single.at(-1)!.seconds).toFixed(0)} samples/s, ${RANKS} ranks ${(size / ranked.at(-1)!.seconds).toFixed(0)} samples/s`);
      }
      const oursRate = summarize(ranked.map((r) => r.size / r.seconds));
      const refRate = summarize(single.map((r) => r.size / r.seconds));
      const ratio = oursRate.median / refRate.median;
      const cpu = (runs: OrderRun[], pick: (r: OrderRun) => number) => (summarize(runs.map(pick)).median / size).toFixed(3);
      figures.push({
        id: '4w',
        title: `order ${grouped(size)} with ${RANKS} ranks polled at once vs 1 rank`,
        unit: 'samples/s',
        ours: oursRate,
        reference: refRate,
        ratio,
        target: RANKS_TARGET,
        verdict: ratio >= RANKS_TARGET ? 'PASS' : 'BELOW',
        details: { size, ranks: RANKS, rounds: ranked.map((r, i) => ({ ranks: r, single: single[i] })) },
        rows: [
          [
            '4w',
            `order of ${grouped(size)}, ${RANKS} ranks each polled by its own client at once, serve + 1 worker ×${WORKER_CONCURRENCY}, ×${ranked.length}`,
            rate(oursRate.median),
            `${rate(refRate.median)} (same order, 1 rank)`,
            ratio.toFixed(2),
            `≥ ${RANKS_TARGET}`,
            ratio >= RANKS_TARGET ? 'PASS' : 'BELOW',
          ],
        ],
        runsLine: `  4w: ${RANKS} ranks ${ranked.map((r) => (r.size / r.seconds).toFixed(0)).join(' ')}; 1 rank ${single.map((r) => (r.size / r.seconds).toFixed(0)).join(' ')} (samples/s, in run order)`,
        cpuLine: `  4w: per sample, ${RANKS} ranks: service ${cpu(ranked, (r) => r.cpuMs.service)} ms + worker ${cpu(ranked, (r) => r.cpuMs.worker)} ms; 1 rank: service ${cpu(single, (r) => r.cpuMs.service)} ms + worker ${cpu(single, (r) => r.cpuMs.worker)} ms (medians, all threads)`,
      });
    }

    if (ctx.figures.has('5')) {
      // Fresh processes on the same data dir: their high-water marks are this order's alone.
      if (ctx.figures.has('4')) {
        await bench.stop();
        await bench.start('figure 5');
      }
      const size = ctx.settings.memoryOrderSize;
      const sampler = new MemorySampler(await bench.adminConnection(), bench.service.process.pid!, bench.worker!.process.pid!);
      sampler.start();
      let brokerBound: Promise<number | undefined> = Promise.resolve(undefined);
      let run: OrderRun;
      try {
        run = await bench.runOrder(dataset, size, 5, (id) => {
          const queue = resultQueueName({ orderId: id, generation: 0, stream: 0 });
          sampler.watchQueue(queue);
          brokerBound = brokerMaxLength(queue);
        });
      } finally {
        await sampler.finish();
      }
      const trace = sampler.trace;
      const maxLength = await brokerBound;
      const effectiveBound = maxLength ?? bound;
      if (maxLength !== undefined && maxLength !== bound) ctx.log(`result queue x-max-length ${maxLength} differs from resultQueueBound ${bound}`);
      const serviceOk = trace.servicePeakRss < RSS_TARGET_BYTES;
      const workerOk = trace.workerPeakRss < RSS_TARGET_BYTES;
      const queueOk = trace.longestQueue <= effectiveBound;
      const samplesPerSecond = run.size / run.seconds;
      ctx.log(
        `memory order: ${grouped(size)} in ${run.seconds.toFixed(2)} s (${samplesPerSecond.toFixed(0)} samples/s); serve peak ${mib(trace.servicePeakRss)} (HWM ${mib(trace.serviceHwm)}), worker peak ${mib(trace.workerPeakRss)} (HWM ${mib(trace.workerHwm)}); longest queue ${trace.longestQueue} of ${effectiveBound}`,
      );
      const boundText = `bound ${effectiveBound} msgs (${maxLength !== undefined ? 'x-max-length via rabbitmqctl' : 'resultQueueBound; rabbitmqctl unread'})`;
      figures.push({
        id: '5',
        title: `memory during an order of ${grouped(size)}`,
        unit: 'samples/s',
        ours: summarize([samplesPerSecond]),
        verdict: serviceOk && workerOk && queueOk ? 'PASS' : 'BELOW',
        details: { size, run, trace, bound, brokerMaxLength: maxLength, rssTargetBytes: RSS_TARGET_BYTES, sampleEveryMs: SAMPLE_EVERY_MS },
        rows: [
          ['5', `peak RSS of serve during an order of ${grouped(size)} (VmRSS /200 ms, VmHWM)`, mib(trace.servicePeakRss), `HWM ${mib(trace.serviceHwm)}`, '–', '< 512 MiB', serviceOk ? 'PASS' : 'BELOW'],
          ['5', `peak RSS of the worker (--concurrency ${WORKER_CONCURRENCY}), same order`, mib(trace.workerPeakRss), `HWM ${mib(trace.workerHwm)}`, '–', '< 512 MiB', workerOk ? 'PASS' : 'BELOW'],
          ['5', `longest result queue seen (ready msgs, checkQueue /200 ms)`, `${trace.longestQueue} msgs`, boundText, (trace.longestQueue / effectiveBound).toFixed(2), '≤ bound', queueOk ? 'PASS' : 'BELOW'],
          ['5', `same order, create to last sample`, `${rate(samplesPerSecond)} (${run.seconds.toFixed(1)} s)`, '–', '–', '–', 'info'],
        ],
        runsLine: `  5: ${rate(samplesPerSecond)}; ${run.polls} polls (${run.emptyPolls} empty), median poll ${run.pollMs.median.toFixed(0)} ms (headers after ${run.headersMs.median.toFixed(0)} ms + body ${run.bodyMs.median.toFixed(0)} ms), ${run.samplesPerPoll.median.toFixed(0)} samples/poll; RSS at start: serve ${mib(trace.serviceStartRss)}, worker ${mib(trace.workerStartRss)}; ${trace.rssSamples} RSS samples, ${trace.queueSamples} queue samples`,
        cpuLine: `  5: per sample: service ${(run.cpuMs.service / size).toFixed(3)} ms + worker ${(run.cpuMs.worker / size).toFixed(3)} ms + client ${(run.cpuMs.client / size).toFixed(3)} ms`,
      });
    }
  } finally {
    await bench.cleanup();
  }
  return figures;
}

// ---------------------------------------------------------------- the embedded shape

interface BatchesRun {
  readonly seconds: number;
  readonly batches: number;
  readonly cpuMs: { service: number; client: number };
}

/** A small batch draws without repetition: at most the dataset, and at most a poll's max. */
const batchSamples = (ctx: OrderContext) => Math.min(POLL_MAX, ctx.pngs.length);

/** `size` samples fetched as small safetensors batches (batchSamples), one after another. */
async function batchesReference(bench: OrderBench, ctx: OrderContext, dataset: string, size: number, seed: number): Promise<BatchesRun> {
  const pid = bench.service.process.pid!;
  const cpu0 = { service: processCpuMs(pid), client: ownCpuMs() };
  const t0 = performance.now();
  let batches = 0;
  for (let left = size; left > 0; left -= batchSamples(ctx)) {
    const n = Math.min(batchSamples(ctx), left);
    const reply = await safetensorsBatch(ctx.client, bench.endpoint, dataset, n, seed + batches++);
    if (reply.bytes < n * RECORD_BYTES) throw new Error(`a batch of ${n} came with ${reply.bytes} bytes`);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, batches, cpuMs: { service: processCpuMs(pid) - cpu0.service, client: ownCpuMs() - cpu0.client } };
}

/**
 * Figures 4e and 5e: orders in the embedded shape (serve alone: in-process queue and worker).
 *   4e. an order of BENCH_ORDER_SIZE polled as in figure 4 vs the same number of samples fetched
 *       as small safetensors batches of min(4096, the dataset) from the same serve, alternating;
 *   5e. peak RSS of serve during an order of BENCH_MEMORY_ORDER_SIZE (< 512 MiB).
 */
export async function embeddedOrderFigures(ctx: OrderContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  const bench = new OrderBench(ctx, true);
  ctx.cleanups.push(() => bench.cleanup());
  const dataset = 'orders';
  try {
    await bench.start('figure 4e');
    await bench.makeDataset(dataset);
    if (ctx.figures.has('4e')) {
      const size = ctx.settings.orderSize;
      const warm = await bench.runOrder(dataset, Math.min(size, 4096), 1);
      await batchesReference(bench, ctx, dataset, Math.min(size, 4096), 1);
      ctx.log(`embedded order warm-up: ${warm.size} samples in ${warm.seconds.toFixed(2)} s`);
      const ours: OrderRun[] = [];
      const refs: BatchesRun[] = [];
      for (let round = 1; round <= ctx.settings.rounds; round++) {
        const ref = await batchesReference(bench, ctx, dataset, size, 100 * round);
        refs.push(ref);
        const run = await bench.runOrder(dataset, size, 4000 + round);
        ours.push(run);
        ctx.log(
          `embedded order round ${round}: batches ${(size / ref.seconds).toFixed(0)} samples/s (${ref.batches} batches, ${ref.seconds.toFixed(2)} s), ours ${(run.size / run.seconds).toFixed(0)} samples/s (${run.seconds.toFixed(2)} s, ${run.polls} polls, first poll answered at ${run.firstSampleMs.toFixed(0)} ms)`,
        );
      }
      const oursRate = summarize(ours.map((r) => r.size / r.seconds));
      const refRate = summarize(refs.map((r) => size / r.seconds));
      const ratio = oursRate.median / refRate.median;
      const medianOf = (pick: (r: OrderRun) => number) => summarize(ours.map(pick)).median;
      const perSample = (ms: number) => (ms / size).toFixed(3);
      figures.push({
        id: '4e',
        title: `embedded order ${grouped(size)} U8 vs the same samples as small batches`,
        unit: 'samples/s',
        ours: oursRate,
        reference: refRate,
        ratio,
        target: EMBEDDED_TARGET,
        verdict: ratio >= EMBEDDED_TARGET ? 'PASS' : 'BELOW',
        details: { size, rounds: ours.map((r, i) => ({ ours: r, reference: refs[i] })), reference: `${grouped(size)} samples as safetensors batches of ${batchSamples(ctx)}, one after another, same serve`, poll: { max: POLL_MAX, waitMs: POLL_WAIT_MS } },
        rows: [
          [
            '4e',
            `embedded order: ${grouped(size)} × ${SIDE}×${SIDE}×${CHANNELS} U8, safetensors polls (max ${POLL_MAX}), serve alone (in-process queue), ×${ours.length}`,
            `${rate(oursRate.median)} (${medianOf((r) => r.seconds).toFixed(2)} s)`,
            `${rate(refRate.median)} (same samples as batches of ${batchSamples(ctx)})`,
            ratio.toFixed(2),
            `≥ ${EMBEDDED_TARGET}`,
            ratio >= EMBEDDED_TARGET ? 'PASS' : 'BELOW',
          ],
        ],
        runsLine: `  4e: ours ${ours.map((r) => (r.size / r.seconds).toFixed(0)).join(' ')}; batches ${refs.map((r) => (size / r.seconds).toFixed(0)).join(' ')} (samples/s, in run order); median poll ${medianOf((r) => r.pollMs.median).toFixed(0)} ms (headers after ${medianOf((r) => r.headersMs.median).toFixed(0)} ms + body ${medianOf((r) => r.bodyMs.median).toFixed(0)} ms), ${medianOf((r) => r.samplesPerPoll.median).toFixed(0)} samples/poll; first poll answered after ${ours.map((r) => r.firstSampleMs.toFixed(0)).join(', ')} ms`,
        cpuLine: `  4e: per sample: service ${perSample(medianOf((r) => r.cpuMs.service))} ms + client ${perSample(medianOf((r) => r.cpuMs.client))} ms; batches: service ${perSample(summarize(refs.map((r) => r.cpuMs.service)).median)} ms + client ${perSample(summarize(refs.map((r) => r.cpuMs.client)).median)} ms (medians, all threads)`,
      });
    }
    if (ctx.figures.has('5e')) {
      if (ctx.figures.has('4e')) {
        await bench.stop();
        await bench.start('figure 5e');
      }
      const size = ctx.settings.memoryOrderSize;
      const sampler = new MemorySampler(undefined, bench.service.process.pid!, undefined);
      sampler.start();
      let run: OrderRun;
      try {
        run = await bench.runOrder(dataset, size, 6);
      } finally {
        await sampler.finish();
      }
      const trace = sampler.trace;
      const ok = trace.servicePeakRss < RSS_TARGET_BYTES;
      const samplesPerSecond = run.size / run.seconds;
      ctx.log(`embedded memory order: ${grouped(size)} in ${run.seconds.toFixed(2)} s (${samplesPerSecond.toFixed(0)} samples/s); serve peak ${mib(trace.servicePeakRss)} (HWM ${mib(trace.serviceHwm)})`);
      figures.push({
        id: '5e',
        title: `embedded: memory during an order of ${grouped(size)}`,
        unit: 'samples/s',
        ours: summarize([samplesPerSecond]),
        verdict: ok ? 'PASS' : 'BELOW',
        details: { size, run, trace, rssTargetBytes: RSS_TARGET_BYTES, sampleEveryMs: SAMPLE_EVERY_MS },
        rows: [
          ['5e', `embedded: peak RSS of serve (queue + worker in-process) during an order of ${grouped(size)} (VmRSS /200 ms, VmHWM)`, mib(trace.servicePeakRss), `HWM ${mib(trace.serviceHwm)}`, '–', '< 512 MiB', ok ? 'PASS' : 'BELOW'],
          ['5e', `same order, create to last sample`, `${rate(samplesPerSecond)} (${run.seconds.toFixed(1)} s)`, '–', '–', '–', 'info'],
        ],
        runsLine: `  5e: ${rate(samplesPerSecond)}; ${run.polls} polls (${run.emptyPolls} empty), median poll ${run.pollMs.median.toFixed(0)} ms, ${run.samplesPerPoll.median.toFixed(0)} samples/poll; RSS at start ${mib(trace.serviceStartRss)}; ${trace.rssSamples} RSS samples`,
        cpuLine: `  5e: per sample: service ${(run.cpuMs.service / size).toFixed(3)} ms + client ${(run.cpuMs.client / size).toFixed(3)} ms`,
      });
    }
  } finally {
    await bench.cleanup();
  }
  return figures;
}
