#!/usr/bin/env node
import { CommanderError } from 'commander';
import { SensoryApiError, SensoryConnectionError } from '@sensory/client';
import { ConfigError } from '../config/config.js';
import { buildProgram } from './program.js';

/**
 * Exit codes: 0 done; 1 the command ran and failed (a rejected file, an error from the service,
 * no connection); 2 wrong usage or configuration, reported before anything was changed.
 */
buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof CommanderError) {
      // commander has printed the message (or the help, or the version) already.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`sensory: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof SensoryApiError) {
      process.stderr.write(`sensory: the service answered ${error.status} ${error.code}: ${error.message}\n`);
    } else if (error instanceof SensoryConnectionError) {
      process.stderr.write(`sensory: could not talk to the service: ${error.message}\n`);
    } else {
      process.stderr.write(`sensory: ${(error as Error).message ?? String(error)}\n`);
    }
    process.exitCode = 1;
  });
