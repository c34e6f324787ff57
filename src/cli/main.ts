#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type Config } from '../config/config.js';
import { SensoryApiError, SensoryClient, SensoryConnectionError } from '@sensory/client';
import { exportDataset, exportJob, type ExportJobOptions } from './export.command.js';
import { findDiceboxDatasets, importTree, type ImportOptions } from './import.command.js';
import { resolveKey } from './key.js';
import { serve, work } from './serve.command.js';

const USAGE = `usage:
  sensory serve [--host H] [--port P] [--data-dir D] [--<setting> V …]
  sensory worker [--concurrency N] [--<setting> V …]
  sensory import <dir> --dataset NAME --width W --height H [--channels 1|3] [--url URL] [--key KEY] [--concurrency N]
  sensory import <dicebox data dir> [--channels 1|3] [--url URL] [--key KEY]   (one dataset per <name>_<W>x<H>/data)
  sensory export NAME <dir> [--url URL] [--key KEY]   (originals as <dir>/<category>/<sha256>.<ext>, for import)
  sensory export NAME --format webdataset|imagefolder|safetensors [--out DIR] [--shard-size N] [--revision R]
                 [--split train|test|all] [--categories a,b] [--job ID] [--url URL] [--key KEY]
                 (an export job on the service, then its files downloaded into DIR, default ./NAME-FORMAT)
  sensory compact [--retention-seconds N] [--min-garbage-share X] [--url URL] [--key KEY]   (admin key)

Every SENSORY_* setting has a flag: SENSORY_MAX_SAMPLE_BYTES is --max-sample-bytes.
import, export and compact talk to a running service (default http://SENSORY_HOST:SENSORY_PORT); the key
comes from --key, SENSORY_API_KEY or <data dir>/api-key.`;

/** SENSORY_MAX_SAMPLE_BYTES → max-sample-bytes */
const flagOf = (variable: string) => variable.replace(/^SENSORY_/, '').toLowerCase().replaceAll('_', '-');

const SETTING_FLAGS = Object.fromEntries(CONFIG_VARIABLES.map(({ variable }) => [flagOf(variable), { type: 'string' as const }]));

function configFrom(values: Record<string, unknown>): Config {
  const overrides: Record<string, string | undefined> = {};
  for (const { variable } of CONFIG_VARIABLES) overrides[variable] = values[flagOf(variable)] as string | undefined;
  return loadConfig(process.env, overrides);
}

function wholeNumber(name: string, raw: unknown, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || value < 1) throw new UsageError(`--${name} must be a whole number above 0`);
  return value;
}

class UsageError extends Error {}

/** The purge's retention and the segments' garbage share, when given (else the service's defaults). */
function compactionRequest(values: Record<string, unknown>): { retentionSeconds?: number; minGarbageShare?: number } {
  const request: { retentionSeconds?: number; minGarbageShare?: number } = {};
  const retention = values['retention-seconds'];
  if (retention !== undefined) {
    if (typeof retention !== 'string' || !/^\d+$/.test(retention)) throw new UsageError('--retention-seconds must be a whole number of 0 or more');
    request.retentionSeconds = Number(retention);
  }
  const share = values['min-garbage-share'];
  if (share !== undefined) {
    const value = Number(share);
    if (typeof share !== 'string' || share.trim() === '' || !(value >= 0 && value <= 1)) throw new UsageError('--min-garbage-share must be a number from 0 to 1');
    request.minGarbageShare = value;
  }
  return request;
}

const EXPORT_FORMATS = ['webdataset', 'imagefolder', 'safetensors'] as const;

/** The flags of an export job, checked before anything is sent. */
function exportJobOptions(dataset: string, values: Record<string, unknown>): ExportJobOptions {
  const format = values.format as string;
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  const split = values.split as string | undefined;
  if (split !== undefined && !['train', 'test', 'all'].includes(split)) throw new UsageError('--split must be train, test or all');
  const revision = values.revision as string | undefined;
  if (revision !== undefined && !/^\d+$/.test(revision)) throw new UsageError('--revision must be a whole number of 0 or more');
  const categories = values.categories as string | undefined;
  const list = categories?.split(',').map((name) => name.trim()).filter(Boolean);
  if (categories !== undefined && list!.length === 0) throw new UsageError('--categories must name at least one category (a,b,c)');
  return {
    format: format as ExportJobOptions['format'],
    out: (values.out as string | undefined) ?? `${dataset}-${format}`,
    ...(values['shard-size'] !== undefined ? { shardSize: wholeNumber('shard-size', values['shard-size']) } : {}),
    ...(revision !== undefined ? { revision: Number(revision) } : {}),
    ...(split !== undefined ? { split: split as 'train' | 'test' | 'all' } : {}),
    ...(list ? { categories: list } : {}),
    ...(values.job !== undefined ? { job: values.job as string } : {}),
  };
}

async function client(values: Record<string, unknown>, config: Config): Promise<SensoryClient> {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = (values.url as string | undefined) ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
  return new SensoryClient({ url, key: await resolveKey(values.key as string | undefined, process.env, config.dataDir) });
}

/** Runs a command with a client, closing its connections afterwards. */
async function withClient<T>(values: Record<string, unknown>, config: Config, run: (client: SensoryClient) => Promise<T>): Promise<T> {
  const api = await client(values, config);
  try {
    return await run(api);
  } finally {
    api.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...SETTING_FLAGS,
      dataset: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      channels: { type: 'string' },
      url: { type: 'string' },
      key: { type: 'string' },
      concurrency: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      'shard-size': { type: 'string' },
      revision: { type: 'string' },
      split: { type: 'string' },
      categories: { type: 'string' },
      job: { type: 'string' },
      'retention-seconds': { type: 'string' },
      'min-garbage-share': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  // An export job's --shard-size is its own (samples per file), not SENSORY_SHARD_SIZE of orders.
  const config = configFrom(command === 'export' ? { ...values, 'shard-size': undefined } : values);
  switch (command) {
    case 'serve':
      await serve(config);
      return -1;
    case 'worker':
      await work(config, wholeNumber('concurrency', values.concurrency, 2));
      return -1;
    case 'import': {
      if (positionals.length !== 1) throw new UsageError('import needs <dir>');
      const channels = wholeNumber('channels', values.channels, 3);
      if (channels !== 1 && channels !== 3) throw new UsageError('--channels must be 1 or 3');
      const concurrency = wholeNumber('concurrency', values.concurrency, 2);
      // Every flag is checked before the key is looked up: a usage mistake is reported as one.
      let trees: ImportOptions[];
      if (values.dataset !== undefined) {
        trees = [{ dir: positionals[0], dataset: values.dataset as string, width: wholeNumber('width', values.width), height: wholeNumber('height', values.height), channels, concurrency }];
      } else {
        const found = await findDiceboxDatasets(positionals[0]).catch(() => []);
        if (found.length === 0) {
          throw new UsageError('import needs --dataset NAME --width W --height H, or a dicebox data dir holding <name>_<W>x<H>/data/<category>/<file>');
        }
        trees = found.map((tree) => ({ ...tree, channels, concurrency }));
      }
      let rejectedCount = 0;
      await withClient(values, config, async (api) => {
        for (const tree of trees) {
          const report = await importTree(api, tree);
          for (const rejected of report.rejected) process.stderr.write(`rejected ${rejected.path}: ${rejected.message}\n`);
          rejectedCount += report.rejected.length;
          const summary = { stored: report.stored, duplicates: report.duplicates, rejected: report.rejected.length };
          process.stdout.write(`${JSON.stringify(trees.length > 1 || values.dataset === undefined ? { dataset: tree.dataset, ...summary } : summary)}\n`);
        }
      });
      return rejectedCount === 0 ? 0 : 1;
    }
    case 'export': {
      if (values.format !== undefined) {
        if (positionals.length !== 1) throw new UsageError('export --format takes NAME only (the files go to --out DIR)');
        const options = exportJobOptions(positionals[0], values);
        const result = await withClient(values, config, (api) => exportJob(api, positionals[0], options));
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return 0;
      }
      if (positionals.length !== 2) throw new UsageError('export needs NAME and <dir>, or NAME --format FORMAT');
      const result = await withClient(values, config, (api) => exportDataset(api, positionals[0], positionals[1]));
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    case 'compact': {
      if (positionals.length !== 0) throw new UsageError('compact takes no arguments');
      const request = compactionRequest(values);
      const result = await withClient(values, config, (api) => api.compact(request));
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`sensory: ${error.message}\n`);
    } else if (error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`sensory: ${(error as Error).message}\n${USAGE}\n`);
    } else if (error instanceof SensoryApiError) {
      process.stderr.write(`sensory: the service answered ${error.status} ${error.code}: ${error.message}\n`);
    } else if (error instanceof SensoryConnectionError) {
      process.stderr.write(`sensory: could not talk to the service: ${error.message}\n`);
    } else {
      process.stderr.write(`sensory: ${(error as Error).message ?? String(error)}\n`);
    }
    process.exitCode = 2;
  },
);
