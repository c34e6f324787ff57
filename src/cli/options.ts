import { InvalidArgumentError, Option, type Command } from 'commander';
import { SensoryClient } from '@sensory/client';
import { CONFIG_VARIABLES, loadConfig, type Config } from '../config/config.js';
import { resolveKey } from './key.js';

/** A wrong argument found by a command itself (after commander parsed them): exit 2, like commander's own. */
export class UsageError extends Error {}

/** SENSORY_MAX_SAMPLE_BYTES → max-sample-bytes */
export const flagOf = (variable: string): string => variable.replace(/^SENSORY_/, '').toLowerCase().replaceAll('_', '-');

/** commander's property name of a flag: max-sample-bytes → maxSampleBytes */
const propertyOf = (flag: string): string => flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());

/**
 * Every SENSORY_* setting as a flag of `command`, read as text and checked by the configuration
 * (so a bad value is reported exactly as the variable's would be). `shown` lists them in the
 * command's help; otherwise they are accepted but not listed. `except`: flags the command gives
 * a meaning of its own.
 */
export function addSettingFlags(command: Command, shown: boolean, except: readonly string[] = []): Command {
  for (const { variable, fallback } of CONFIG_VARIABLES) {
    if (except.includes(flagOf(variable))) continue;
    const option = new Option(`--${flagOf(variable)} <value>`, `${variable}${fallback === undefined ? '' : ` (default ${String(fallback)})`}`);
    command.addOption(shown ? option : option.hideHelp());
  }
  return command;
}

/** The configuration from the environment, overridden by the setting flags given. */
export function configFrom(options: Record<string, unknown>): Config {
  const overrides: Record<string, string | undefined> = {};
  for (const { variable } of CONFIG_VARIABLES) overrides[variable] = options[propertyOf(flagOf(variable))] as string | undefined;
  return loadConfig(process.env, overrides);
}

/** An argParser: a whole number from `min` to `max`. */
export const wholeNumber =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `must be a whole number of ${min} or more; got "${raw}"` : `must be a whole number from ${min} to ${max}; got "${raw}"`);
    }
    return value;
  };

/** An argParser: one of `choices` (numbers compared as text). */
export const oneOf =
  <T extends string | number>(choices: readonly T[]) =>
  (raw: string): T => {
    const found = choices.find((choice) => String(choice) === raw);
    if (found === undefined) throw new InvalidArgumentError(`must be one of ${choices.join(', ')}; got "${raw}"`);
    return found;
  };

/** An argParser: a number from 0 to 1. */
export const share = (raw: string): number => {
  const value = Number(raw);
  if (raw.trim() === '' || !(value >= 0 && value <= 1)) throw new InvalidArgumentError(`must be a number from 0 to 1; got "${raw}"`);
  return value;
};

/** --url and --key, for the commands that talk to a running service. */
export function addClientFlags(command: Command): Command {
  return command
    .option('--url <url>', 'the service (default http://SENSORY_HOST:SENSORY_PORT)')
    .option('--key <key>', 'an API key (default SENSORY_API_KEY, else <data dir>/api-key)');
}

async function client(options: { url?: string; key?: string }, config: Config): Promise<SensoryClient> {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = options.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
  return new SensoryClient({ url, key: await resolveKey(options.key, process.env, config.dataDir) });
}

/** Runs `run` with a client of the service, closing its connections afterwards. */
export async function withClient<T>(options: { url?: string; key?: string }, config: Config, run: (client: SensoryClient) => Promise<T>): Promise<T> {
  const api = await client(options, config);
  try {
    return await run(api);
  } finally {
    api.close();
  }
}
