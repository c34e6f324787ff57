import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.js';
import { buildApp } from '../http/app.js';
import { openRuntime } from '../runtime/runtime.js';

const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers["api-access-key"]'];

/**
 * Runs the API until SIGTERM or SIGINT, then shuts down in order: stop accepting, let in-flight
 * requests finish, close the stores. A second signal exits at once.
 */
export async function serve(config: Config): Promise<void> {
  const runtime = await openRuntime(config);
  const app = await buildApp(runtime.deps, { level: config.logLevel, redact: REDACTED_HEADERS });
  await app.listen({ host: config.host, port: config.port });
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const lines = [`Sensory ${runtime.deps.version} listening on http://${host}:${port} (API docs at /docs)`, `data dir: ${config.dataDir}`];
  if (runtime.keyFile?.newKey) {
    lines.push(`admin API key (shown once, kept in ${runtime.keyFile.path}): ${runtime.keyFile.newKey}`);
  } else if (runtime.keyFile) {
    lines.push(`admin API key: in ${runtime.keyFile.path}`);
  } else {
    lines.push('API keys: from SENSORY_API_KEYS');
  }
  process.stderr.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    const results = await Promise.allSettled([app.close()]);
    await runtime.close();
    process.exit(results.every((result) => result.status === 'fulfilled') ? 0 : 1);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
