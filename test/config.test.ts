import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_VARIABLES, ConfigError, defaultIngestThreads, loadConfig, type Config } from '../src/config/config.js';

const SPEC = '/work/shared/SPEC.md';
const MiB = 1024 * 1024;

/** The rows of SPEC §2's configuration table: variable → default text. */
function specTable(): Map<string, string> {
  const text = readFileSync(SPEC, 'utf8');
  const section = text.slice(text.indexOf('## 2. Configuration'), text.indexOf('## 3.'));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const match = /^\| `(SENSORY_[A-Z_]+)` \| ([^|]*) \|/.exec(line);
    if (match) rows.set(match[1], match[2].trim());
  }
  return rows;
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

describe('loadConfig', () => {
  it('defaults to SPEC §2', () => {
    const config = loadConfig({});
    const expected: Omit<Config, 'logLevel'> = {
      host: '127.0.0.1',
      port: 8002,
      dataDir: resolve('./data'),
      databaseUrl: undefined,
      blobUrl: undefined,
      amqpUrl: undefined,
      amqpExchange: 'sensory.exchange',
      amqpTaskQueue: 'sensory.batch.request.task.queue',
      amqpTaskRoutingKey: 'task_queue',
      shardSize: 5000,
      orderTtlSeconds: 1800,
      orderLeaseMs: 120_000,
      orderMaxTtlSeconds: 7 * 24 * 3600,
      maxOrderSamples: 100_000_000,
      maxOrderShards: 100_000,
      maxOrderRanks: 64,
      pollRecheckMs: 5000,
      maxWaitingPolls: 4096,
      maxWaitingPollsPerKey: 1024,
      maxActiveOrdersPerKey: 16,
      orderBufferBytes: 256 * MiB,
      orderBufferTotalBytes: 2048 * MiB,
      apiKeys: undefined,
      apiVersion: '0.3.0',
      legacyDataset: undefined,
      maxSampleBytes: 10 * MiB,
      maxBatchSamples: 4096,
      maxBatchBytes: 256 * MiB,
      maxRecordBytes: 16 * MiB,
      maxDatasetPixelBytes: 64 * 1024 * MiB,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 120_000,
      idleTimeoutMs: 60_000,
      keepAliveTimeoutMs: 5000,
      responseTimeoutMs: 120_000,
      maxConnectionsPerIp: 256,
      maxImagePixels: 50_000_000,
      maxImageFrames: 1000,
      maxBulkItems: 100_000,
      maxFeedbackItems: 10_000,
      maxSampleMetadataBytes: 4096,
      purgeRetentionSeconds: 604_800,
      segmentBytes: 64 * MiB,
      exportLeaseMs: 30_000,
      exportConcurrency: 1,
      warpThreads: 0,
      ingestThreads: defaultIngestThreads(),
      webhookTimeoutMs: 5000,
      webhookMaxAttempts: 12,
      webhookRetryBaseMs: 1000,
      webhookDebounceMs: 2000,
    };
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(config[key as keyof Config], value, key);
  });

  it('knows every variable of SPEC §2, with the default the table states', () => {
    const table = specTable();
    assert.ok(table.size >= 15, `read only ${table.size} rows from SPEC §2`);
    const known = new Map(CONFIG_VARIABLES.map((entry) => [entry.variable, entry.fallback]));
    for (const [variable, text] of table) {
      assert.ok(known.has(variable), `${variable} is in SPEC §2 but not read by loadConfig`);
      const fallback = known.get(variable);
      const literal = /^`([^`]*)`$/.exec(text);
      if (literal) {
        assert.equal(String(fallback), literal[1], variable);
      } else if (/^unset|^SQLite/.test(text)) {
        assert.equal(fallback, undefined, variable);
      } else if (text === '10 MiB') {
        assert.equal(fallback, 10 * MiB, variable);
      } else {
        assert.equal(String(fallback), text, variable);
      }
    }
  });

  it('reads every variable when valid', () => {
    const config = loadConfig({
      SENSORY_HOST: '0.0.0.0',
      SENSORY_PORT: '9000',
      SENSORY_DATA_DIR: '/tmp/sensory-data',
      SENSORY_DATABASE_URL: 'postgres://u:p@db:5432/sensory',
      SENSORY_BLOB_URL: 'file:///srv/sensory-blobs',
      SENSORY_AMQP_URL: 'amqp://u:p@mq:5672/sensory',
      SENSORY_AMQP_EXCHANGE: 'ex',
      SENSORY_AMQP_TASK_QUEUE: 'q',
      SENSORY_AMQP_TASK_ROUTING_KEY: 'rk',
      SENSORY_SHARD_SIZE: '100',
      SENSORY_ORDER_TTL_SECONDS: '60',
      SENSORY_API_KEYS: 'abcdefgh12:read,write;zyxwvuts98:admin',
      SENSORY_API_VERSION: '0.4.0',
      SENSORY_LEGACY_DATASET: 'mnist_28x28',
      SENSORY_MAX_SAMPLE_BYTES: '2048',
      SENSORY_MAX_BATCH_SAMPLES: '16',
      SENSORY_ORDER_MAX_TTL_SECONDS: '86400',
      SENSORY_MAX_ORDER_SAMPLES: '5000000',
      SENSORY_MAX_ORDER_SHARDS: '300',
      SENSORY_MAX_ORDER_RANKS: '8',
      SENSORY_WARP_THREADS: '2',
      SENSORY_INGEST_THREADS: '3',
    });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 9000);
    assert.equal(config.dataDir, '/tmp/sensory-data');
    assert.equal(config.databaseUrl, 'postgres://u:p@db:5432/sensory');
    assert.equal(config.blobUrl, 'file:///srv/sensory-blobs');
    assert.equal(config.amqpUrl, 'amqp://u:p@mq:5672/sensory');
    assert.equal(config.amqpExchange, 'ex');
    assert.equal(config.amqpTaskQueue, 'q');
    assert.equal(config.amqpTaskRoutingKey, 'rk');
    assert.equal(config.shardSize, 100);
    assert.equal(config.orderTtlSeconds, 60);
    assert.deepEqual(config.apiKeys, [
      { key: 'abcdefgh12', roles: ['read', 'write'] },
      { key: 'zyxwvuts98', roles: ['admin'] },
    ]);
    assert.equal(config.apiVersion, '0.4.0');
    assert.equal(config.legacyDataset, 'mnist_28x28');
    assert.equal(config.maxSampleBytes, 2048);
    assert.equal(config.maxBatchSamples, 16);
    assert.deepEqual([config.orderMaxTtlSeconds, config.maxOrderSamples, config.maxOrderShards, config.maxOrderRanks], [86400, 5_000_000, 300, 8]);
    assert.equal(config.warpThreads, 2);
    assert.equal(config.ingestThreads, 3);
  });

  it('decodes bulk items on one thread by default where there is a second core, on the event loop on one core; 0 turns the threads off', () => {
    assert.deepEqual([1, 2, 4, 64].map((cores) => defaultIngestThreads(cores)), [0, 1, 1, 1]);
    assert.equal(loadConfig({}).ingestThreads, defaultIngestThreads());
    assert.equal(loadConfig({ SENSORY_INGEST_THREADS: '0' }).ingestThreads, 0);
  });

  it('takes each backend URL scheme its table has: sqlite:, postgres:, postgresql: for the database, file: for blobs', () => {
    for (const url of ['sqlite:///tmp/x.db', 'postgres://db/sensory', 'postgresql://db/sensory']) assert.equal(loadConfig({ SENSORY_DATABASE_URL: url }).databaseUrl, url);
    assert.equal(loadConfig({ SENSORY_BLOB_URL: 'file:///tmp/blobs' }).blobUrl, 'file:///tmp/blobs');
    assert.match(configError({ SENSORY_BLOB_URL: 's3://bucket/blobs' }).message, /SENSORY_BLOB_URL must be a URL starting with file:\/\//);
    assert.match(configError({ SENSORY_DATABASE_URL: 'mysql://db/x' }).message, /SENSORY_DATABASE_URL must be a URL starting with sqlite:\/\/ or postgres:\/\/ or postgresql:\/\//);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ SENSORY_PORT: '' }).port, 8002);
    assert.equal(loadConfig({ SENSORY_LEGACY_DATASET: '' }).legacyDataset, undefined);
  });

  it('lets an override (a CLI flag) win over the environment', () => {
    assert.equal(loadConfig({ SENSORY_PORT: '9000' }, { SENSORY_PORT: '9100' }).port, 9100);
    assert.equal(loadConfig({ SENSORY_PORT: '9000' }, { SENSORY_PORT: undefined }).port, 9000);
  });

  const invalid: Array<[string, string]> = [
    ['SENSORY_PORT', '70000'],
    ['SENSORY_PORT', 'abc'],
    ['SENSORY_PORT', '80.5'],
    ['SENSORY_PORT', '-1'],
    ['SENSORY_SHARD_SIZE', '0'],
    ['SENSORY_ORDER_TTL_SECONDS', '-1'],
    ['SENSORY_API_KEYS', 'abcdefghijkl'],
    ['SENSORY_API_KEYS', 'abcdefghijkl:'],
    ['SENSORY_API_KEYS', 'abcdefghijkl:root'],
    ['SENSORY_API_KEYS', 'abcdefghijkl:read,root'],
    ['SENSORY_API_KEYS', 'short:admin'],
    ['SENSORY_API_KEYS', 'abcdefghijkl:admin;tiny:read'],
    ['SENSORY_API_KEYS', ';'],
    ['SENSORY_LEGACY_DATASET', '../mnist'],
    ['SENSORY_LEGACY_DATASET', '.mnist'],
    ['SENSORY_DATABASE_URL', 'http://x'],
    ['SENSORY_DATABASE_URL', 'not a url'],
    ['SENSORY_BLOB_URL', '/var/lib/blobs'],
    ['SENSORY_BLOB_URL', 's3://bucket/blobs'],
    ['SENSORY_AMQP_URL', 'foo'],
    ['SENSORY_AMQP_URL', 'http://mq:5672'],
    ['SENSORY_MAX_SAMPLE_BYTES', '0'],
    ['SENSORY_MAX_BATCH_SAMPLES', '0'],
    ['SENSORY_AMQP_EXCHANGE', 'has space'],
    ['SENSORY_LOG_LEVEL', 'loud'],
    ['SENSORY_ORDER_MAX_TTL_SECONDS', '0'],
    ['SENSORY_ORDER_MAX_TTL_SECONDS', '2592001'],
    ['SENSORY_MAX_ORDER_SAMPLES', '0'],
    ['SENSORY_MAX_ORDER_SAMPLES', '100000001'],
    ['SENSORY_MAX_ORDER_SHARDS', '0'],
    ['SENSORY_MAX_ORDER_RANKS', '0'],
    ['SENSORY_MAX_ORDER_RANKS', '4097'],
    ['SENSORY_POLL_RECHECK_MS', '49'],
    ['SENSORY_POLL_RECHECK_MS', '60001'],
    ['SENSORY_POLL_RECHECK_MS', 'soon'],
    ['SENSORY_MAX_WAITING_POLLS', '0'],
    ['SENSORY_MAX_WAITING_POLLS', '-1'],
    ['SENSORY_MAX_WAITING_POLLS_PER_KEY', '0'],
    ['SENSORY_MAX_WAITING_POLLS_PER_KEY', '1.5'],
    ['SENSORY_MAX_ACTIVE_ORDERS_PER_KEY', '0'],
    ['SENSORY_MAX_ACTIVE_ORDERS_PER_KEY', 'many'],
    ['SENSORY_ORDER_BUFFER_BYTES', '1048575'],
    ['SENSORY_ORDER_BUFFER_BYTES', '256MiB'],
    ['SENSORY_ORDER_BUFFER_TOTAL_BYTES', '1048575'],
    ['SENSORY_ORDER_BUFFER_TOTAL_BYTES', '1099511627777'],
    ['SENSORY_WARP_THREADS', '-1'],
    ['SENSORY_WARP_THREADS', '17'],
    ['SENSORY_WARP_THREADS', '1.5'],
    ['SENSORY_WARP_THREADS', 'two'],
    ['SENSORY_INGEST_THREADS', '-1'],
    ['SENSORY_INGEST_THREADS', '17'],
    ['SENSORY_INGEST_THREADS', '0.5'],
    ['SENSORY_INGEST_THREADS', 'all'],
  ];
  for (const [variable, value] of invalid) {
    it(`refuses ${variable}=${JSON.stringify(value)}, naming the variable`, () => {
      const error = configError({ [variable]: value });
      assert.equal(error.problems.length, 1);
      assert.match(error.message, new RegExp(`\\b${variable}\\b`));
      assert.ok(error.problems[0].startsWith(variable), error.problems[0]);
      // One clear line.
      assert.ok(!error.message.includes('\n'), error.message);
    });
  }

  it('refuses an order TTL above the longest TTL an order may be given, naming both', () => {
    const error = configError({ SENSORY_ORDER_TTL_SECONDS: '7200', SENSORY_ORDER_MAX_TTL_SECONDS: '3600' });
    assert.equal(error.problems.length, 1);
    assert.match(error.message, /SENSORY_ORDER_TTL_SECONDS \(7200\) must not be above SENSORY_ORDER_MAX_TTL_SECONDS \(3600\)/);
    assert.equal(loadConfig({ SENSORY_ORDER_TTL_SECONDS: '3600', SENSORY_ORDER_MAX_TTL_SECONDS: '3600' }).orderTtlSeconds, 3600);
  });

  it('lists every invalid variable in one error', () => {
    const error = configError({
      SENSORY_PORT: '70000',
      SENSORY_SHARD_SIZE: '0',
      SENSORY_ORDER_TTL_SECONDS: '-1',
      SENSORY_AMQP_URL: 'foo',
      SENSORY_MAX_SAMPLE_BYTES: '0',
      SENSORY_HOST: 'localhost',
    });
    assert.equal(error.problems.length, 5);
    for (const variable of ['SENSORY_PORT', 'SENSORY_SHARD_SIZE', 'SENSORY_ORDER_TTL_SECONDS', 'SENSORY_AMQP_URL', 'SENSORY_MAX_SAMPLE_BYTES']) {
      assert.match(error.message, new RegExp(`\\b${variable}\\b`));
    }
    assert.doesNotMatch(error.message, /SENSORY_HOST/);
  });

  it('echoes a non-secret value to help, but never a secret one', () => {
    assert.match(configError({ SENSORY_PORT: 'abc' }).message, /abc/);
    const secrets: Array<[string, string, string[]]> = [
      ['SENSORY_API_KEYS', 'supersecretkey123:root', ['supersecretkey123', 'root']],
      ['SENSORY_API_KEYS', 'goodsecretkey456:admin;shh:read', ['goodsecretkey456', 'shh:']],
      ['SENSORY_API_KEYS', 'sekrit', ['sekrit']],
      ['SENSORY_DATABASE_URL', 'http://dbuser:hunter2@db.internal/sensory', ['hunter2', 'dbuser', 'db.internal']],
      ['SENSORY_DATABASE_URL', 'hunter2-not-a-url', ['hunter2']],
      ['SENSORY_AMQP_URL', 'foo-mqpassword', ['mqpassword']],
      ['SENSORY_AMQP_URL', 'http://mquser:mqpass99@mq/sensory', ['mqpass99', 'mquser']],
    ];
    for (const [variable, value, fragments] of secrets) {
      const error = configError({ [variable]: value });
      const text = `${error.message} ${error.problems.join(' ')} ${error.stack ?? ''}`;
      assert.match(error.message, new RegExp(`\\b${variable}\\b`));
      for (const fragment of [value, ...fragments]) assert.ok(!text.includes(fragment), `${variable}: ${JSON.stringify(fragment)} leaked in ${JSON.stringify(error.message)}`);
    }
  });

  it('never echoes secrets when several settings are invalid together', () => {
    const error = configError({
      SENSORY_API_KEYS: 'leakykey0001:boss',
      SENSORY_DATABASE_URL: 'mysql://root:toor@db/x',
      SENSORY_AMQP_URL: 'amqpish://guest:guestpw@mq',
      SENSORY_PORT: 'nope',
    });
    assert.equal(error.problems.length, 4);
    for (const fragment of ['leakykey0001', 'toor', 'guestpw']) assert.ok(!error.message.includes(fragment), error.message);
  });
});
