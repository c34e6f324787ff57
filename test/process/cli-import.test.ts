/**
 * `sensory import` as a real process against a real server: the test split of a new dataset,
 * category indices in sorted folder-name order, tar archives (plain and gzipped), nested folders
 * under both category rules, and an import that stores nothing leaving no dataset behind.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { makePng } from '../support/harness.js';
import { call, ensureBuilt, killAll, removeTempDirs, runCli, startServer, stop, tempDir, within, type Run, type Server } from '../support/process.js';
import { tarOf, type TarMember } from '../support/tar.js';

const KEY = 'cli-import-admin-key-0123456789';
const WRITER = 'cli-import-writer-key-0123456789';

function summary(run: Run): any {
  const lines = run.stdout().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('sensory import: splits, category order, archives, nesting, clean failures', () => {
  let workDir: string;
  let server: Server;
  let seed = 0;
  const png = () => makePng(8, 8, 3, ++seed);

  async function cli(args: string[], key = KEY): Promise<Run & { code: number | null }> {
    const run = runCli([...args, '--url', server.url, '--key', key], { SENSORY_DATA_DIR: join(workDir, 'cli-data') });
    const { code } = await within(run.exit, 60_000, `sensory ${args.join(' ')}`);
    return { ...run, code };
  }

  const get = async (path: string) => call(server.url, KEY, 'GET', path);

  /** `files` is { 'a/b/c.png': bytes }: written under a new folder, which is returned. */
  function tree(name: string, files: Record<string, Buffer | string>): string {
    const root = join(workDir, name);
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), bytes);
    }
    return root;
  }

  async function counts(dataset: string): Promise<Record<string, number>> {
    const view = (await get(`/v1/datasets/${dataset}`)).json();
    return Object.fromEntries(view.categories.map((category: { name: string; count: number }) => [category.name, category.count]));
  }

  before(async () => {
    ensureBuilt();
    workDir = tempDir('sensory-cli-import-');
    server = await startServer(join(workDir, 'server-data'), { SENSORY_API_KEYS: `${KEY}:admin;${WRITER}:write`, SENSORY_LOG_LEVEL: 'warn' });
  });

  after(async () => {
    if (server) await stop(server).catch(() => undefined);
    await killAll();
    removeTempDirs();
  });

  test('--test-percent creates the dataset with that split; later imports keep it; a different one is refused and changes nothing', async () => {
    const files: Record<string, Buffer> = {};
    for (const category of ['cats', 'dogs']) for (let i = 0; i < 20; i++) files[`${category}/${i}.png`] = await png();
    const root = tree('split', files);

    const first = await cli(['import', root, '--dataset', 'split', '--width', '8', '--height', '8', '--test-percent', '30']);
    assert.equal(first.code, 0, first.stderr());
    assert.deepEqual(summary(first), { stored: 40, duplicates: 0, rejected: 0 });
    const view = (await get('/v1/datasets/split')).json();
    assert.equal(view.testPercent, 30);
    const test = (await get('/v1/datasets/split/samples?split=test&limit=100')).json().samples.length;
    const train = (await get('/v1/datasets/split/samples?split=train&limit=100')).json().samples.length;
    assert.equal(test + train, 40);
    assert.ok(test > 0 && train > test, `a 30 % test split: ${test} test, ${train} train`);

    // Again, without the flag nor the shape: the dataset's own are kept, nothing is stored twice.
    const again = await cli(['import', root, '--dataset', 'split']);
    assert.equal(again.code, 0, again.stderr());
    assert.deepEqual(summary(again), { stored: 0, duplicates: 40, rejected: 0 });

    const other = await cli(['import', root, '--dataset', 'split', '--test-percent', '10']);
    assert.equal(other.code, 1, other.stderr());
    assert.match(other.stderr(), /409 SENSORY_ERR_\w+/);
    const after = (await get('/v1/datasets/split')).json();
    assert.equal(after.testPercent, 30);
    assert.equal(after.revision, view.revision);
  });

  test('categories new to a dataset get their indices in sorted folder-name order, whatever order the files come in', async () => {
    const digits = [...Array(10).keys()].map(String).reverse();
    const files: Record<string, Buffer | string> = {};
    const members: TarMember[] = [];
    for (const digit of digits) {
      for (let i = 0; i < 3; i++) {
        const bytes = await png();
        files[`${digit}/${i}.png`] = bytes;
        members.push({ name: `${digit}/${i}.png`, data: bytes });
      }
    }
    // The first file of "3" (in name order) is not an image: the next one seeds the category.
    files['3/0-readme.txt'] = 'not an image\n';
    const sorted = Object.fromEntries([...Array(10).keys()].map((index) => [String(index), index]));

    const fromTree = await cli(['import', tree('digits', files), '--dataset', 'digits-tree', '--width', '8', '--height', '8', '--concurrency', '4']);
    assert.equal(fromTree.code, 1, fromTree.stderr());
    assert.deepEqual(summary(fromTree), { stored: 30, duplicates: 0, rejected: 1 });
    assert.deepEqual((await get('/v1/datasets/digits-tree/categories')).json().map, sorted);

    // An archive whose members come 9, 8, …, 0.
    const archive = join(workDir, 'digits.tar');
    writeFileSync(archive, await tarOf(members));
    const fromTar = await cli(['import', archive, '--dataset', 'digits-tar', '--width', '8', '--height', '8']);
    assert.equal(fromTar.code, 0, fromTar.stderr());
    assert.deepEqual(summary(fromTar), { stored: 30, duplicates: 0, rejected: 0 });
    assert.deepEqual((await get('/v1/datasets/digits-tar/categories')).json().map, sorted);

    // Into a dataset that has categories: the old keep theirs, the new follow in sorted order.
    const more = await tarOf([
      { name: 'zebra/1.png', data: await png() },
      { name: '5/new.png', data: await png() },
      { name: 'ant/1.png', data: await png() },
      { name: 'Bee/1.png', data: await png() },
    ]);
    writeFileSync(join(workDir, 'more.tar'), more);
    const added = await cli(['import', join(workDir, 'more.tar'), '--dataset', 'digits-tar']);
    assert.equal(added.code, 0, added.stderr());
    assert.deepEqual((await get('/v1/datasets/digits-tar/categories')).json().map, { ...sorted, Bee: 10, ant: 11, zebra: 12 });
  });

  test('a tar or gzipped tar imports like a folder: nested members, hidden members skipped, links and loose files rejected', async () => {
    const [a, b, c] = [await png(), await png(), await png()];
    const members: TarMember[] = [
      { name: 'cats/', type: 'directory' },
      { name: 'cats/a.png', data: a },
      { name: './dogs/b.png', data: b },
      { name: 'dogs/puppies/c.png', data: c },
      { name: '._cats', data: Buffer.from('apple double') },
      { name: 'cats/.DS_Store', data: Buffer.from([0, 0, 0, 1]) },
      { name: 'cats/link.png', type: 'symlink', linkname: 'a.png' },
      { name: 'loose.png', data: await png() },
    ];
    const plain = join(workDir, 'pets.tar');
    writeFileSync(plain, await tarOf(members));
    const leaf = await cli(['import', plain, '--dataset', 'pets-leaf', '--width', '8', '--height', '8']);
    assert.equal(leaf.code, 1, leaf.stderr());
    assert.deepEqual(summary(leaf), { stored: 3, duplicates: 0, rejected: 2 });
    assert.match(leaf.stderr(), /rejected cats\/link\.png: a symlink member, not a file/);
    assert.match(leaf.stderr(), /rejected loose\.png: not inside a category folder/);
    assert.doesNotMatch(leaf.stderr(), /DS_Store|\._cats/);
    assert.deepEqual(await counts('pets-leaf'), { cats: 1, dogs: 1, puppies: 1 });

    const gzipped = join(workDir, 'pets.tgz');
    writeFileSync(gzipped, gzipSync(await tarOf(members)));
    const top = await cli(['import', gzipped, '--dataset', 'pets-top', '--width', '8', '--height', '8', '--category-from', 'top']);
    assert.equal(top.code, 1, top.stderr());
    assert.deepEqual(summary(top), { stored: 3, duplicates: 0, rejected: 2 });
    assert.deepEqual(await counts('pets-top'), { cats: 1, dogs: 2 });

    const again = await cli(['import', gzipped, '--dataset', 'pets-top', '--category-from', 'top']);
    assert.deepEqual(summary(again), { stored: 0, duplicates: 3, rejected: 2 });
  });

  test('nested folders: the deepest folder is the category, or the top one with --category-from top', async () => {
    const root = tree('nested', {
      'animals/cats/x.png': await png(),
      'animals/dogs/y.png': await png(),
      'animals/z.png': await png(),
      'plants/ferns/deep/w.png': await png(),
    });
    const leaf = await cli(['import', root, '--dataset', 'nested-leaf', '--width', '8', '--height', '8']);
    assert.equal(leaf.code, 0, leaf.stderr());
    assert.deepEqual(await counts('nested-leaf'), { animals: 1, cats: 1, deep: 1, dogs: 1 });
    assert.deepEqual((await get('/v1/datasets/nested-leaf/categories')).json().map, { animals: 0, cats: 1, deep: 2, dogs: 3 });

    const top = await cli(['import', root, '--dataset', 'nested-top', '--width', '8', '--height', '8', '--category-from', 'top']);
    assert.equal(top.code, 0, top.stderr());
    assert.deepEqual(await counts('nested-top'), { animals: 3, plants: 1 });
  });

  test('a key with the write role only: the import works from the flags, with sorted indices; what it cannot remove it says', async () => {
    const files: Record<string, Buffer | string> = {};
    for (const category of ['zeta', 'alpha', 'mid']) for (let i = 0; i < 2; i++) files[`${category}/${i}.png`] = await png();
    const root = tree('writer', files);
    const run = await cli(['import', root, '--dataset', 'by-writer', '--width', '8', '--height', '8'], WRITER);
    assert.equal(run.code, 0, run.stderr());
    assert.deepEqual(summary(run), { stored: 6, duplicates: 0, rejected: 0 });
    assert.deepEqual((await get('/v1/datasets/by-writer/categories')).json().map, { alpha: 0, mid: 1, zeta: 2 });
    const again = await cli(['import', root, '--dataset', 'by-writer', '--width', '8', '--height', '8'], WRITER);
    assert.deepEqual(summary(again), { stored: 0, duplicates: 6, rejected: 0 });

    const junk = tree('writer-junk', { 'cats/a.txt': 'text\n' });
    const failed = await cli(['import', junk, '--dataset', 'writer-junk', '--width', '8', '--height', '8'], WRITER);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr(), /could not remove dataset writer-junk, which this import created and stored nothing in: .*admin/);
    const missing = await cli(['import', root, '--dataset', 'no-shape'], WRITER);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr(), /this key may not read dataset no-shape: give --width and --height/);
  });

  test('an import that stores nothing removes the dataset it created, and keeps one that existed', async () => {
    const root = tree('junk', { 'cats/a.txt': 'text\n', 'dogs/b.txt': 'more text\n' });
    const failed = await cli(['import', root, '--dataset', 'junk', '--width', '8', '--height', '8']);
    assert.equal(failed.code, 1, failed.stderr());
    assert.deepEqual(summary(failed), { stored: 0, duplicates: 0, rejected: 2 });
    assert.match(failed.stderr(), /removed dataset junk: this import created it and stored nothing/);
    assert.equal((await get('/v1/datasets/junk')).status, 404);

    assert.equal((await call(server.url, KEY, 'PUT', '/v1/datasets/kept', { json: { width: 8, height: 8, channels: 3 } })).status, 201);
    const intoExisting = await cli(['import', root, '--dataset', 'kept']);
    assert.equal(intoExisting.code, 1, intoExisting.stderr());
    assert.doesNotMatch(intoExisting.stderr(), /removed dataset/);
    assert.equal((await get('/v1/datasets/kept')).status, 200);

  });
});
