/**
 * The web page at `/` in a real browser: Debian's Chromium driven by playwright-core against a
 * real `sensory serve` process. Key entry (a wrong key shows the server's message), datasets,
 * uploads through the bulk endpoint (files, a folder tree dropped or picked) with one summary,
 * the chart, filters, the virtualised grid of server-made previews, keyboard navigation, the
 * detail fitted to the screen with a zoom and previous/next, selection, relabel, delete, controls
 * shown by the key's role (read, write, admin), axe-core on every view, orders with live progress
 * bars, and screenshots at desktop and phone sizes (test-artifacts/).
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`). Outside CI the test is skipped when it
 * is missing; under CI=true it fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { ensureBuilt, sha256, startServer, stop, type Server } from '../support/process.js';
import { tarOf } from '../support/tar.js';
import { ARTIFACTS, axeViolations, dropPaths, launch, screenshot, skip } from './web-support.js';

const ADMIN = 'web-admin-key-0123456789';
const WRITER = 'web-write-key-0123456789';
const READER = 'web-read-key-0123456789';
const DATASET = 'pets';
const TEST_PERCENT = 50;

/** The split rule of SPEC §3: the first 32 bits of the SHA-256 modulo 100, under testPercent → test. */
const splitOf = (bytes: Buffer) => (Number.parseInt(sha256(bytes).slice(0, 8), 16) % 100 < TEST_PERCENT ? 'test' : 'train');

async function colourPng(width: number, height: number, seed: number): Promise<Buffer> {
  const background = { r: (seed * 67) % 256, g: (90 + seed * 41) % 256, b: (200 + seed * 23) % 256 };
  const square = await sharp({ create: { width: 6, height: 6, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
  return sharp({ create: { width, height, channels: 3, background } })
    .composite([{ input: square, left: 2 + (seed % 5) * 3, top: 4 }])
    .png()
    .toBuffer();
}

describe('web page', { skip }, () => {
  let dataDir: string;
  let fileDir: string;
  let server: Server;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const files: { path: string; name: string; bytes: Buffer; width: number; height: number }[] = [];
  const requested: string[] = [];
  /** Set while a test cuts requests off on purpose: Chromium logs each as a failed resource. */
  let cuttingRequests = false;

  async function call(method: string, path: string, key: string, body?: unknown) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'API-ACCESS-KEY': key, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  async function chartCount(category: string, split: 'train' | 'test'): Promise<string> {
    return page.locator(`.bar-row[data-category="${category}"] [data-count="${split}"]`).innerText();
  }

  async function expectChart(category: string, train: number, test: number) {
    await page.locator(`.bar-row[data-category="${category}"] [data-count="train"]`).filter({ hasText: new RegExp(`^${train}$`) }).waitFor();
    assert.equal(await chartCount(category, 'test'), String(test));
  }

  const samplesRegion = () => page.getByRole('region', { name: 'Samples', exact: true });
  const categoryFilter = () => samplesRegion().getByLabel('Category', { exact: true });
  const cells = () => page.locator('[role="gridcell"][data-sample-id]');
  const cell = (id: number) => page.locator(`[role="gridcell"][data-sample-id="${id}"]`);

  async function signIn(key: string) {
    await page.getByLabel('API key', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  async function switchKey(key: string) {
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key', { exact: true }).waitFor();
    await signIn(key);
  }

  async function uploadDone(expected: { stored: number; duplicates: number; rejected: number }) {
    const summary = page.locator('.upload-summary[data-state]');
    await summary.waitFor();
    const got = await summary.evaluate((el: HTMLElement) => ({ stored: Number(el.dataset.stored), duplicates: Number(el.dataset.duplicates), rejected: Number(el.dataset.rejected) }));
    assert.deepEqual(got, expected);
  }

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-'));
    fileDir = mkdtempSync(join(tmpdir(), 'sensory-web-files-'));
    // Three distinct PNGs, two in the train split and one in the test split (the split is a hash of the bytes).
    const wanted = { train: 2, test: 1 };
    for (let seed = 0; files.length < 3; seed++) {
      const width = 40 + (seed % 3) * 8;
      const height = 30 + (seed % 3) * 4;
      const bytes = await colourPng(width, height, seed);
      const split = splitOf(bytes);
      if (wanted[split] === 0) continue;
      wanted[split]--;
      const name = `pet-${files.length + 1}.png`;
      const path = join(fileDir, name);
      writeFileSync(path, bytes);
      files.push({ path, name, bytes, width, height });
    }
    writeFileSync(join(fileDir, 'notes.txt'), 'not an image at all');
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin;${WRITER}:read,write;${READER}:read`, SENSORY_LOG_LEVEL: 'warn' });
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // A 4xx that the page shows as an error message (401, 403, 404, 409) is logged by Chromium too: expected.
      if (cuttingRequests && /Failed to load resource: net::ERR_/.test(message.text())) return;
      if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
    });
    page.on('request', (request) => requested.push(new URL(request.url()).pathname));
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (fileDir) rmSync(fileDir, { recursive: true, force: true });
  });

  test('the page is served at / with its cache headers, beside the API', async () => {
    const index = await fetch(`${server.url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.ok(index.headers.get('etag'));
    const script = await fetch(`${server.url}/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('cache-control') ?? '', /max-age=3600/);
    // (node:http, not fetch: fetch adds Cache-Control: no-cache to a request carrying If-None-Match.)
    const revalidated = await new Promise<number>((resolve, reject) =>
      http.get(`${server.url}/`, { headers: { 'if-none-match': index.headers.get('etag')! } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      }).on('error', reject),
    );
    assert.equal(revalidated, 304);
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
    const missing = await fetch(`${server.url}/no-such-page`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, 'SENSORY_ERR_NOT_FOUND');
  });

  test('a wrong key shows the server message; the admin key opens the datasets view with its role', async () => {
    await page.goto(server.url);
    await page.getByLabel('API key', { exact: true }).waitFor();
    await axeViolations(page, 'the key form');
    await screenshot(page, 'key-view');
    const refused = await call('GET', '/v1/me', 'wrong-key-0123456789');
    assert.equal(refused.status, 401);
    await signIn('wrong-key-0123456789');
    await page.getByRole('alert').filter({ hasText: refused.body.error.message }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sensory.apiKey')), null);

    await signIn(ADMIN);
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sensory.apiKey')), ADMIN);
    assert.equal(await page.evaluate(() => document.body.dataset.roles), 'admin');
    assert.ok(requested.includes('/v1/me'), 'the role comes from GET /v1/me');
    await page.getByText('No datasets yet').waitFor();
  });

  test('creating a dataset lists it and opens it', async () => {
    await page.getByLabel('Name').fill(DATASET);
    await page.getByLabel('Width (px)').fill('32');
    await page.getByLabel('Height (px)').fill('24');
    await page.getByLabel('Channels').selectOption('3');
    await page.getByLabel('Test share (%)').fill(String(TEST_PERCENT));
    await page.getByRole('button', { name: 'Create dataset' }).click();
    await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
    assert.equal(new URL(page.url()).hash, `#/datasets/${DATASET}`);
    await page.locator('[data-field="shape"]').filter({ hasText: '32 × 24 × 3' }).waitFor();
    await page.getByText('No samples yet. Upload images').waitFor();

    // A wrong shape is the server's 409, shown on the form.
    await page.goto(`${server.url}/#/`);
    await page.locator(`tr[data-dataset="${DATASET}"]`).waitFor();
    await page.getByLabel('Name').fill(DATASET);
    await page.getByLabel('Width (px)').fill('64');
    await page.getByLabel('Height (px)').fill('28');
    await page.getByLabel('Test share (%)').fill(String(TEST_PERCENT));
    await page.getByRole('button', { name: 'Create dataset' }).click();
    const conflict = await call('PUT', `/v1/datasets/${DATASET}`, ADMIN, { width: 64, height: 28, channels: 3, testPercent: TEST_PERCENT });
    assert.equal(conflict.status, 409);
    await page.getByRole('alert').filter({ hasText: conflict.body.error.message }).waitFor();
    await page.getByRole('link', { name: DATASET }).click();
    await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
  });

  test('three loose files go up in one bulk request; the grid shows server-made previews, not the originals', async () => {
    await page.getByLabel('Category for loose files').fill('cats');
    await page.locator('input[type="file"]:not([webkitdirectory])').setInputFiles(files.map((file) => file.path));
    await page.getByText('3 files (').waitFor();
    requested.length = 0;
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await uploadDone({ stored: 3, duplicates: 0, rejected: 0 });
    assert.equal(requested.filter((path) => path === `/v1/datasets/${DATASET}/samples/bulk`).length, 1);
    // One summary line, not a row per file.
    assert.equal(await page.locator('.upload-card li').count(), 0);
    assert.equal(await page.locator('progress').evaluate((el: HTMLProgressElement) => `${el.value}/${el.max}`), '3/3');

    await cells().nth(2).waitFor();
    assert.equal(await cells().count(), 3);
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('[role="gridcell"] img')].every((img) => img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0));
    assert.ok(requested.some((path) => /\/samples\/\d+\/thumbnail$/.test(path)), 'previews come from the thumbnail endpoint');
    assert.ok(!requested.some((path) => /\/samples\/\d+\/content$/.test(path)), 'the grid never downloads an original');

    const train = files.filter((file) => splitOf(file.bytes) === 'train').length;
    await expectChart('cats', train, 3 - train);
    assert.equal(await page.locator('[data-field="sampleCount"]').innerText(), '3');
    const stats = await call('GET', `/v1/datasets/${DATASET}/stats`, READER);
    assert.deepEqual(stats.body, { dataset: DATASET, revision: 3, testPercent: TEST_PERCENT, train, test: 3 - train, categories: [{ name: 'cats', index: 0, train, test: 3 - train }] });

    // Again, with one file already stored and one that is not an image: counted, and the rejected one named with the server's reason.
    await page.locator('input[type="file"]:not([webkitdirectory])').setInputFiles([files[0].path, join(fileDir, 'notes.txt')]);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary[data-rejected="1"][data-state]').waitFor();
    await uploadDone({ stored: 0, duplicates: 1, rejected: 1 });
    const direct = await fetch(`${server.url}/v1/datasets/${DATASET}/samples/bulk`, {
      method: 'POST',
      headers: { 'API-ACCESS-KEY': ADMIN, 'Content-Type': 'application/x-tar' },
      body: new Uint8Array(await tarOf([{ name: 'cats/notes.txt', data: Buffer.from('not an image at all') }])),
    });
    const receipt = ((await direct.json()) as any).receipts[0];
    assert.equal(receipt.status, 'rejected');
    await page.locator('.rejects-box summary').click();
    assert.equal(await page.locator('.rejects li .result-name').innerText(), 'cats/notes.txt');
    assert.equal(await page.locator('.rejects li .result-message').innerText(), receipt.error.message);
    assert.equal(await cells().count(), 3);
  });

  test('a folder tree dropped on the page: each sub-folder is a category, the deepest folder wins', async () => {
    const root = join(fileDir, 'tree', 'animals');
    const layout: Record<string, number> = { birds: 2, fish: 3, 'fish/deep': 1 };
    let seed = 100;
    for (const [folder, count] of Object.entries(layout)) {
      mkdirSync(join(root, folder), { recursive: true });
      for (let i = 0; i < count; i++) writeFileSync(join(root, folder, `img-${i}.png`), await colourPng(20, 20, seed++));
    }
    writeFileSync(join(root, 'birds', '.DS_Store'), 'finder noise');
    await dropPaths(page, '.dropzone', [root]);
    await page.locator('.chosen').filter({ hasText: '6 files' }).waitFor();
    assert.match(await page.locator('.chosen').innerText(), /3 categories from folders: birds 2, deep 1, fish 3; 1 hidden file skipped/);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary[data-stored="6"][data-state="done"]').waitFor();
    await expectChart('birds', ...(await splitCounts('birds')));
    await expectChart('deep', ...(await splitCounts('deep')));
    await expectChart('fish', ...(await splitCounts('fish')));

    // The folder picker (webkitdirectory) reads the same tree: everything is a duplicate now.
    await page.locator('input[webkitdirectory]').setInputFiles(root);
    await page.locator('.chosen').filter({ hasText: '6 files' }).waitFor();
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary[data-duplicates="6"][data-state="done"]').waitFor();
  });

  test('previews over real HTTP: small WebP, a strong ETag answered 304, clear 4xx for wrong inputs', async () => {
    const id = (await call('GET', `/v1/datasets/${DATASET}/samples`, READER)).body.samples[0].id as number;
    const url = `${server.url}/v1/datasets/${DATASET}/samples/${id}/thumbnail?size=128`;
    const first = await fetch(url, { headers: { 'API-ACCESS-KEY': READER } });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'image/webp');
    assert.equal(first.headers.get('cache-control'), 'private, max-age=604800');
    const etag = first.headers.get('etag')!;
    assert.match(etag, /^"w2-128-[0-9a-f]{64}"$/);
    assert.ok((await first.arrayBuffer()).byteLength < 2048);
    // (node:http, not fetch: fetch adds Cache-Control: no-cache to a request carrying If-None-Match.)
    const revalidated = await new Promise<{ status: number; length: number }>((resolve, reject) =>
      http
        .get(url, { headers: { 'if-none-match': etag, 'api-access-key': READER } }, (response) => {
          let length = 0;
          response.on('data', (chunk: Buffer) => (length += chunk.length));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, length }));
        })
        .on('error', reject),
    );
    assert.deepEqual(revalidated, { status: 304, length: 0 });
    for (const [query, status, code] of [
      ['?size=100', 400, 'SENSORY_ERR_BAD_REQUEST'],
      ['?size=big', 400, 'SENSORY_ERR_BAD_REQUEST'],
    ] as const) {
      const wrong = await fetch(`${server.url}/v1/datasets/${DATASET}/samples/${id}/thumbnail${query}`, { headers: { 'API-ACCESS-KEY': READER } });
      assert.equal(wrong.status, status);
      const body = (await wrong.json()) as any;
      assert.equal(body.error.code, code);
      assert.match(body.error.message, /size/);
    }
    const unknown = await fetch(`${server.url}/v1/datasets/${DATASET}/samples/987654/thumbnail`, { headers: { 'API-ACCESS-KEY': READER } });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as any).error.code, 'SENSORY_ERR_SAMPLE_NOT_FOUND');
  });

  test('the upload queue retries a lost request, asks before the page is left, and cancels', async () => {
    // Its own dataset, so that the other tests keep their small one.
    assert.equal((await call('PUT', '/v1/datasets/queue', ADMIN, { width: 12, height: 12, channels: 3 })).status, 201);
    await page.goto(`${server.url}/#/datasets/queue`);
    await page.getByRole('heading', { level: 1, name: 'queue' }).waitFor();
    const root = join(fileDir, 'queue', 'many');
    for (let i = 0; i < 1200; i++) {
      mkdirSync(join(root, `q${i % 3}`), { recursive: true });
      writeFileSync(join(root, `q${i % 3}`, `${i}.png`), await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: i % 256, g: (i >> 8) * 40, b: 7 } } }).png().toBuffer());
    }
    // The first bulk request is cut off on the network; every later one is held until released.
    let requests = 0;
    cuttingRequests = true;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/samples/bulk', async (route) => {
      requests++;
      if (requests === 1) return route.abort('connectionreset');
      await held;
      return route.abort('aborted').catch(() => undefined);
    });
    try {
      await queueChecks();
    } finally {
      release();
      await page.unroute('**/samples/bulk').catch(() => undefined);
      cuttingRequests = false;
      await page.goto(`${server.url}/#/datasets/${DATASET}`);
      await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
    }

    async function queueChecks() {
    await page.locator('input[webkitdirectory]').setInputFiles(root);
    await page.locator('.chosen').filter({ hasText: '1,200 files' }).waitFor();
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary').filter({ hasText: '1 retry' }).waitFor();
    // Three requests in flight at once, the first one sent again.
    await page.waitForFunction(() => true);
    while (requests < 4) await new Promise((resolve) => setTimeout(resolve, 50));

    // Leaving the dataset mid-upload asks first; staying keeps the upload going.
    const asked: string[] = [];
    page.once('dialog', (dialog) => {
      asked.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.evaluate(() => (location.hash = '#/orders'));
    await page.waitForFunction(() => location.hash === '#/datasets/queue');
    assert.deepEqual(asked, ['confirm: An upload is running. Leave this page and cancel it?']);
    assert.equal(await page.getByRole('heading', { level: 1, name: 'queue' }).count(), 1);
    // Closing the tab asks too (beforeunload).
    page.once('dialog', (dialog) => {
      asked.push(dialog.type());
      void dialog.dismiss();
    });
    await page.close({ runBeforeUnload: true });
    for (let i = 0; i < 40 && asked.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(asked.slice(1), ['beforeunload']);
    assert.equal(page.isClosed(), false);

    await page.getByRole('button', { name: 'Cancel upload' }).click();
    await page.locator('.upload-summary[data-state="cancelled"]').waitFor();
    release();
    await page.unroute('**/samples/bulk');
    assert.equal(await page.locator('.upload-summary').getAttribute('data-stored'), '0');
    await page.getByRole('status').filter({ hasText: 'Upload cancelled: 0 stored, 0 duplicate, 0 rejected, 1,200 not sent.' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel upload' }).isVisible(), false);

    // The same files again, on a network that works: all stored, in three requests of at most 500.
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary[data-state="done"][data-stored="1200"]').waitFor({ timeout: 60_000 });
    assert.equal((await call('GET', '/v1/datasets/queue', ADMIN)).body.sampleCount, 1200);
    }
  });

  async function splitCounts(category: string): Promise<[number, number]> {
    const stats = await call('GET', `/v1/datasets/${DATASET}/stats`, READER);
    const found = stats.body.categories.find((c: any) => c.name === category);
    assert.ok(found, `category ${category} exists`);
    return [found.train, found.test];
  }

  test('the grid filters by category and split', async () => {
    const stats = (await call('GET', `/v1/datasets/${DATASET}/stats`, READER)).body;
    await samplesRegion().getByLabel('Split').selectOption('test');
    await page.locator('.grid-status').filter({ hasText: new RegExp(` of ${stats.test} `) }).waitFor();
    await page.locator('[role="gridcell"][data-sample-id][data-index="' + (stats.test - 1) + '"]').waitFor();
    assert.equal(await cells().count(), stats.test);
    assert.equal(await page.locator('[role="gridcell"].pending').count(), 0);
    await samplesRegion().getByLabel('Split').selectOption('all');
    await categoryFilter().selectOption('cats');
    await page.locator('.grid-status').filter({ hasText: '1–3 of 3 ' }).waitFor();
    await page.locator('[role="gridcell"][data-sample-id][data-index="2"]').waitFor();
    assert.equal(await cells().count(), 3);
  });

  test('the detail fits the image to the screen, zooms, and goes to the previous and next sample', async () => {
    const listed = await call('GET', `/v1/datasets/${DATASET}/samples?category=cats`, ADMIN);
    const [first, second] = listed.body.samples;
    const file = files.find((f) => sha256(f.bytes) === first.sha256)!;
    await cell(first.id).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${first.id}` });
    await dialog.locator('[data-field="sha256"]').filter({ hasText: first.sha256 }).waitFor();
    assert.equal(await dialog.locator('[data-field="category"]').innerText(), 'cats');
    await dialog.locator('figcaption').filter({ hasText: `Original, ${file.width} × ${file.height} px` }).waitFor();
    // Fitted: the small original is enlarged to fill the stage (not shown at 40 px in a corner).
    const fitted = await dialog.locator('.detail-image').evaluate((stage: HTMLElement) => {
      const img = stage.querySelector('img')!;
      const scale = Math.min(stage.clientWidth / img.naturalWidth, stage.clientHeight / img.naturalHeight);
      return { scale, box: img.getBoundingClientRect().width, stage: stage.clientWidth, natural: img.naturalWidth };
    });
    assert.ok(fitted.scale > 4, `fitted scale ${fitted.scale}`);
    assert.match(await dialog.locator('figcaption').innerText(), new RegExp(`shown at ${Math.round(fitted.scale * 100)}% \\(fitted\\)`));
    await dialog.getByRole('button', { name: '100%' }).click();
    await dialog.locator('figcaption').filter({ hasText: 'shown at 100%' }).waitFor();
    assert.equal(await dialog.locator('.detail-image img').evaluate((img: HTMLImageElement) => img.getBoundingClientRect().width), file.width);
    await dialog.getByRole('button', { name: 'Zoom in' }).click();
    await dialog.locator('figcaption').filter({ hasText: 'shown at 200%' }).waitFor();
    await dialog.getByRole('button', { name: 'Fit' }).click();
    await dialog.locator('figcaption').filter({ hasText: '(fitted)' }).waitFor();
    await axeViolations(page, 'the sample detail');
    await screenshot(page, 'detail-desktop');

    // → and ← walk the grid's order.
    await page.keyboard.press('ArrowRight');
    await page.getByRole('dialog', { name: `Sample #${second.id}` }).locator('[data-field="sha256"]').filter({ hasText: second.sha256 }).waitFor();
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.getByRole('dialog', { name: `Sample #${first.id}` }).locator('[data-field="sha256"]').filter({ hasText: first.sha256 }).waitFor();
  });

  test('relabelling in the detail moves the sample and updates the chart without a reload', async () => {
    const listed = await call('GET', `/v1/datasets/${DATASET}/samples?category=cats`, ADMIN);
    const target = listed.body.samples[0];
    const file = files.find((f) => sha256(f.bytes) === target.sha256)!;
    await page.evaluate(() => ((window as any).__noReload = true));
    const dialog = page.getByRole('dialog', { name: `Sample #${target.id}` });
    await dialog.getByLabel('New category').fill('dogs');
    await dialog.getByRole('button', { name: 'Relabel' }).click();
    await dialog.locator('[data-field="category"]').filter({ hasText: 'dogs' }).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });

    const split = splitOf(file.bytes);
    const train = files.filter((f) => splitOf(f.bytes) === 'train').length;
    await expectChart('dogs', split === 'train' ? 1 : 0, split === 'test' ? 1 : 0);
    await expectChart('cats', train - (split === 'train' ? 1 : 0), 3 - train - (split === 'test' ? 1 : 0));
    // Filtered to cats, the relabelled sample leaves the grid.
    await cell(target.id).waitFor({ state: 'detached' });
    await categoryFilter().selectOption('dogs');
    await page.locator('.grid-status').filter({ hasText: '1–1 of 1 ' }).waitFor();
    await page.locator('[role="gridcell"][data-sample-id][data-index="0"]').waitFor();
    assert.equal(await cells().count(), 1);
    assert.equal(await page.evaluate(() => (window as any).__noReload), true);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${target.id}`, ADMIN)).body.category, 'dogs');
    await categoryFilter().selectOption('');
  });

  test('the grid by keyboard: arrows move, Enter opens, Escape closes and gives focus back', async () => {
    const all = (await call('GET', `/v1/datasets/${DATASET}/samples`, ADMIN)).body.samples as { id: number }[];
    await cell(all[0].id).waitFor();
    await cell(all[0].id).focus();
    const focused = (field: 'sampleId' | 'index', value: number) =>
      page.waitForFunction(([f, v]) => (document.activeElement as HTMLElement | null)?.dataset[f as string] === v, [field, String(value)] as const);
    await page.keyboard.press('ArrowRight');
    await focused('sampleId', all[1].id);
    const cols = Number(await page.locator('[role="grid"]').getAttribute('aria-colcount'));
    await page.keyboard.press('End');
    const end = Math.min(all.length, cols) - 1;
    await focused('index', end);
    // Down from the end of the first row: the cell below, or nowhere when the next row is shorter.
    await page.keyboard.press('ArrowDown');
    await focused('index', end + cols < all.length ? end + cols : end);
    await page.keyboard.press('Control+Home');
    await focused('index', 0);
    await page.keyboard.press('ArrowRight');
    await focused('index', 1);
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: `Sample #${all[1].id}` }).waitFor();
    await page.keyboard.press('ArrowRight');
    await page.getByRole('dialog', { name: `Sample #${all[2].id}` }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('dialog.sample-dialog[open]').waitFor({ state: 'detached' });
    await focused('sampleId', all[2].id);
    // Every control has a name.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('input, select, button, a[href], [role="gridcell"]')]
        .filter((el) => {
          if ((el as HTMLInputElement).type === 'file') return (el as HTMLInputElement).labels?.length === 0;
          return !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.textContent?.trim());
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabelled, []);
  });

  test('selection: click, shift-click, select all of the filter result, clear', async () => {
    const all = (await call('GET', `/v1/datasets/${DATASET}/samples`, ADMIN)).body.samples as { id: number }[];
    await cell(all[0].id).locator('.cell-check').check();
    await page.locator('.selection-count').filter({ hasText: '1 sample selected' }).waitFor();
    await cell(all[3].id).click({ modifiers: ['Shift'] });
    await page.locator('.selection-count').filter({ hasText: '4 samples selected' }).waitFor();
    assert.equal(await page.locator('[role="gridcell"][aria-selected="true"]').count(), 4);
    await page.getByRole('button', { name: `Select all ${all.length} matching` }).click();
    await page.locator('.selection-count').filter({ hasText: `All ${all.length} matching samples selected` }).waitFor();
    assert.equal(await page.locator('[role="gridcell"][aria-selected="true"]').count(), all.length);
    await cell(all[0].id).click({ modifiers: ['Control'] });
    await page.locator('.selection-count').filter({ hasText: `All ${all.length - 1} matching samples selected` }).waitFor();
    await axeViolations(page, 'the dataset view with a selection');
    await page.getByRole('button', { name: 'Clear selection' }).click();
    await page.locator('.selection-bar').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('[role="gridcell"][aria-selected="true"]').count(), 0);
  });

  test('deleting a sample asks first, then removes it and updates the counts', async () => {
    const before = (await call('GET', `/v1/datasets/${DATASET}`, ADMIN)).body.sampleCount as number;
    const cats = (await call('GET', `/v1/datasets/${DATASET}/samples?category=cats`, ADMIN)).body.samples;
    const victim = cats[0];
    await cell(victim.id).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${victim.id}` });
    await dialog.locator('[data-field="sha256"]').filter({ hasText: victim.sha256 }).waitFor();

    await dialog.getByRole('button', { name: 'Delete sample…' }).click();
    await page.getByRole('alertdialog', { name: `Delete sample #${victim.id}?` }).getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${victim.id}`, ADMIN)).status, 200);

    await dialog.getByRole('button', { name: 'Delete sample…' }).click();
    await page.getByRole('alertdialog', { name: `Delete sample #${victim.id}?` }).getByRole('button', { name: 'Delete', exact: true }).click();
    await cell(victim.id).waitFor({ state: 'detached' });
    await page.locator('[data-field="sampleCount"]').filter({ hasText: new RegExp(`^${before - 1}$`) }).waitFor();
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${victim.id}`, ADMIN)).status, 404);
    assert.equal(await cells().count(), before - 1);
  });

  test('axe on the dataset view and screenshots at desktop and phone sizes; no horizontal scrollbar at 390 px', async () => {
    await cells().first().waitFor();
    await axeViolations(page, 'the dataset view (grid)');
    await screenshot(page, 'dataset-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await cells().nth(1).waitFor();
    await page.locator('.bar-row[data-category="dogs"]').waitFor();
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(widths.scroll <= widths.client, `page is ${widths.scroll} px wide in a ${widths.client} px window`);
    await axeViolations(page, 'the dataset view at 390 px');
    await screenshot(page, 'dataset-phone');
    await page.locator('[role="grid"]').scrollIntoViewIfNeeded();
    await screenshot(page, 'grid-phone');
    await cells().first().click();
    await page.locator('dialog.sample-dialog [data-field="sha256"]').waitFor();
    await axeViolations(page, 'the sample detail at 390 px');
    await screenshot(page, 'detail-phone');
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('a read key sees no upload, relabel, delete or create; a write key no delete; admin everything', async () => {
    const id = (await call('GET', `/v1/datasets/${DATASET}/samples`, ADMIN)).body.samples[0].id as number;
    const expectations = [
      { key: READER, roles: 'read', upload: false, relabel: false, del: false, create: false },
      { key: WRITER, roles: 'read write', upload: true, relabel: true, del: false, create: true },
      { key: ADMIN, roles: 'admin', upload: true, relabel: true, del: true, create: true },
    ];
    for (const expected of expectations) {
      await switchKey(expected.key);
      await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
      assert.equal(await page.evaluate(() => document.body.dataset.roles), expected.roles);
      await cell(id).waitFor();
      assert.equal(await page.getByRole('region', { name: 'Upload images' }).count(), expected.upload ? 1 : 0, `${expected.roles}: upload`);
      await cell(id).click();
      const dialog = page.getByRole('dialog', { name: `Sample #${id}` });
      await dialog.locator('[data-field="sha256"]').waitFor();
      assert.equal(await dialog.getByRole('button', { name: 'Relabel' }).isVisible(), expected.relabel, `${expected.roles}: relabel`);
      assert.equal(await dialog.getByRole('button', { name: 'Delete sample…' }).isVisible(), expected.del, `${expected.roles}: delete`);
      await page.keyboard.press('Escape');
      await page.getByRole('link', { name: 'Datasets', exact: true }).first().click();
      await page.locator(`tr[data-dataset="${DATASET}"]`).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Create dataset' }).count(), expected.create ? 1 : 0, `${expected.roles}: create`);
      if (expected.key === READER) {
        await axeViolations(page, 'the datasets view with a read key');
        await screenshot(page, 'datasets-read-key');
      }
      await page.getByRole('link', { name: DATASET }).click();
    }
  });

  test('an order progress bar follows a trainer polling to 100%; cancel stops another', async () => {
    await page.getByRole('link', { name: 'Orders' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orders' }).waitFor();
    const created = await call('POST', `/v1/datasets/${DATASET}/orders`, READER, { size: 30, seed: 7 });
    assert.equal(created.status, 202);
    const id = created.body.id as string;
    const bar = page.locator(`[data-order-id="${id}"] [role="progressbar"]`);
    await bar.waitFor();
    assert.equal(await bar.getAttribute('aria-valuemax'), '30');

    let delivered = 0;
    const seen: number[] = [];
    while (delivered < 30) {
      const polled = await call('POST', `/v1/orders/${id}/poll`, READER, { max: 10, waitMs: 5000 });
      assert.equal(polled.status, 200);
      delivered += polled.body.ids.length;
      await page.locator(`[data-order-id="${id}"] [role="progressbar"][aria-valuenow="${delivered}"]`).waitFor();
      seen.push(delivered);
    }
    assert.deepEqual(seen, [10, 20, 30]);
    await page.locator(`[data-order-id="${id}"] [data-field="percent"]`).filter({ hasText: '100%' }).waitFor();
    await page.locator(`[data-order-id="${id}"] .badge`).filter({ hasText: 'complete' }).waitFor();

    const other = await call('POST', `/v1/datasets/${DATASET}/orders`, READER, { size: 5000, shardSize: 100 });
    const otherCard = page.locator(`[data-order-id="${other.body.id}"]`);
    await otherCard.getByRole('button', { name: `Cancel order ${other.body.id}` }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Cancel order' }).click();
    await otherCard.locator('.badge').filter({ hasText: 'cancelled' }).waitFor();
    assert.equal((await call('GET', `/v1/orders/${other.body.id}`, READER)).body.status, 'cancelled');
    await call('POST', `/v1/datasets/${DATASET}/orders`, READER, { size: 12_000, shardSize: 500 });
    await page.locator('.orders li').nth(2).waitFor();
    await axeViolations(page, 'the orders view');
    await screenshot(page, 'orders-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await axeViolations(page, 'the orders view at 390 px');
    await screenshot(page, 'orders-phone');
    await page.getByRole('link', { name: 'Datasets', exact: true }).click();
    await page.locator(`tr[data-dataset="${DATASET}"]`).waitFor();
    await axeViolations(page, 'the datasets view at 390 px');
    await screenshot(page, 'datasets-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    await axeViolations(page, 'the datasets view');
    await screenshot(page, 'datasets-desktop');
  });

  test('export jobs on the orders page: progress to complete, and their files downloaded', async () => {
    await page.getByRole('link', { name: 'Orders' }).click();
    await page.getByRole('heading', { level: 2, name: 'Export jobs' }).waitFor();
    const created = await call('POST', `/v1/datasets/${DATASET}/exports`, READER, { format: 'webdataset', shardSize: 5 });
    assert.equal(created.status, 202);
    const id = created.body.id as string;
    const item = page.locator(`[data-export-id="${id}"]`);
    await item.locator('.badge').filter({ hasText: 'complete' }).waitFor();
    await item.locator('[data-field="percent"]').filter({ hasText: '100%' }).waitFor();
    const files = (await call('GET', `/v1/exports/${id}`, READER)).body.files as { name: string; bytes: number }[];
    assert.ok(files.length >= 1);
    await item.getByRole('button', { name: `Download ${files[0].name}` }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), item.getByRole('button', { name: `Download ${files[0].name}` }).click()]);
    assert.equal(download.suggestedFilename(), files[0].name);
    const saved = join(ARTIFACTS, files[0].name);
    await download.saveAs(saved);
    assert.equal(statSync(saved).size, files[0].bytes);
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
