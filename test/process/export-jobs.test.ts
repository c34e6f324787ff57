/**
 * Export jobs with real processes: `sensory export --format` against a running `sensory serve`
 * (the ImageFolder tar imported back with `sensory import`: same pixels, same labels), and a job
 * surviving a SIGKILL of its process (the restarted process takes it once its lease ran out and
 * finishes it after the files already written).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pack } from 'tar-stream';
import { makePng } from '../support/harness.js';
import { READ_WEBDATASET, python } from '../support/python.js';
import { AMQP_URL, brokerSkip, cleanBroker, uniqueAmqpNames } from '../support/broker.js';
import { dropSchemas, postgresSkip, uniqueSchema, useSchema } from '../support/postgres.js';
import { call, ensureBuilt, killAll, removeTempDirs, runCli, sha256, sleep, startServer, startWorker, stop, tempDir, within, type Server } from '../support/process.js';

const KEY = 'export-jobs-key-0123456789';
const ENV = { SENSORY_API_KEYS: `${KEY}:admin`, SENSORY_EXPORT_LEASE_MS: '1500' };
const CATEGORIES = ['zero', 'one', 'two', 'three'];

before(() => ensureBuilt());
after(async () => {
  await killAll();
  removeTempDirs();
});

async function tarOf(files: { name: string; data: Buffer }[]): Promise<Buffer> {
  const archive = pack();
  for (const file of files) archive.entry({ name: file.name }, file.data);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A dataset of `count` PNGs of w×h, imported as one tar; returns each sample's SHA-256 → category. */
async function seed(server: Server, name: string, count: number, w: number, h: number, testPercent = 0): Promise<Map<string, string>> {
  assert.equal((await call(server.url, KEY, 'PUT', `/v1/datasets/${name}`, { json: { width: w, height: h, channels: 3, testPercent } })).status, 201);
  const files: { name: string; data: Buffer }[] = [];
  const labels = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const data = await makePng(w, h, 3, i + 1);
    const category = CATEGORIES[i % CATEGORIES.length];
    files.push({ name: `${category}/${i}.png`, data });
    labels.set(sha256(data), category);
  }
  const res = await call(server.url, KEY, 'POST', `/v1/datasets/${name}/imports`, { bytes: await tarOf(files), type: 'application/x-tar', timeoutMs: 120_000 });
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(res.json().imported, count);
  return labels;
}

/** Every sample of a dataset: SHA-256 → {category, pixels of the stored record (via a JSON batch of all)}. */
async function contents(server: Server, name: string): Promise<Map<string, { category: string; pixels: string }>> {
  const info = (await call(server.url, KEY, 'GET', `/v1/datasets/${name}`)).json() as { sampleCount: number };
  const list = (await call(server.url, KEY, 'GET', `/v1/datasets/${name}/samples?limit=1000`)).json() as { samples: { id: number; sha256: string; category: string }[] };
  const batch = (await call(server.url, KEY, 'POST', `/v1/datasets/${name}/batches`, { json: { size: info.sampleCount, seed: 1 }, timeoutMs: 60_000 })).json() as { ids: number[]; data: number[][][][] };
  const pixelsById = new Map(batch.ids.map((id, i) => [id, sha256(Buffer.from(batch.data[i].flat(2)))]));
  return new Map(list.samples.map((s) => [s.sha256, { category: s.category, pixels: pixelsById.get(s.id)! }]));
}

describe('sensory export --format', () => {
  let server: Server;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir('sensory-export-cli-');
    server = await startServer(dataDir, ENV);
  });
  after(async () => stop(server));

  test('imagefolder: the tar, extracted and imported with sensory import, gives the same pixels and labels', { timeout: 180_000 }, async () => {
    const labels = await seed(server, 'roundtrip', 60, 16, 12, 30);
    const out = tempDir('sensory-export-out-');
    const run = runCli(['export', 'roundtrip', '--format', 'imagefolder', '--out', out, '--url', server.url, '--key', KEY], {});
    const exit = await within(run.exit, 120_000, 'sensory export');
    assert.equal(exit.code, 0, run.stderr());
    const result = JSON.parse(run.stdout()) as { id: string; files: string[]; samples: number };
    assert.equal(result.samples, 60);
    assert.match(run.stderr(), /export roundtrip/, 'a progress bar');
    const [tar] = result.files;
    assert.equal(tar, join(out, 'roundtrip-imagefolder.tar'));
    // Extracted by Python's tarfile, as a user would.
    const tree = join(out, 'tree');
    await python<null>(`import sys, tarfile, json\nwith tarfile.open(sys.argv[1]) as t: t.extractall(sys.argv[2], filter='data')\nprint('null')`, tar, tree);
    assert.deepEqual(readdirSync(tree).sort(), ['test', 'train']);
    for (const split of ['train', 'test']) {
      const imported = runCli(['import', join(tree, split), '--dataset', 'copy', '--width', '16', '--height', '12', '--url', server.url, '--key', KEY], {});
      const done = await within(imported.exit, 120_000, 'sensory import');
      assert.equal(done.code, 0, imported.stderr());
    }
    const original = await contents(server, 'roundtrip');
    const copy = await contents(server, 'copy');
    assert.equal(copy.size, 60);
    for (const [sha, sample] of original) {
      assert.equal(sample.category, labels.get(sha));
      assert.deepEqual(copy.get(sha), sample, `sample ${sha}: same label, same pixels`);
    }
  });

  test('--job ID resumes a download cut off: the partial file is continued with a Range request', { timeout: 60_000 }, async () => {
    const listed = (await call(server.url, KEY, 'GET', '/v1/exports?dataset=roundtrip')).json() as { exports: { id: string; files: { name: string; url: string }[] }[] };
    const job = listed.exports[0];
    const whole = (await call(server.url, KEY, 'GET', job.files[0].url)).body;
    const out = tempDir('sensory-export-resume-');
    // What a download killed after 4,096 bytes leaves; marked (zeros) so that a resume shows.
    writeFileSync(join(out, `${job.files[0].name}.partial`), Buffer.alloc(4096));
    const run = runCli(['export', 'roundtrip', '--format', 'imagefolder', '--job', job.id, '--out', out, '--url', server.url, '--key', KEY], {});
    assert.equal((await within(run.exit, 60_000, 'sensory export --job')).code, 0, run.stderr());
    const got = readFileSync(join(out, job.files[0].name));
    assert.equal(got.length, whole.length);
    assert.ok(got.subarray(0, 4096).equals(Buffer.alloc(4096)), 'the partial bytes were kept: the download resumed');
    assert.ok(got.subarray(4096).equals(whole.subarray(4096)), 'the rest came from the range');
    assert.equal(existsSync(join(out, `${job.files[0].name}.partial`)), false);
    assert.equal(((await call(server.url, KEY, 'GET', '/v1/exports?dataset=roundtrip')).json() as { exports: unknown[] }).exports.length, 1, 'no new job');
  });

  test('wrong flags: a usage error naming the flag, no job started', async () => {
    for (const [args, flag] of [
      [['--format', 'zip'], /--format/],
      [['--format', 'webdataset', '--split', 'dev'], /--split/],
      [['--format', 'webdataset', '--shard-size', '0'], /--shard-size/],
      [['--format', 'webdataset', '--revision', '-3'], /--revision/],
    ] as const) {
      const run = runCli(['export', 'roundtrip', ...args, '--url', server.url, '--key', KEY], {});
      const exit = await within(run.exit, 30_000, 'sensory export');
      assert.equal(exit.code, 2, run.stderr());
      assert.match(run.stderr(), flag);
    }
    const listed = (await call(server.url, KEY, 'GET', '/v1/exports?dataset=roundtrip')).json() as { exports: unknown[] };
    assert.equal(listed.exports.length, 1, 'only the job of the test before');
  });

  test('the dicebox-style export (NAME <dir>) still writes <category>/<sha256>.png', { timeout: 60_000 }, async () => {
    const out = tempDir('sensory-export-plain-');
    const run = runCli(['export', 'roundtrip', out, '--url', server.url, '--key', KEY], {});
    assert.equal((await within(run.exit, 60_000, 'sensory export')).code, 0, run.stderr());
    const written = CATEGORIES.flatMap((category) => readdirSync(join(out, category)));
    assert.equal(written.length, 60);
  });
});

describe('an export job survives a SIGKILL of its process', () => {
  test('killed while writing shards; the restarted process resumes after the files written and finishes', { timeout: 300_000 }, async () => {
    const dataDir = tempDir('sensory-export-kill-');
    let server = await startServer(dataDir, ENV);
    const count = 1200;
    const labels = await seed(server, 'killed', count, 8, 8);
    // One sample per shard: each shard is synced and recorded on its own, so the job takes a while.
    const created = await call(server.url, KEY, 'POST', '/v1/datasets/killed/exports', { json: { format: 'webdataset', shardSize: 1 } });
    assert.equal(created.status, 202, created.body.toString());
    const id = created.json().id as string;
    let seen: { status: string; files: unknown[] } = { status: 'queued', files: [] };
    for (let i = 0; i < 2000 && seen.files.length < 50; i++) {
      seen = (await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json();
      await sleep(5);
    }
    assert.equal(seen.status, 'running', 'killed in the middle of the job');
    assert.ok(seen.files.length >= 50 && seen.files.length < count, `${seen.files.length} files written when killed`);
    await stop(server, 'SIGKILL');
    const dir = join(dataDir, 'exports', id);
    const firstFile = readdirSync(dir).filter((name) => name.endsWith('.tar')).sort()[0];
    const firstWritten = statSync(join(dir, firstFile)).mtimeMs;

    server = await startServer(dataDir, ENV);
    let view: { status: string; attempts: number; files: { name: string }[]; error?: string } = { status: 'running', attempts: 0, files: [] };
    for (let i = 0; i < 1200 && view.status !== 'complete' && view.status !== 'failed'; i++) {
      await sleep(100);
      view = (await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json();
    }
    assert.equal(view.status, 'complete', view.error);
    assert.equal(view.attempts, 2, 'taken again once, by the restarted process');
    assert.equal(view.files.length, count);
    assert.equal(statSync(join(dir, firstFile)).mtimeMs, firstWritten, 'files written before the kill were kept, not written again');
    const read = await python<Record<string, Record<string, string>>>(READ_WEBDATASET, ...view.files.map((file) => join(dir, file.name)));
    assert.equal(Object.keys(read).length, count, 'every sample once');
    const { map } = (await call(server.url, KEY, 'GET', '/v1/datasets/killed/categories')).json() as { map: Record<string, number> };
    for (const entry of Object.values(read)) {
      const category = (JSON.parse(entry.json) as { category: string }).category;
      assert.equal(category, labels.get(entry.png));
      assert.equal(Number(entry.cls), map[category]);
    }
    assert.equal(readdirSync(dir).filter((name) => name.endsWith('.partial')).length, 0, 'no partial file left');
    await stop(server);
  });
});

describe('a clean stop hands the job back', () => {
  test('SIGTERM mid-job: the restarted process takes it at once, not after the lease', { timeout: 300_000 }, async () => {
    const dataDir = tempDir('sensory-export-term-');
    // A lease far longer than the test may wait: only a job handed back is taken in time.
    const env = { ...ENV, SENSORY_EXPORT_LEASE_MS: '600000' };
    let server = await startServer(dataDir, env);
    await seed(server, 'stopped', 600, 8, 8);
    const id = (await call(server.url, KEY, 'POST', '/v1/datasets/stopped/exports', { json: { format: 'webdataset', shardSize: 1 } })).json().id as string;
    let seen = { status: 'queued', files: [] as unknown[] };
    for (let i = 0; i < 2000 && seen.files.length < 20; i++) {
      seen = (await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json();
      await sleep(5);
    }
    assert.equal(seen.status, 'running');
    const exit = await stop(server, 'SIGTERM');
    assert.equal(exit.code, 0, server.stderr());
    server = await startServer(dataDir, env);
    let view = { status: 'queued', attempts: 0, files: [] as unknown[] };
    for (let i = 0; i < 1200 && view.status !== 'complete'; i++) {
      await sleep(100);
      view = (await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json();
    }
    assert.equal(view.status, 'complete');
    assert.equal(view.attempts, 2);
    assert.equal(view.files.length, 600);
    await stop(server);
  });
});

const productionSkip = [await postgresSkip(), await brokerSkip()].find((reason): reason is string => typeof reason === 'string') ?? false;

describe('the production shape: a worker runs the job, not the API replica', { skip: productionSkip }, () => {
  const names = uniqueAmqpNames('exports');
  after(async () => {
    await cleanBroker({ exchanges: [names.exchange], taskQueues: [names.taskQueue], orderIds: [] });
    await dropSchemas();
  });

  test('queued while no worker runs; a worker started later takes it from the queue and finishes it', { timeout: 180_000 }, async () => {
    const env = {
      ...ENV,
      SENSORY_DATABASE_URL: await useSchema(uniqueSchema('exports')),
      SENSORY_AMQP_URL: AMQP_URL,
      SENSORY_AMQP_EXCHANGE: names.exchange,
      SENSORY_AMQP_TASK_QUEUE: names.taskQueue,
      SENSORY_AMQP_TASK_ROUTING_KEY: names.taskRoutingKey,
    };
    const dataDir = tempDir('sensory-export-prod-');
    const server = await startServer(dataDir, env);
    await seed(server, 'prod', 40, 8, 8);
    const created = await call(server.url, KEY, 'POST', '/v1/datasets/prod/exports', { json: { format: 'safetensors', shardSize: 16 } });
    assert.equal(created.status, 202, created.body.toString());
    const id = created.json().id as string;
    await sleep(2500);
    assert.equal((await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json().status, 'queued', 'the API replica runs no job');
    const worker = await startWorker({ ...env, SENSORY_DATA_DIR: dataDir }, 1);
    let view = { status: 'queued', files: [] as unknown[] };
    for (let i = 0; i < 600 && view.status !== 'complete'; i++) {
      await sleep(100);
      view = (await call(server.url, KEY, 'GET', `/v1/exports/${id}`)).json();
    }
    assert.equal(view.status, 'complete');
    assert.equal(view.files.length, 3);
    const file = await call(server.url, KEY, 'GET', `/v1/exports/${id}/files/2`);
    assert.equal(file.status, 200);
    assert.equal(file.body.readUInt32LE(0) > 0, true, 'a safetensors header');
    await stop(worker);
    await stop(server);
  });
});
