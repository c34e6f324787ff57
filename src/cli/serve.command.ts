import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Config } from '../config/config.js';
import { buildApp } from '../http/app.js';
import { requestSerializer } from '../http/log-redaction.js';
import { openCoreRuntime } from '../runtime/core.runtime.js';
import type { CoreRuntime } from '../runtime/core.runtime.js';
import { openServeRuntime } from '../runtime/serve.runtime.js';
import { DependencyWatch, type WatchLog } from '../services/dependency-watch.js';

const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers["api-access-key"]'];
/** Shards the embedded shape's in-process worker fulfils at once. */
const EMBEDDED_WORKER_CONCURRENCY = 2;

/**
 * Runs the API until SIGTERM or SIGINT, then shuts down in order: stop accepting, let in-flight
 * requests finish, finish in-flight shards, close the queue and the stores. A second signal
 * exits at once. Without SENSORY_AMQP_URL it also runs the in-process shard worker.
 */
export async function serve(config: Config): Promise<void> {
  // Keys never reach the log: not in headers (redacted), nor in a URL's query (redacted, and refused).
  // Lines are buffered and written in 4 KiB chunks off the request path: a synchronous write per
  // line cost about a tenth of an upload's CPU. Flushed at shutdown; a crash may lose the last few.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const logger = pino({ level: config.logLevel, redact: REDACTED_HEADERS, serializers: { req: requestSerializer } }, destination);
  setInterval(() => destination.flush(), 1000).unref();
  const runtime = await openServeRuntime(config, (message) => logger.warn(message));
  const watch = watchDependencies(runtime, logger);
  const app = await buildApp(runtime.deps, logger);
  if (runtime.queue.kind === 'memory') await runtime.startWorker(EMBEDDED_WORKER_CONCURRENCY);
  runtime.dispatcher.start();
  await app.listen({ host: config.host, port: config.port });
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const lines = [
    `Sensory ${runtime.deps.version} listening on http://${host}:${port} (API docs at /docs)`,
    `data dir: ${config.dataDir}; queue: ${runtime.queue.kind === 'memory' ? 'in-process, with an in-process worker' : 'RabbitMQ (run sensory worker)'}`,
  ];
  if (runtime.keyFile?.newKey) {
    lines.push(`admin API key (shown once, kept in ${runtime.keyFile.path}): ${runtime.keyFile.newKey}`);
  } else if (runtime.keyFile) {
    lines.push(`admin API key: in ${runtime.keyFile.path}`);
  } else {
    lines.push('API keys: from SENSORY_API_KEYS');
  }
  process.stderr.write(`${lines.join('\n')}\n`);

  onShutdown(async () => {
    app.log.info('shutting down');
    watch.stop();
    const results = await Promise.allSettled([app.close()]);
    await runtime.close();
    destination.flushSync();
    return results.every((result) => result.status === 'fulfilled');
  });
}

/** The shard worker of the production shape, on RabbitMQ. */
export async function work(config: Config, concurrency: number): Promise<void> {
  if (config.amqpUrl === undefined) {
    throw new Error('sensory worker needs SENSORY_AMQP_URL: without RabbitMQ, sensory serve runs its own in-process worker');
  }
  const logger = pino({ level: config.logLevel });
  // Only the stores, the queue and the order services: no HTTP layer, no metrics to export.
  const runtime = await openCoreRuntime(config, { log: (message) => logger.warn(message) });
  const watch = watchDependencies(runtime, logger);
  await runtime.startWorker(concurrency);
  process.stderr.write(`Sensory worker: ${concurrency} shard(s) at a time from ${config.amqpTaskQueue}\n`);
  onShutdown(async () => {
    logger.info('worker shutting down');
    watch.stop();
    await runtime.close();
    return true;
  });
}

/** Logs when the database, and the broker when there is one, stop answering and come back. */
function watchDependencies(runtime: CoreRuntime, log: WatchLog): DependencyWatch {
  const dependencies = [{ name: 'database', ping: () => runtime.store.ping() }];
  if (runtime.queue.kind === 'amqp') dependencies.push({ name: 'broker', ping: () => runtime.queue.ping() });
  const watch = new DependencyWatch(dependencies, log);
  watch.start();
  return watch;
}

function onShutdown(stop: () => Promise<boolean>): void {
  let stopping = false;
  const handle = () => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      (clean) => process.exit(clean ? 0 : 1),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
