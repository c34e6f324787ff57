/**
 * The top entries of a V8 CPU profile (`node --cpu-prof`), by self time, within the window where
 * a function ran: from the first to the last sample whose stack holds `--within <name>` (e.g.
 * safetensorsChunks for the small batches of figure 1, so uploads made before are left out).
 *
 *   node --import tsx bench/profile-top.ts bench/out/prof/<file>.cpuprofile --within safetensorsChunks --top 25
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args[0];
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
if (!file) throw new Error('usage: profile-top.ts <file.cpuprofile> [--within functionName] [--top N]');
const within = option('--within');
const top = Number(option('--top') ?? 25);

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const stackHas = (id: number, name: string) => {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (byId.get(at)!.callFrame.functionName === name) return true;
  return false;
};

const times: number[] = [];
let t = 0;
for (const delta of profile.timeDeltas) times.push((t += delta));
let first = 0;
let last = profile.samples.length - 1;
if (within) {
  const hits = profile.samples.map((id, i) => (stackHas(id, within) ? i : -1)).filter((i) => i >= 0);
  if (hits.length === 0) throw new Error(`no sample has ${within} on its stack`);
  first = hits[0];
  last = hits.at(-1)!;
}
const self = new Map<string, number>();
let total = 0;
for (let i = first; i <= last; i++) {
  const node = byId.get(profile.samples[i])!;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') continue;
  const interval = (times[i + 1] ?? times[i]) - times[i];
  const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + interval);
  total += interval;
}
const windowMs = (times[last] - times[first]) / 1000;
process.stdout.write(`${file}: ${within ? `window of ${within}, ` : ''}${fixedMs(windowMs)} ms wall, ${fixedMs(total / 1000)} ms busy on the main thread\n`);
for (const [key, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(`${fixedMs(us / 1000).padStart(9)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${key}\n`);
}

function fixedMs(ms: number): string {
  return ms.toFixed(1);
}
