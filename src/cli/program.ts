import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { MAX_TEST_PERCENT } from '../domain/dataset-shape.js';
import { exportDataset, exportJob, type ExportJobOptions } from './export.command.js';
import { CATEGORY_RULES, findDiceboxDatasets, sourceAt, treeSource, type CategoryRule, type ImportSource } from './import-sources.js';
import { MissingShapeError, importSource, surveySource, type ImportTarget, type SourceSurvey } from './import.command.js';
import { UsageError, addClientFlags, addSettingFlags, configFrom, oneOf, share, wholeNumber, withClient } from './options.js';
import { serve, work } from './serve.command.js';

const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/**
 * Runs an action; a UsageError it throws is reported as commander reports its own (the message,
 * then how to get the command's help) with exit code 2.
 */
function action<A extends unknown[]>(command: Command, run: (...args: A) => Promise<void>): Command {
  return command.action(async (...args: unknown[]) => {
    try {
      await run(...(args as A));
    } catch (error) {
      if (error instanceof UsageError || error instanceof MissingShapeError) command.error(`error: ${error.message}`, { exitCode: 2, code: 'sensory.usage' });
      throw error;
    }
  });
}

interface ImportFlags {
  dataset?: string;
  width?: number;
  height?: number;
  channels?: 1 | 3;
  testPercent?: number;
  categoryFrom: CategoryRule;
  concurrency: number;
  url?: string;
  key?: string;
}

interface ImportPlan {
  readonly source: ImportSource;
  readonly target: ImportTarget;
}

/** The imports a source argument stands for: a tree or an archive into --dataset, or each dataset of a dicebox data dir. */
async function importPlans(path: string, flags: ImportFlags): Promise<ImportPlan[]> {
  const shape = { width: flags.width, height: flags.height, channels: flags.channels, testPercent: flags.testPercent };
  if (flags.dataset !== undefined) {
    const source = await sourceAt(path, flags.categoryFrom).catch((error: Error) => {
      throw new UsageError(error.message);
    });
    return [{ source, target: { dataset: flags.dataset, ...shape } }];
  }
  if (flags.width !== undefined || flags.height !== undefined) throw new UsageError('--width and --height need --dataset NAME');
  const found = await findDiceboxDatasets(path).catch(() => []);
  if (found.length === 0) {
    throw new UsageError(
      `import ${path} needs --dataset NAME --width W --height H (width and height only to create the dataset), or a dicebox data dir holding <name>_<W>x<H>/data/<category>/<file>`,
    );
  }
  return found.map((tree) => ({ source: treeSource(tree.dir, flags.categoryFrom), target: { ...shape, dataset: tree.dataset, width: tree.width, height: tree.height } }));
}

function importCommand(program: Command): void {
  const command = program
    .command('import')
    .showHelpAfterError('(sensory import --help shows its usage)')
    .summary('import a folder tree, a tar archive, or a dicebox data dir')
    .description(
      'Imports images into a dataset, creating it when it does not exist. Each file\'s category is the name of a folder above it:\n' +
        '--category-from leaf (default) takes the folder the file is in, top the first folder under <source>.\n' +
        'Categories new to the dataset get their indices in sorted name order. Running an import again stores nothing twice.\n' +
        'A dataset the import created is removed again when the import fails or stores nothing.\n' +
        'Without --dataset, <source> is a dicebox data dir: each <name>_<W>x<H>/data tree becomes the dataset <name>_<W>x<H>.',
    )
    .argument('<source>', 'a folder of <category>/<file>, a tar (or .tar.gz) laid out the same way, or a dicebox data dir')
    .option('--dataset <name>', 'the dataset to import into')
    .addOption(new Option('--width <pixels>', 'the dataset\'s width (needed to create it)').argParser(wholeNumber(1)))
    .addOption(new Option('--height <pixels>', 'the dataset\'s height (needed to create it)').argParser(wholeNumber(1)))
    .addOption(new Option('--channels <n>', 'channels of a new dataset: 1 or 3 (default 3, or the existing dataset\'s)').argParser(oneOf([1, 3] as const)))
    .addOption(
      new Option('--test-percent <p>', `share of samples in the test split, 0 to ${MAX_TEST_PERCENT} (default 0, or the existing dataset's)`).argParser(
        wholeNumber(0, MAX_TEST_PERCENT),
      ),
    )
    .addOption(new Option('--category-from <rule>', 'which folder names a category when folders nest').choices(CATEGORY_RULES).default('leaf'))
    .addOption(new Option('--concurrency <n>', 'bulk requests in flight at once').argParser(wholeNumber(1, 64)).default(2));
  addClientFlags(command);
  addSettingFlags(command, false);
  action(command, async (path: string, flags: ImportFlags) => {
    // Every argument is checked, and the source read, before the key is looked up or the service asked.
    const plans = await importPlans(path, flags);
    const surveys: SourceSurvey[] = [];
    for (const plan of plans) {
      const survey = await surveySource(plan.source).catch((error: Error) => {
        throw new UsageError(error.message);
      });
      if (survey.files === 0) throw new UsageError(`${plan.source.description} holds no files to import`);
      surveys.push(survey);
    }
    const config = configFrom(flags as unknown as Record<string, unknown>);
    let rejected = 0;
    await withClient(flags, config, async (api) => {
      for (const [i, plan] of plans.entries()) {
        const report = await importSource(api, plan.source, surveys[i], plan.target, { concurrency: flags.concurrency });
        for (const item of report.rejected) process.stderr.write(`rejected ${item.path}: ${item.message}\n`);
        if (report.removedDataset) process.stderr.write(`removed dataset ${plan.target.dataset}: this import created it and stored nothing\n`);
        rejected += report.rejected.length;
        const summary = { stored: report.stored, duplicates: report.duplicates, rejected: report.rejected.length };
        process.stdout.write(`${JSON.stringify(flags.dataset === undefined ? { dataset: plan.target.dataset, ...summary } : summary)}\n`);
      }
    });
    if (rejected > 0) process.exitCode = 1;
  });
}

const EXPORT_FORMATS = ['webdataset', 'imagefolder', 'safetensors'] as const;

interface ExportFlags {
  format?: ExportJobOptions['format'];
  out?: string;
  shardSize?: number;
  revision?: number;
  split?: 'train' | 'test' | 'all';
  categories?: string;
  job?: string;
  url?: string;
  key?: string;
}

/** The flags of an export job, checked before anything is sent. */
function exportJobOptions(dataset: string, format: ExportJobOptions['format'], flags: ExportFlags): ExportJobOptions {
  const list = flags.categories?.split(',').map((name) => name.trim()).filter(Boolean);
  if (flags.categories !== undefined && list!.length === 0) throw new UsageError('--categories must name at least one category (a,b,c)');
  return {
    format,
    out: flags.out ?? `${dataset}-${format}`,
    ...(flags.shardSize !== undefined ? { shardSize: flags.shardSize } : {}),
    ...(flags.revision !== undefined ? { revision: flags.revision } : {}),
    ...(flags.split !== undefined ? { split: flags.split } : {}),
    ...(list ? { categories: list } : {}),
    ...(flags.job !== undefined ? { job: flags.job } : {}),
  };
}

function exportCommand(program: Command): void {
  const command = program
    .command('export')
    .showHelpAfterError('(sensory export --help shows its usage)')
    .summary('write a dataset out as files, or run an export job (--format)')
    .description(
      'Without --format: writes every live sample\'s original bytes to <dir>/<category>/<sha256>.<ext>. Files are named by content: exporting again rewrites nothing, and the folder imports back as the same dataset.\n' +
        'With --format: runs an export job on the service (WebDataset shards, one ImageFolder tar, or safetensors shards), then downloads its files into --out (resumed where a download stopped).',
    )
    .argument('<dataset>', 'the dataset to export')
    .argument('[dir]', 'without --format: the folder to write (created when missing)')
    .addOption(new Option('--format <format>', 'run an export job in this format').argParser(oneOf(EXPORT_FORMATS)))
    .option('--out <dir>', 'with --format: where the job\'s files go (default ./<dataset>-<format>)')
    .addOption(new Option('--shard-size <n>', 'with --format: samples per shard').argParser(wholeNumber(1)))
    .addOption(new Option('--revision <r>', 'with --format: the revision to export (default the current one)').argParser(wholeNumber(0)))
    .addOption(new Option('--split <split>', 'with --format: train, test or all').argParser(oneOf(['train', 'test', 'all'] as const)))
    .option('--categories <a,b>', 'with --format: only these categories')
    .option('--job <id>', 'with --format: wait for and download a job started before, instead of starting one');
  addClientFlags(command);
  // --shard-size is the export's samples per file here, not SENSORY_SHARD_SIZE.
  addSettingFlags(command, false, ['shard-size']);
  action(command, async (dataset: string, dir: string | undefined, flags: ExportFlags) => {
    const config = configFrom({ ...flags, shardSize: undefined });
    if (flags.format !== undefined) {
      if (dir !== undefined) throw new UsageError('export --format takes the dataset only (the files go to --out DIR)');
      const options = exportJobOptions(dataset, flags.format, flags);
      const result = await withClient(flags, config, (api) => exportJob(api, dataset, options));
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    if (dir === undefined) throw new UsageError('export needs <dataset> and <dir>, or <dataset> --format FORMAT');
    const result = await withClient(flags, config, (api) => exportDataset(api, dataset, dir));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}

function compactCommand(program: Command): void {
  const command = program
    .command('compact')
    .showHelpAfterError('(sensory compact --help shows its usage)')
    .summary('purge deleted samples and rewrite segment files (admin key)')
    .description('Purges samples deleted longer ago than the retention, then rewrites segment files whose garbage share is at least the given one. Needs an admin key.')
    .addOption(new Option('--retention-seconds <n>', 'purge samples deleted at least this long ago (default SENSORY_PURGE_RETENTION_SECONDS of the service)').argParser(wholeNumber(0)))
    .addOption(new Option('--min-garbage-share <x>', 'rewrite a segment when at least this share of it is garbage, 0 to 1').argParser(share));
  addClientFlags(command);
  addSettingFlags(command, false);
  action(command, async (flags: { retentionSeconds?: number; minGarbageShare?: number; url?: string; key?: string }) => {
    const config = configFrom(flags);
    const request = { retentionSeconds: flags.retentionSeconds, minGarbageShare: flags.minGarbageShare };
    const result = await withClient(flags, config, (api) => api.compact(request));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}

function serveCommand(program: Command): void {
  const command = program
    .command('serve')
    .showHelpAfterError('(sensory serve --help shows its usage)')
    .summary('run the API (and, without SENSORY_AMQP_URL, the shard worker in-process)')
    .description('Runs the API until SIGTERM or SIGINT. Every setting is read from its SENSORY_* variable; a flag overrides it.');
  addSettingFlags(command, true);
  action(command, async (flags: Record<string, unknown>) => serve(configFrom(flags)));
}

function workerCommand(program: Command): void {
  const command = program
    .command('worker')
    .showHelpAfterError('(sensory worker --help shows its usage)')
    .summary('run a shard worker on RabbitMQ (needs SENSORY_AMQP_URL)')
    .description('Fulfils the shards of batch orders from the task queue until SIGTERM or SIGINT.')
    .addOption(new Option('--concurrency <n>', 'shards fulfilled at once').argParser(wholeNumber(1, 256)).default(2));
  addSettingFlags(command, true);
  action(command, async (flags: Record<string, unknown> & { concurrency: number }) => work(configFrom(flags), flags.concurrency));
}

/** The `sensory` command line: one subcommand per job, each with its own --help. */
export function buildProgram(): Command {
  const program = new Command('sensory')
    .description('Sensory: labeled training samples stored durably, served as training batches.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show the help of sensory or of a command')
    .showHelpAfterError('(sensory --help lists the commands)')
    .exitOverride()
    .addHelpText(
      'after',
      '\nEvery SENSORY_* setting has a flag: SENSORY_MAX_SAMPLE_BYTES is --max-sample-bytes.\n' +
        'import, export and compact talk to a running service; the key comes from --key, SENSORY_API_KEY or <data dir>/api-key.\n' +
        'Run sensory <command> --help for a command\'s options.',
    );
  serveCommand(program);
  workerCommand(program);
  importCommand(program);
  exportCommand(program);
  compactCommand(program);
  return program;
}
