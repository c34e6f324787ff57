/**
 * The web page at `/` in a real browser: Debian's Chromium driven by playwright-core against a
 * real `sensory serve` process. Key entry (a wrong key shows the server's message), datasets,
 * upload with per-file results, the chart, filters, sample detail, relabel, delete (admin and
 * read-only), orders with live progress bars, and the layout at 390 px.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`). Outside CI the test is skipped when it
 * is missing; under CI=true it fails.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { ROOT, ensureBuilt, sha256, startServer, stop, type Server } from '../support/process.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const ADMIN = 'web-admin-key-0123456789';
const READER = 'web-read-key-0123456789';
const DATASET = 'pets';
const TEST_PERCENT = 50;

const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing && process.env.CI === 'true') {
  throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium); under CI the browser test must run`);
}
const skip = chromiumMissing ? `${CHROMIUM} is missing: install it with apt-get install -y chromium to run the browser test` : false;

/** The split rule of SPEC §3: the first 32 bits of the SHA-256 modulo 100, under testPercent → test. */
const splitOf = (bytes: Buffer) => (Number.parseInt(sha256(bytes).slice(0, 8), 16) % 100 < TEST_PERCENT ? 'test' : 'train');

describe('web page', { skip }, () => {
  let dataDir: string;
  let fileDir: string;
  let server: Server;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const files: { path: string; name: string; bytes: Buffer; width: number; height: number }[] = [];

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

  const uploadCategory = () => page.getByRole('region', { name: 'Upload images' }).getByLabel('Category', { exact: true });
  const categoryFilter = () => page.getByRole('region', { name: 'Samples', exact: true }).getByLabel('Category', { exact: true });

  async function signIn(key: string) {
    await page.getByLabel('API key', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Continue' }).click();
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
      const background = { r: (seed * 67) % 256, g: (90 + seed * 41) % 256, b: (200 + seed * 23) % 256 };
      const square = await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
      const bytes = await sharp({ create: { width, height, channels: 3, background } })
        .composite([{ input: square, left: 4 + (seed % 5) * 4, top: 6 }])
        .png()
        .toBuffer();
      const split = splitOf(bytes);
      if (wanted[split] === 0) continue;
      wanted[split]--;
      const name = `pet-${files.length + 1}.png`;
      const path = join(fileDir, name);
      writeFileSync(path, bytes);
      files.push({ path, name, bytes, width, height });
    }
    writeFileSync(join(fileDir, 'notes.txt'), 'not an image at all');
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin;${READER}:read`, SENSORY_LOG_LEVEL: 'warn' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // A 4xx that the page shows as an error message (401, 403, 409, 415) is logged by Chromium too: expected.
      if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
    });
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
    // The API keeps its own routes and JSON 404s.
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
    const missing = await fetch(`${server.url}/no-such-page`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, 'SENSORY_ERR_NOT_FOUND');
  });

  test('a wrong key shows the server message; the admin key opens the datasets view', async () => {
    await page.goto(server.url);
    const refused = await call('GET', '/v1/datasets', 'wrong-key-0123456789');
    assert.equal(refused.status, 401);
    await signIn('wrong-key-0123456789');
    await page.getByRole('alert').filter({ hasText: refused.body.error.message }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sensory.apiKey')), null);

    await signIn(ADMIN);
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sensory.apiKey')), ADMIN);
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

  test('uploading three PNGs shows three results, three thumbnails and the chart counts', async () => {
    await uploadCategory().fill('cats');
    await page.locator('input[type="file"]').setInputFiles(files.map((file) => file.path));
    await page.getByText('3 files chosen').waitFor();
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.results li[data-result="stored"]').nth(2).waitFor();
    assert.equal(await page.locator('.results li').count(), 3);
    assert.equal(await page.locator('progress').evaluate((el: HTMLProgressElement) => `${el.value}/${el.max}`), '3/3');

    const thumbs = page.locator('.thumbs li[data-sample-id]');
    await thumbs.nth(2).waitFor();
    assert.equal(await thumbs.count(), 3);
    // Each thumbnail is fetched with the key and shown from an object URL.
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('.thumbs img')].every((img) => img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0));

    const train = files.filter((file) => splitOf(file.bytes) === 'train').length;
    await expectChart('cats', train, 3 - train);
    assert.equal(await page.locator('[data-field="sampleCount"]').innerText(), '3');
    // The chart's numbers come from the stats endpoint, which needs the read role like the rest.
    const stats = await call('GET', `/v1/datasets/${DATASET}/stats`, READER);
    assert.deepEqual(stats.body, { dataset: DATASET, revision: 3, testPercent: TEST_PERCENT, train, test: 3 - train, categories: [{ name: 'cats', index: 0, train, test: 3 - train }] });
    assert.equal((await fetch(`${server.url}/v1/datasets/${DATASET}/stats`)).status, 401);

    // Again, with one file already stored and one that is not an image: each its own result.
    await page.locator('input[type="file"]').setInputFiles([files[0].path, join(fileDir, 'notes.txt')]);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.results li[data-result="rejected"]').waitFor();
    await page.locator('.results li[data-result="duplicate"]').waitFor();
    const rejected = await fetch(`${server.url}/v1/datasets/${DATASET}/samples?category=cats`, {
      method: 'POST',
      headers: { 'API-ACCESS-KEY': ADMIN, 'Content-Type': 'image/x-unknown' },
      body: 'not an image at all',
    });
    assert.equal(rejected.status, 415);
    const message = ((await rejected.json()) as any).error.message as string;
    assert.equal(await page.locator('.results li[data-result="rejected"] .result-message').innerText(), message);
    assert.equal(await thumbs.count(), 3);
  });

  test('the grid filters by category and split', async () => {
    const testCount = files.filter((file) => splitOf(file.bytes) === 'test').length;
    await page.getByRole('region', { name: 'Samples', exact: true }).getByLabel('Split').selectOption('test');
    await page.locator('.grid-status').filter({ hasText: `Showing ${testCount} of` }).waitFor();
    assert.equal(await page.locator('.thumbs li[data-sample-id]').count(), testCount);
    await page.getByRole('region', { name: 'Samples', exact: true }).getByLabel('Split').selectOption('all');
    await categoryFilter().selectOption('cats');
    await page.locator('.grid-status').filter({ hasText: 'Showing 3 of 3 samples' }).waitFor();
  });

  test('the detail shows the sample; relabelling moves it and updates the chart without a reload', async () => {
    const listed = await call('GET', `/v1/datasets/${DATASET}/samples`, ADMIN);
    const target = listed.body.samples[0];
    const file = files.find((f) => sha256(f.bytes) === target.sha256)!;
    await page.evaluate(() => ((window as any).__noReload = true));

    await page.locator(`.thumbs li[data-sample-id="${target.id}"] button`).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${target.id}` });
    await dialog.waitFor();
    await dialog.locator('[data-field="sha256"]').filter({ hasText: target.sha256 }).waitFor();
    assert.equal(await dialog.locator('[data-field="id"]').innerText(), String(target.id));
    assert.equal(await dialog.locator('[data-field="category"]').innerText(), 'cats');
    assert.equal(await dialog.locator('[data-field="revision"]').innerText(), String(target.revision));
    // The original at full size.
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('.detail-image img');
      return Boolean(img && img.complete && img.naturalWidth > 0);
    });
    const size = await dialog.locator('.detail-image img').evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight, img.width, img.height]);
    assert.deepEqual(size, [file.width, file.height, file.width, file.height]);

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
    await page.locator(`.thumbs li[data-sample-id="${target.id}"]`).waitFor({ state: 'detached' });
    await categoryFilter().selectOption('dogs');
    await page.locator('.grid-status').filter({ hasText: 'Showing 1 of 1 sample' }).waitFor();
    assert.equal(await page.locator('.thumbs li[data-sample-id]').count(), 1);
    assert.equal(await page.evaluate(() => (window as any).__noReload), true);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${target.id}`, ADMIN)).body.category, 'dogs');
  });

  test('deleting a sample asks first, then removes it and updates the counts', async () => {
    await categoryFilter().selectOption('');
    await page.locator('.grid-status').filter({ hasText: 'Showing 3 of 3 samples' }).waitFor();
    const cats = (await call('GET', `/v1/datasets/${DATASET}/samples?category=cats`, ADMIN)).body.samples;
    const victim = cats[0];
    await page.locator(`.thumbs li[data-sample-id="${victim.id}"] button`).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${victim.id}` });
    await dialog.locator('[data-field="sha256"]').filter({ hasText: victim.sha256 }).waitFor();

    // Cancel first: nothing happens.
    await dialog.getByRole('button', { name: 'Delete sample…' }).click();
    await page.getByRole('alertdialog', { name: `Delete sample #${victim.id}?` }).getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${victim.id}`, ADMIN)).status, 200);

    await dialog.getByRole('button', { name: 'Delete sample…' }).click();
    await page.getByRole('alertdialog', { name: `Delete sample #${victim.id}?` }).getByRole('button', { name: 'Delete', exact: true }).click();
    await page.locator(`.thumbs li[data-sample-id="${victim.id}"]`).waitFor({ state: 'detached' });
    await page.locator('[data-field="sampleCount"]').filter({ hasText: /^2$/ }).waitFor();
    const remainingCats = Number(await chartCount('cats', 'train')) + Number(await chartCount('cats', 'test'));
    assert.equal(remainingCats, 1);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${victim.id}`, ADMIN)).status, 404);
    assert.equal(await page.locator('.thumbs li[data-sample-id]').count(), 2);
  });

  test('know your data: near-duplicate and leakage reports, and the diff since the uploads', async () => {
    const card = page.getByRole('region', { name: 'Know your data' });
    await card.getByLabel('Distance (bits)').fill('12');
    await card.getByRole('button', { name: 'Find' }).click();
    await card.locator('.group-summary').filter({ hasText: /groups? of near-duplicates .* within 12 bits, at revision/ }).waitFor();
    await card.getByLabel('Report').selectOption('leakage');
    await card.getByRole('button', { name: 'Find' }).click();
    await card.locator('.group-summary').filter({ hasText: /across the train\/test split/ }).waitFor();
    // Since the three uploads (revision 3): the relabel and the delete of the tests above.
    await card.getByLabel('From revision').fill('3');
    await card.getByRole('button', { name: 'Compare' }).click();
    await card.locator('.diff-summary').filter({ hasText: /^From revision 3 to \d+: 0 added, 1 deleted, \d+ relabelled\.$/ }).waitFor();
    assert.ok((await card.locator('.diff tbody tr[data-category]').count()) >= 1);
    // A revision above the current one: the server's message, shown.
    await card.getByLabel('To revision').fill('999');
    await card.getByRole('button', { name: 'Compare' }).click();
    await card.getByRole('alert').filter({ hasText: /to 999 is above/ }).waitFor();
  });

  test('at 390 px the dataset view has no horizontal scrollbar; screenshot', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
    await page.screenshot({ path: join(ARTIFACTS, 'dataset-view.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.locator('.thumbs li[data-sample-id]').nth(1).waitFor();
    await page.locator('.bar-row[data-category="dogs"]').waitFor();
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(widths.scroll <= widths.client, `page is ${widths.scroll} px wide in a ${widths.client} px window`);
    await page.screenshot({ path: join(ARTIFACTS, 'dataset-view-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('every control is labelled and reachable by keyboard', async () => {
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('input, select, button, a[href]')]
        .filter((el) => {
          if ((el as HTMLInputElement).type === 'file') return (el as HTMLInputElement).labels?.length === 0;
          const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.textContent?.trim();
          return !labelled;
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabelled, []);
    // Tab reaches a thumbnail; Enter opens its detail; Escape closes it and gives focus back.
    await page.locator('.thumbs li[data-sample-id] button').first().focus();
    await page.keyboard.press('Enter');
    await page.locator('dialog.sample-dialog[open]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('dialog.sample-dialog[open]').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('thumb')), true);
  });

  test('with a read-only key, a delete shows the server 403 message', async () => {
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key', { exact: true }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sensory.apiKey')), null);
    await signIn(READER);
    await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
    const id = Number(await page.locator('.thumbs li[data-sample-id]').first().getAttribute('data-sample-id'));
    await page.locator(`.thumbs li[data-sample-id="${id}"] button`).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${id}` });
    await dialog.locator('[data-field="sha256"]').waitFor();
    await dialog.getByRole('button', { name: 'Delete sample…' }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Delete', exact: true }).click();
    const forbidden = await call('DELETE', `/v1/datasets/${DATASET}/samples/${id}`, READER);
    assert.equal(forbidden.status, 403);
    await dialog.getByRole('alert').filter({ hasText: forbidden.body.error.message }).waitFor();
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${id}`, ADMIN)).status, 200);
    await page.keyboard.press('Escape');
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
      // The page refreshes every second: it shows each step of the trainer's progress.
      await page.locator(`[data-order-id="${id}"] [role="progressbar"][aria-valuenow="${delivered}"]`).waitFor();
      seen.push(delivered);
    }
    assert.deepEqual(seen, [10, 20, 30]);
    await page.locator(`[data-order-id="${id}"] [data-field="percent"]`).filter({ hasText: '100%' }).waitFor();
    await page.locator(`[data-order-id="${id}"] .badge`).filter({ hasText: 'complete' }).waitFor();
    assert.match(await bar.getAttribute('aria-valuetext') ?? '', /^30 of 30 delivered \(100%\), 30 produced$/);

    const other = await call('POST', `/v1/datasets/${DATASET}/orders`, READER, { size: 5000, shardSize: 100 });
    const otherCard = page.locator(`[data-order-id="${other.body.id}"]`);
    await otherCard.getByRole('button', { name: `Cancel order ${other.body.id}` }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Cancel order' }).click();
    await otherCard.locator('.badge').filter({ hasText: 'cancelled' }).waitFor();
    assert.equal((await call('GET', `/v1/orders/${other.body.id}`, READER)).body.status, 'cancelled');
    await call('POST', `/v1/datasets/${DATASET}/orders`, READER, { size: 12_000, shardSize: 500 });
    await page.locator('.orders li').nth(2).waitFor();
    await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
    await page.screenshot({ path: join(ARTIFACTS, 'orders-view.png'), fullPage: true });
    await page.getByRole('link', { name: 'Datasets', exact: true }).click();
    await page.locator(`tr[data-dataset="${DATASET}"]`).waitFor();
    await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
    await page.screenshot({ path: join(ARTIFACTS, 'datasets-view.png'), fullPage: true });
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
