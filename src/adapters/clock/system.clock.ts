import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../ports/clock.js';

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => (signal ? sleep(ms, undefined, { signal }).catch(() => undefined) : sleep(ms)),
};
