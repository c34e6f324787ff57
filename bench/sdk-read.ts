/**
 * Figure 10's TypeScript SDK reader, run as a process of its own (like the Python client) so that
 * its CPU is the client's alone: `node --import tsx bench/sdk-read.ts URL KEY BATCH ROUNDS [MODE]`
 * reads one batch of dataset `small` ROUNDS times after a warm-up and prints one JSON line: per
 * read, the wall time, the bytes and the process's CPU (user + sys). MODE `reuse` (the default,
 * as the Python client's reuse=True) reads into the client's own buffer; `fresh` gives every
 * batch memory of its own.
 */
// The build of this checkout (`npm run build`), not whatever `@sensory/client` resolves to: in a
// git worktree whose node_modules links to another checkout's, that would be the other's build.
import { SensoryClient } from '../packages/client/dist/index.js';

const [url, key, batchArg, roundsArg, mode = 'reuse'] = process.argv.slice(2);
if (mode !== 'reuse' && mode !== 'fresh') throw new Error(`MODE must be reuse or fresh, not ${mode}`);
const batch = Number(batchArg);
const rounds = Number(roundsArg);
const sdk = new SensoryClient({ url, key });
const read = () => sdk.batch('small', { size: batch, seed: 1 }, { reuse: mode === 'reuse' });
await read();
const walls: number[] = [];
const cpus: number[] = [];
let bytes = 0;
for (let i = 0; i < rounds; i++) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await read();
  walls.push((performance.now() - started) / 1000);
  const used = process.cpuUsage(cpu);
  cpus.push((used.user + used.system) / 1e6);
  if (result.ids.length !== batch) throw new Error(`read ${result.ids.length} samples, not ${batch}`);
  bytes = result.data.byteLength + result.labels.byteLength;
}
sdk.close();
process.stdout.write(`${JSON.stringify({ walls, cpus, tensorBytes: bytes })}\n`);
