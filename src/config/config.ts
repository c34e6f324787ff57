import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { BLOB_STORES, DATABASES } from '../adapters/backends.js';
import { NAME_PATTERN } from '../domain/names.js';
import { parseApiKeys, type ApiKeyEntry } from './api-keys-setting.js';
import { Problem } from './problem.js';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** undefined → SQLite in the data dir. */
  readonly databaseUrl: string | undefined;
  /** undefined → files under `<dataDir>/blobs`. */
  readonly blobUrl: string | undefined;
  /** undefined → in-process queue. */
  readonly amqpUrl: string | undefined;
  readonly amqpExchange: string;
  readonly amqpTaskQueue: string;
  readonly amqpTaskRoutingKey: string;
  readonly shardSize: number;
  readonly orderTtlSeconds: number;
  /** How long a poll holds the samples it is sending before another poll may send them. */
  readonly orderLeaseMs: number;
  /** The longest TTL PATCH /v1/orders/{id} may set. */
  readonly orderMaxTtlSeconds: number;
  readonly maxOrderSamples: number;
  /** Shards of an order: ranks × ⌈samples per rank / shardSize⌉. */
  readonly maxOrderShards: number;
  readonly maxOrderRanks: number;
  /** A waiting poll looks again this often when nothing woke it (results, a status change). */
  readonly pollRecheckMs: number;
  /** Polls waiting at once in this process, in all and per API key. */
  readonly maxWaitingPolls: number;
  readonly maxWaitingPollsPerKey: number;
  /** Active (queued or running) orders one API key may have. */
  readonly maxActiveOrdersPerKey: number;
  /** Bytes of one order's results produced and not yet polled (over all its ranks). */
  readonly orderBufferBytes: number;
  /** Bytes of every order's results produced and not yet polled, in the in-process queue. */
  readonly orderBufferTotalBytes: number;
  /** undefined → the admin key generated at first start, kept in `<dataDir>/api-key`. */
  readonly apiKeys: readonly ApiKeyEntry[] | undefined;
  readonly apiVersion: string;
  readonly legacyDataset: string | undefined;
  readonly maxSampleBytes: number;
  readonly maxBatchSamples: number;
  /** Bound on a small batch's encoded response, estimated before any sample is read. */
  readonly maxBatchBytes: number;
  /** Bound on width × height × channels of a dataset. */
  readonly maxRecordBytes: number;
  /** Bound on a dataset's pixel file: pixel slots handed out × record bytes. */
  readonly maxDatasetPixelBytes: number;
  readonly headersTimeoutMs: number;
  /** The whole request (headers and body) must have arrived by then. */
  readonly requestTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** A response must have been written (read by the client) within this time from its start. */
  readonly responseTimeoutMs: number;
  /** 0 → no cap. */
  readonly maxConnectionsPerIp: number;
  /** Width × height of an uploaded image (one frame), checked from its header before decoding. */
  readonly maxImagePixels: number;
  /** Frames of an animated upload (GIF, WebP, TIFF pages, APNG). */
  readonly maxImageFrames: number;
  /** Items of one bulk upload or import request. */
  readonly maxBulkItems: number;
  /** Items of one feedback request (a trainer's per-sample reports). */
  readonly maxFeedbackItems: number;
  readonly maxSampleMetadataBytes: number;
  /** A deleted sample is purged once deleted this long ago (by the admin purge and compaction). */
  readonly purgeRetentionSeconds: number;
  /** A segment file of originals is closed, and the next begun, at about this size. */
  readonly segmentBytes: number;
  /** How long an export job stays held by a runner that stopped renewing it (died): then another takes it. */
  readonly exportLeaseMs: number;
  /** Export jobs one process (serve in the embedded shape, each worker in production) runs at once. */
  readonly exportConcurrency: number;
  /** Worker threads warping noisy batch chunks; 0: on the event loop. */
  readonly warpThreads: number;
  /** Worker threads hashing and decoding the items of bulk uploads; 0: on the event loop. Default: defaultIngestThreads(). */
  readonly ingestThreads: number;
  /** A webhook delivery attempt without an answer by then fails (and is retried). */
  readonly webhookTimeoutMs: number;
  /** Attempts of a webhook delivery before it is given up. */
  readonly webhookMaxAttempts: number;
  /** First retry delay of a webhook delivery; it doubles with each failed attempt, up to an hour. */
  readonly webhookRetryBaseMs: number;
  /** dataset.revision events: the revision must hold still this long (or move for three times this long). */
  readonly webhookDebounceMs: number;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

type Reader<T> = (raw: string) => T | Problem;

interface Setting<K extends keyof Config> {
  readonly key: K;
  readonly variable: string;
  readonly fallback: Config[K];
  readonly read: Reader<Config[K]>;
  /** Never echo the value in an error message. */
  readonly secret?: boolean;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HOUR_MS = 3600 * 1000;

const integer = (min: number, max: number): Reader<number> => (raw) => {
  const value = Number(raw.trim());
  return /^\d+$/.test(raw.trim()) && value >= min && value <= max
    ? value
    : new Problem(`must be a whole number from ${min} to ${max}`);
};
const text: Reader<string> = (raw) => (raw.trim() === '' ? new Problem('must not be empty') : raw.trim());
const amqpName: Reader<string> = (raw) =>
  /^[A-Za-z0-9._:-]{1,255}$/.test(raw) ? raw : new Problem('must be 1–255 characters of letters, digits, . _ : -');
const oneOf = (choices: readonly string[]): Reader<string> => (raw) =>
  choices.includes(raw) ? raw : new Problem(`must be one of ${choices.join(', ')}`);
const urlWithScheme = (schemes: readonly string[]): Reader<string | undefined> => (raw) => {
  const problem = new Problem(`must be a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')}`);
  try {
    return schemes.includes(new URL(raw).protocol) ? raw : problem;
  } catch {
    return problem;
  }
};

/** Every setting, its variable, default and check: the configuration table of the README. */
const SETTINGS = [
  { key: 'host', variable: 'SENSORY_HOST', fallback: '127.0.0.1', read: text },
  { key: 'port', variable: 'SENSORY_PORT', fallback: 8002, read: integer(0, 65535) },
  { key: 'dataDir', variable: 'SENSORY_DATA_DIR', fallback: './data', read: text },
  { key: 'databaseUrl', variable: 'SENSORY_DATABASE_URL', fallback: undefined, read: urlWithScheme(Object.keys(DATABASES)), secret: true },
  { key: 'blobUrl', variable: 'SENSORY_BLOB_URL', fallback: undefined, read: urlWithScheme(Object.keys(BLOB_STORES)) },
  { key: 'amqpUrl', variable: 'SENSORY_AMQP_URL', fallback: undefined, read: urlWithScheme(['amqp:', 'amqps:']), secret: true },
  { key: 'amqpExchange', variable: 'SENSORY_AMQP_EXCHANGE', fallback: 'sensory.exchange', read: amqpName },
  { key: 'amqpTaskQueue', variable: 'SENSORY_AMQP_TASK_QUEUE', fallback: 'sensory.batch.request.task.queue', read: amqpName },
  { key: 'amqpTaskRoutingKey', variable: 'SENSORY_AMQP_TASK_ROUTING_KEY', fallback: 'task_queue', read: amqpName },
  { key: 'shardSize', variable: 'SENSORY_SHARD_SIZE', fallback: 5000, read: integer(1, 1_000_000) },
  { key: 'orderTtlSeconds', variable: 'SENSORY_ORDER_TTL_SECONDS', fallback: 1800, read: integer(1, 7 * 24 * 3600) },
  { key: 'orderLeaseMs', variable: 'SENSORY_ORDER_LEASE_MS', fallback: 120_000, read: integer(1000, 24 * 3600 * 1000) },
  { key: 'orderMaxTtlSeconds', variable: 'SENSORY_ORDER_MAX_TTL_SECONDS', fallback: 7 * 24 * 3600, read: integer(1, 30 * 24 * 3600) },
  { key: 'maxOrderSamples', variable: 'SENSORY_MAX_ORDER_SAMPLES', fallback: 100_000_000, read: integer(1, 100_000_000) },
  { key: 'maxOrderShards', variable: 'SENSORY_MAX_ORDER_SHARDS', fallback: 100_000, read: integer(1, 10_000_000) },
  { key: 'maxOrderRanks', variable: 'SENSORY_MAX_ORDER_RANKS', fallback: 64, read: integer(1, 4096) },
  { key: 'pollRecheckMs', variable: 'SENSORY_POLL_RECHECK_MS', fallback: 5000, read: integer(50, 60_000) },
  { key: 'maxWaitingPolls', variable: 'SENSORY_MAX_WAITING_POLLS', fallback: 4096, read: integer(1, 1_000_000) },
  { key: 'maxWaitingPollsPerKey', variable: 'SENSORY_MAX_WAITING_POLLS_PER_KEY', fallback: 1024, read: integer(1, 1_000_000) },
  { key: 'maxActiveOrdersPerKey', variable: 'SENSORY_MAX_ACTIVE_ORDERS_PER_KEY', fallback: 16, read: integer(1, 1_000_000) },
  { key: 'orderBufferBytes', variable: 'SENSORY_ORDER_BUFFER_BYTES', fallback: 256 * MiB, read: integer(MiB, 64 * GiB) },
  { key: 'orderBufferTotalBytes', variable: 'SENSORY_ORDER_BUFFER_TOTAL_BYTES', fallback: 2 * GiB, read: integer(MiB, 1024 * GiB) },
  { key: 'apiKeys', variable: 'SENSORY_API_KEYS', fallback: undefined, read: parseApiKeys, secret: true },
  { key: 'apiVersion', variable: 'SENSORY_API_VERSION', fallback: '0.3.0', read: text },
  {
    key: 'legacyDataset',
    variable: 'SENSORY_LEGACY_DATASET',
    fallback: undefined,
    read: (raw: string) => (NAME_PATTERN.test(raw) ? raw : new Problem('must be a dataset name (^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)')),
  },
  { key: 'maxSampleBytes', variable: 'SENSORY_MAX_SAMPLE_BYTES', fallback: 10 * MiB, read: integer(1, 1024 * MiB) },
  { key: 'maxBatchSamples', variable: 'SENSORY_MAX_BATCH_SAMPLES', fallback: 4096, read: integer(1, 1_000_000) },
  { key: 'maxBatchBytes', variable: 'SENSORY_MAX_BATCH_BYTES', fallback: 256 * MiB, read: integer(64 * 1024, 16 * GiB) },
  { key: 'maxRecordBytes', variable: 'SENSORY_MAX_RECORD_BYTES', fallback: 16 * MiB, read: integer(1, 4 * GiB) },
  { key: 'maxDatasetPixelBytes', variable: 'SENSORY_MAX_DATASET_PIXEL_BYTES', fallback: 64 * GiB, read: integer(MiB, 2 ** 50) },
  { key: 'headersTimeoutMs', variable: 'SENSORY_HEADERS_TIMEOUT_MS', fallback: 10_000, read: integer(1000, 10 * 60_000) },
  { key: 'requestTimeoutMs', variable: 'SENSORY_REQUEST_TIMEOUT_MS', fallback: 120_000, read: integer(1000, 24 * HOUR_MS) },
  { key: 'idleTimeoutMs', variable: 'SENSORY_IDLE_TIMEOUT_MS', fallback: 60_000, read: integer(1000, 24 * HOUR_MS) },
  { key: 'keepAliveTimeoutMs', variable: 'SENSORY_KEEP_ALIVE_TIMEOUT_MS', fallback: 5000, read: integer(100, 10 * 60_000) },
  { key: 'responseTimeoutMs', variable: 'SENSORY_RESPONSE_TIMEOUT_MS', fallback: 120_000, read: integer(1000, 24 * HOUR_MS) },
  { key: 'maxConnectionsPerIp', variable: 'SENSORY_MAX_CONNECTIONS_PER_IP', fallback: 256, read: integer(0, 1_000_000) },
  { key: 'maxImagePixels', variable: 'SENSORY_MAX_IMAGE_PIXELS', fallback: 50_000_000, read: integer(1, 268_402_689) },
  { key: 'maxImageFrames', variable: 'SENSORY_MAX_IMAGE_FRAMES', fallback: 1000, read: integer(1, 100_000) },
  { key: 'maxBulkItems', variable: 'SENSORY_MAX_BULK_ITEMS', fallback: 100_000, read: integer(1, 1_000_000) },
  { key: 'maxFeedbackItems', variable: 'SENSORY_MAX_FEEDBACK_ITEMS', fallback: 10_000, read: integer(1, 1_000_000) },
  { key: 'maxSampleMetadataBytes', variable: 'SENSORY_MAX_SAMPLE_METADATA_BYTES', fallback: 4096, read: integer(2, 1024 * 1024) },
  { key: 'segmentBytes', variable: 'SENSORY_SEGMENT_BYTES', fallback: 64 * MiB, read: integer(MiB, 4096 * MiB) },
  { key: 'purgeRetentionSeconds', variable: 'SENSORY_PURGE_RETENTION_SECONDS', fallback: 7 * 24 * 3600, read: integer(0, 10 * 365 * 24 * 3600) },
  { key: 'exportLeaseMs', variable: 'SENSORY_EXPORT_LEASE_MS', fallback: 30_000, read: integer(1000, HOUR_MS) },
  { key: 'exportConcurrency', variable: 'SENSORY_EXPORT_CONCURRENCY', fallback: 1, read: integer(1, 64) },
  { key: 'warpThreads', variable: 'SENSORY_WARP_THREADS', fallback: 0, read: integer(0, 16) },
  { key: 'ingestThreads', variable: 'SENSORY_INGEST_THREADS', fallback: defaultIngestThreads(), read: integer(0, 16) },
  { key: 'webhookTimeoutMs', variable: 'SENSORY_WEBHOOK_TIMEOUT_MS', fallback: 5000, read: integer(100, 60_000) },
  { key: 'webhookMaxAttempts', variable: 'SENSORY_WEBHOOK_MAX_ATTEMPTS', fallback: 12, read: integer(1, 100) },
  { key: 'webhookRetryBaseMs', variable: 'SENSORY_WEBHOOK_RETRY_BASE_MS', fallback: 1000, read: integer(10, HOUR_MS) },
  { key: 'webhookDebounceMs', variable: 'SENSORY_WEBHOOK_DEBOUNCE_MS', fallback: 2000, read: integer(100, HOUR_MS) },
  {
    key: 'logLevel',
    variable: 'SENSORY_LOG_LEVEL',
    fallback: 'info',
    read: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  },
] as const satisfies readonly Setting<keyof Config>[];

export const CONFIG_VARIABLES: readonly { variable: string; key: keyof Config; fallback: unknown }[] = SETTINGS.map(
  ({ variable, key, fallback }) => ({ variable, key, fallback }),
);

/**
 * SENSORY_INGEST_THREADS when unset: one decode thread where there is a second core, none on a
 * single core (a thread there only takes turns with the event loop). One is enough however many
 * cores: with it, bulk ingest reached 0.96–1.00 of the rate the event loop alone sustains
 * (parsing, looking up, writing, committing), which a second thread cannot raise.
 */
export function defaultIngestThreads(cores = availableParallelism()): number {
  return cores >= 2 ? 1 : 0;
}

/**
 * Reads the configuration once: environment first, then `overrides` (CLI flags, keyed by the
 * variable name). All problems are reported together; secret values are never echoed.
 */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Record<string, string | undefined> = {}): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS as readonly Setting<keyof Config>[]) {
    const raw = overrides[setting.variable] ?? env[setting.variable];
    if (raw === undefined || raw === '') {
      values[setting.key] = setting.fallback;
      continue;
    }
    const parsed = setting.read(raw);
    if (parsed instanceof Problem) {
      problems.push(`${setting.variable} ${parsed.text}${setting.secret ? '' : ` (got ${JSON.stringify(raw.slice(0, 60))})`}`);
      continue;
    }
    values[setting.key] = parsed;
  }
  if (problems.length === 0 && (values.orderTtlSeconds as number) > (values.orderMaxTtlSeconds as number)) {
    problems.push(`SENSORY_ORDER_TTL_SECONDS (${values.orderTtlSeconds}) must not be above SENSORY_ORDER_MAX_TTL_SECONDS (${values.orderMaxTtlSeconds})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  values.dataDir = resolve(values.dataDir as string);
  return Object.freeze(values as unknown as Config);
}

