/**
 * `sensory import <base>` without --dataset, as a real process against a real server (embedded
 * shape): an original dicebox data dir `<base>/<name>_<W>x<H>/data/<category>/*.png` becomes one
 * dataset per folder, named as the folder, at its width and height with 3 channels; anything
 * else in <base> is ignored; a second run stores nothing; a base without any such folder is a
 * usage error (exit 2) naming the layout; and the legacy API then serves an imported dataset.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, runCli, sha256, startServer, stop, tempDir, within, type Run, type Server } from '../support/process.js';

const KEY = 'dicebox-import-admin-key-0123456789';
const LEGACY_HEADERS = { 'api-access-key': KEY, 'api-version': '0.3.0', 'content-type': 'application/json' };

/** What the dicebox folders hold: dataset → category → PNGs of various sizes and channel counts. */
interface Layout {
  readonly dataset: string;
  readonly width: number;
  readonly height: number;
  readonly files: Record<string, { width: number; height: number; channels: 1 | 3 | 4 }[]>;
}

const LAYOUTS: Layout[] = [
  {
    dataset: 'mnist_28x28',
    width: 28,
    height: 28,
    files: {
      // Grey 28×28 like the original MNIST PNGs, plus other sizes and channel counts.
      '0': [{ width: 28, height: 28, channels: 1 }, { width: 28, height: 28, channels: 1 }, { width: 20, height: 30, channels: 3 }, { width: 56, height: 56, channels: 4 }],
      '1': [{ width: 28, height: 28, channels: 1 }, { width: 14, height: 14, channels: 3 }, { width: 28, height: 28, channels: 3 }],
      '2': [{ width: 28, height: 28, channels: 1 }, { width: 40, height: 28, channels: 1 }, { width: 28, height: 28, channels: 3 }, { width: 7, height: 9, channels: 3 }, { width: 28, height: 28, channels: 4 }],
    },
  },
  {
    dataset: 'faces_16x12',
    width: 16,
    height: 12,
    files: {
      a: [{ width: 16, height: 12, channels: 3 }, { width: 32, height: 24, channels: 3 }, { width: 12, height: 16, channels: 1 }],
      b: [{ width: 16, height: 12, channels: 3 }, { width: 50, height: 10, channels: 4 }],
    },
  },
];

/** The last JSON lines of a command's stdout: one summary per dataset. */
function summaries(run: Run): any[] {
  return run
    .stdout()
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

describe('sensory import <dicebox data dir>: one dataset per <name>_<W>x<H>/data folder', () => {
  let workDir: string;
  let dataDir: string;
  let base: string;
  let server: Server;
  /** Dataset → sorted `<sha256> <category>` of every PNG written into its folder. */
  const expected = new Map<string, string[]>();

  async function cli(args: string[], env: Record<string, string> = {}): Promise<Run & { code: number | null }> {
    const run = runCli(args, { SENSORY_DATA_DIR: join(workDir, 'cli-data'), ...env });
    const { code } = await within(run.exit, 60_000, `sensory ${args.join(' ')}`);
    return { ...run, code };
  }

  async function get(path: string): Promise<any> {
    const reply = await call(server.url, KEY, 'GET', path);
    assert.equal(reply.status, 200, `${path}: ${reply.body.toString('utf8')}`);
    return reply.json();
  }

  async function pairs(dataset: string): Promise<string[]> {
    return (await get(`/v1/datasets/${dataset}/samples?limit=1000`)).samples.map((sample: { sha256: string; category: string }) => `${sample.sha256} ${sample.category}`).sort();
  }

  before(async () => {
    ensureBuilt();
    workDir = tempDir('sensory-dicebox-');
    dataDir = join(workDir, 'server-data');
    base = join(workDir, 'dicebox');
    let seed = 0;
    for (const layout of LAYOUTS) {
      const found: string[] = [];
      for (const [category, pngs] of Object.entries(layout.files)) {
        const dir = join(base, layout.dataset, 'data', category);
        mkdirSync(dir, { recursive: true });
        for (const [i, { width, height, channels }] of pngs.entries()) {
          const bytes = await makePng(width, height, channels, seed++);
          writeFileSync(join(dir, `${category}_${i}.png`), bytes);
          found.push(`${sha256(bytes)} ${category}`);
        }
      }
      expected.set(layout.dataset, found.sort());
      // What else a dicebox dataset folder holds beside data/ is not imported.
      writeFileSync(join(base, layout.dataset, 'README.txt'), 'dicebox dataset\n');
    }
    // Not <name>_<W>x<H>/data: ignored, images or not.
    mkdirSync(join(base, 'notes', 'data', 'x'), { recursive: true });
    writeFileSync(join(base, 'notes', 'todo.txt'), 'label more sevens\n');
    writeFileSync(join(base, 'notes', 'data', 'x', 'stray.png'), await makePng(8, 8, 3, 900));
    mkdirSync(join(base, 'old_8x8', 'models'), { recursive: true });
    writeFileSync(join(base, 'old_8x8', 'models', 'stray.png'), await makePng(8, 8, 3, 901));
    writeFileSync(join(base, 'loose_4x4'), 'a file, not a folder\n');

    server = await startServer(dataDir, { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_LOG_LEVEL: 'warn' });
  });

  after(async () => {
    await killAll();
    removeTempDirs();
  });

  test('imports every dataset folder at its shape; a second run stores nothing', { timeout: 90_000 }, async () => {
    const flags = ['--url', server.url, '--key', KEY];
    const first = await cli(['import', base, ...flags]);
    assert.equal(first.code, 0, first.stderr());
    assert.deepEqual(summaries(first), [
      { dataset: 'faces_16x12', stored: 5, duplicates: 0, rejected: 0 },
      { dataset: 'mnist_28x28', stored: 12, duplicates: 0, rejected: 0 },
    ]);

    const list = await get('/v1/datasets');
    const names = (list.datasets as { name: string }[]).map((dataset: { name: string }) => dataset.name).sort();
    assert.deepEqual(names, ['faces_16x12', 'mnist_28x28'], 'only the <name>_<W>x<H>/data folders became datasets');

    const revisions = new Map<string, number>();
    for (const layout of LAYOUTS) {
      const view = await get(`/v1/datasets/${layout.dataset}`);
      assert.deepEqual({ width: view.width, height: view.height, channels: view.channels }, { width: layout.width, height: layout.height, channels: 3 }, layout.dataset);
      const counts = Object.fromEntries(Object.entries(layout.files).map(([category, pngs]) => [category, pngs.length]));
      assert.equal(view.sampleCount, Object.values(counts).reduce((a, b) => a + b, 0));
      assert.deepEqual(
        Object.fromEntries(view.categories.map((category: { name: string; count: number }) => [category.name, category.count])),
        counts,
        `${layout.dataset} categories and counts`,
      );
      assert.deepEqual(
        view.categories.map((category: { index: number }) => category.index).sort((a: number, b: number) => a - b),
        Object.keys(counts).map((_, i) => i),
      );
      assert.deepEqual(await pairs(layout.dataset), expected.get(layout.dataset), `${layout.dataset}: every PNG, its original bytes, in its folder's category`);
      revisions.set(layout.dataset, view.revision);
    }

    // Served at the dataset's shape whatever the PNG's size: a batch of every sample.
    const batch = await call(server.url, KEY, 'POST', '/v1/datasets/faces_16x12/batches', { json: { size: 5, seed: 1 } });
    assert.equal(batch.status, 200, batch.body.toString());
    assert.deepEqual(batch.json().shape, [5, 12, 16, 3]);

    const again = await cli(['import', base, ...flags]);
    assert.equal(again.code, 0, again.stderr());
    assert.deepEqual(summaries(again), [
      { dataset: 'faces_16x12', stored: 0, duplicates: 5, rejected: 0 },
      { dataset: 'mnist_28x28', stored: 0, duplicates: 12, rejected: 0 },
    ]);
    for (const layout of LAYOUTS) {
      const view = await get(`/v1/datasets/${layout.dataset}`);
      assert.equal(view.revision, revisions.get(layout.dataset), `${layout.dataset}: revision unchanged`);
      assert.deepEqual(await pairs(layout.dataset), expected.get(layout.dataset));
    }
  });

  test('a base without any <name>_<W>x<H>/data folder, without --dataset: exit 2 with a usage message naming the layout', { timeout: 30_000 }, async () => {
    const empty = join(workDir, 'empty');
    mkdirSync(empty);
    const notDicebox = join(workDir, 'not-dicebox');
    mkdirSync(join(notDicebox, 'cats'), { recursive: true });
    writeFileSync(join(notDicebox, 'cats', 'a.png'), await makePng(8, 8, 3, 950));
    for (const dir of [empty, notDicebox, join(workDir, 'no-such-dir')]) {
      // No key either: the usage is checked first.
      const run = await cli(['import', dir, '--url', server.url]);
      assert.equal(run.code, 2, `import ${dir} → ${run.code}\n${run.stderr()}`);
      assert.match(run.stderr(), /<name>_<W>x<H>\/data\/<category>\/<file>/, 'names the dicebox layout');
      assert.match(run.stderr(), /--dataset NAME --width W --height H/, 'and the other way');
      assert.match(run.stderr(), /sensory import --help/);
    }
    const names = ((await get('/v1/datasets')).datasets as { name: string }[]).map((dataset) => dataset.name).sort();
    assert.deepEqual(names, ['faces_16x12', 'mnist_28x28'], 'nothing created');
  });

  test('SENSORY_LEGACY_DATASET=mnist_28x28: /api/sensory/request serves the imported dataset', { timeout: 60_000 }, async () => {
    const legacy = (url: string, path: string, body?: unknown) =>
      fetch(new URL(path, url), { method: body === undefined ? 'GET' : 'POST', headers: LEGACY_HEADERS, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });

    // Unset: 404 naming the variable.
    const unset = await legacy(server.url, '/api/sensory/request', { batch_size: 2, noise: 0 });
    assert.equal(unset.status, 404);
    assert.match(await unset.text(), /SENSORY_LEGACY_DATASET/);

    assert.deepEqual(await stop(server), { code: 0, signal: null });
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_LOG_LEVEL: 'warn', SENSORY_LEGACY_DATASET: 'mnist_28x28' });

    const map = (await get('/v1/datasets/mnist_28x28/categories')).map as Record<string, number>;
    const category = await legacy(server.url, '/api/sensory/category');
    assert.equal(category.status, 200);
    assert.deepEqual(await category.json(), { category_map: map });

    // Every sample of the dataset at noise 0, as /v1 renders it (28×28×3): the reference.
    const all = await call(server.url, KEY, 'POST', '/v1/datasets/mnist_28x28/batches', { json: { size: 12, seed: 5 } });
    assert.equal(all.status, 200, all.body.toString());
    const reference = all.json() as { labels: number[]; data: number[][][][] };
    const labelOf = new Map(reference.data.map((pixels, i) => [JSON.stringify(pixels), reference.labels[i]]));
    assert.equal(labelOf.size, 12, 'twelve distinct renders');

    const reply = await legacy(server.url, '/api/sensory/request', { batch_size: 6, noise: 0 });
    assert.equal(reply.status, 201);
    const body = (await reply.json()) as { labels: number[][]; data: number[][][][] };
    assert.deepEqual(Object.keys(body).sort(), ['data', 'labels']);
    assert.equal(body.labels.length, 6);
    assert.equal(body.data.length, 6);
    const seen = new Set<string>();
    body.data.forEach((pixels, i) => {
      assert.equal(pixels.length, 28);
      assert.equal(pixels[0].length, 28);
      assert.equal(pixels[0][0].length, 3);
      const key = JSON.stringify(pixels);
      assert.ok(labelOf.has(key), `legacy sample ${i} is one of mnist_28x28's samples at 28×28×3`);
      assert.deepEqual(body.labels[i], [labelOf.get(key)], `legacy sample ${i} carries its category index`);
      seen.add(key);
    });
    assert.equal(seen.size, 6, 'drawn without replacement');
    assert.ok(body.labels.every(([index]) => Object.values(map).includes(index)));

    // The legacy headers are required.
    const noVersion = await fetch(new URL('/api/sensory/request', server.url), {
      method: 'POST',
      headers: { 'api-access-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ batch_size: 1, noise: 0 }),
    });
    assert.equal(noVersion.status, 400);
  });
});
