/**
 * Curation on a dataset's view, in a real browser (Debian's Chromium driven by playwright-core
 * against a real `sensory serve`): a bulk relabel of 1,000 selected samples in one request and its
 * undo, tags added to a selection, the delete control shown to admin keys only, search by
 * filename and by tag, a sample's filename, tags (edited) and history, and the dataset's history.
 *
 * Needs /usr/bin/chromium. Outside CI the test is skipped when it is missing; under CI=true it fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { ensureBuilt, startServer, stop, type Server } from '../support/process.js';
import { tarOf } from '../support/tar.js';
import { axeViolations, launch, screenshot, skip } from './web-support.js';

const ADMIN = 'curation-admin-key-0123456789';
const WRITER = 'curation-write-key-0123456789';
const READER = 'curation-read-key-0123456789';
const DATASET = 'curated';
const MANY = 1000;

/** A distinct 8 × 8 PNG per seed (every pixel the seed's colour). */
function tinyPng(seed: number): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: seed % 256, g: (seed >> 8) % 256, b: 77 } } })
    .png()
    .toBuffer();
}

describe('web page: curation', { skip }, () => {
  let dataDir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const actionRequests: any[] = [];
  /** Samples outside the 1,000: filename → id. */
  const named = new Map<string, number>();

  async function call(method: string, path: string, body?: unknown, key = ADMIN) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'API-ACCESS-KEY': key, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  const revision = async (): Promise<number> => (await call('GET', `/v1/datasets/${DATASET}`)).body.revision;
  async function counts(): Promise<Record<string, number>> {
    const stats = (await call('GET', `/v1/datasets/${DATASET}/stats`)).body;
    return Object.fromEntries(stats.categories.filter((c: any) => c.train + c.test > 0).map((c: any) => [c.name, c.train + c.test]));
  }

  const samplesRegion = () => page.getByRole('region', { name: 'Samples', exact: true });
  const selectionBar = () => page.getByRole('region', { name: 'Selection' });
  const cells = () => page.locator('[role="gridcell"][data-sample-id]');
  const shownIds = async () => (await cells().evaluateAll((els) => els.map((el) => Number((el as HTMLElement).dataset.sampleId)))).sort((a, b) => a - b);

  async function signIn(key: string) {
    if (await page.getByRole('button', { name: 'Forget key' }).isVisible()) await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: DATASET }).waitFor();
  }

  async function filterCategory(category: string) {
    await samplesRegion().getByLabel('Category', { exact: true }).selectOption(category);
  }

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-curation-'));
    server = await startServer(dataDir, {
      SENSORY_API_KEYS: `boss@${ADMIN}:admin;labeller@${WRITER}:read,write;viewer@${READER}:read`,
      SENSORY_LOG_LEVEL: 'warn',
    });
    assert.equal((await call('PUT', `/v1/datasets/${DATASET}`, { width: 8, height: 8, channels: 3, testPercent: 0 })).status, 201);
    // 1,000 samples in "many" and five in "other", through the bulk endpoint (one tar).
    const members = [];
    for (let i = 0; i < MANY; i++) members.push({ name: `many/img-${String(i).padStart(4, '0')}.png`, data: await tinyPng(i) });
    for (let i = 0; i < 5; i++) members.push({ name: `other/${i < 2 ? 'zebra' : 'plain'}-${i}.png`, data: await tinyPng(MANY + i) });
    const response = await fetch(`${server.url}/v1/datasets/${DATASET}/samples/bulk`, {
      method: 'POST',
      headers: { 'API-ACCESS-KEY': ADMIN, 'Content-Type': 'application/x-tar' },
      body: new Uint8Array(await tarOf(members)),
    });
    const receipt = (await response.json()) as any;
    assert.equal(response.status, 201, JSON.stringify(receipt).slice(0, 500));
    assert.equal(receipt.stored, MANY + 5);
    const others = (await call('GET', `/v1/datasets/${DATASET}/samples?category=other`)).body.samples;
    for (const sample of others) named.set(sample.filename, sample.id);
    assert.equal(named.size, 5);
    // Two of them carry a tag.
    const tagged = await call('POST', `/v1/datasets/${DATASET}/samples/actions`, { action: 'tag', ids: [named.get('plain-2.png'), named.get('plain-3.png')], tags: ['blurry'] });
    assert.equal(tagged.status, 200, JSON.stringify(tagged.body));

    browser = await launch();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/samples/actions')) actionRequests.push(request.postDataJSON());
    });
    await page.goto(`${server.url}/#/datasets/${DATASET}`);
    await signIn(WRITER);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('a write key relabels 1,000 selected samples into a new category in one action, and undoes it', async () => {
    await filterCategory('many');
    await cells().first().waitFor();
    await cells().first().click({ modifiers: ['Control'] });
    await selectionBar().getByRole('button', { name: `Select all ${MANY.toLocaleString('en')} matching` }).click();
    await selectionBar().getByText(`All ${MANY.toLocaleString('en')} matching samples selected`).waitFor();
    assert.equal(await selectionBar().getByRole('button', { name: 'Delete…' }).count(), 0, 'a write key sees no delete');
    const before = await revision();
    await selectionBar().getByLabel('Relabel to', { exact: true }).fill('reviewed');
    await selectionBar().getByRole('button', { name: 'Relabel' }).click();
    const result = page.locator('.bulk-result[data-action="relabel"]');
    await result.waitFor();
    assert.equal(await result.getAttribute('data-changed'), String(MANY));
    assert.match(await result.innerText(), /Relabelled to reviewed: 1,000 changed, 0 unchanged, 0 not found/);
    // One request, with the filter rather than 1,000 ids.
    assert.equal(actionRequests.length, 1);
    assert.deepEqual(actionRequests[0], { action: 'relabel', category: 'reviewed', filter: { category: 'many' } });
    assert.equal(await revision(), before + 1, 'one revision for the whole relabel');
    assert.deepEqual(await counts(), { other: 5, reviewed: MANY });
    await axeViolations(page, 'the result of a bulk action');
    await screenshot(page, 'curation-bulk-result');

    await result.getByRole('button', { name: 'Undo' }).click();
    await page.locator('.bulk-result[data-action="undo"]').waitFor();
    assert.match(await page.locator('.bulk-result').innerText(), /Undid the relabel: 1,000 changed/);
    assert.equal(await page.locator('.bulk-result').getByRole('button', { name: 'Undo' }).isVisible(), false, 'an undo is not undone');
    assert.equal(await revision(), before + 2);
    assert.deepEqual(await counts(), { many: MANY, other: 5 });
  });

  test('a selection of a few cells is sent as ids; tags are added to it', async () => {
    await filterCategory('other');
    await page.locator(`[role="gridcell"][data-sample-id="${named.get('zebra-0.png')}"]`).click({ modifiers: ['Control'] });
    await page.locator(`[role="gridcell"][data-sample-id="${named.get('zebra-1.png')}"]`).click({ modifiers: ['Control'] });
    await selectionBar().getByText('2 samples selected').waitFor();
    await selectionBar().getByLabel('Tags to add or remove', { exact: true }).fill('striped, checked');
    await axeViolations(page, 'the selection bar with its actions');
    await screenshot(page, 'curation-selection-bar');
    await selectionBar().getByRole('button', { name: 'Add tags' }).click();
    await page.locator('.bulk-result[data-action="tag"]').waitFor();
    assert.equal(await page.locator('.bulk-result').getAttribute('data-changed'), '2');
    const last = actionRequests.at(-1);
    assert.deepEqual({ ...last, ids: [...last.ids].sort((a: number, b: number) => a - b) }, {
      action: 'tag',
      tags: ['striped', 'checked'],
      ids: [named.get('zebra-0.png'), named.get('zebra-1.png')].sort((a, b) => a! - b!),
    });
    const sample = (await call('GET', `/v1/datasets/${DATASET}/samples/${named.get('zebra-0.png')}`)).body;
    assert.deepEqual([...sample.tags].sort(), ['checked', 'striped']);
  });

  test('search by filename and by tag shows the matching cells', async () => {
    await filterCategory('');
    const search = samplesRegion().getByLabel('Search', { exact: true });
    await search.fill('zebra');
    await search.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('[role="gridcell"][data-sample-id]').length === n, 2);
    assert.deepEqual(await shownIds(), [named.get('zebra-0.png'), named.get('zebra-1.png')].sort((a, b) => a! - b!));
    await search.fill('');
    await search.press('Enter');
    const tag = samplesRegion().getByLabel('Tag', { exact: true });
    await tag.fill('blurry');
    await tag.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('[role="gridcell"][data-sample-id]').length === n, 2);
    assert.deepEqual(await shownIds(), [named.get('plain-2.png'), named.get('plain-3.png')].sort((a, b) => a! - b!));
    await axeViolations(page, 'the dataset view filtered by a tag');
    await screenshot(page, 'curation-search');
    await tag.fill('');
    await tag.press('Enter');
    // Newest first: the last sample added leads the grid.
    const newest = Math.max(...named.values());
    await samplesRegion().getByLabel('Order', { exact: true }).selectOption('newest');
    await page.locator('[role="gridcell"][data-index="0"]').and(page.locator(`[data-sample-id="${newest}"]`)).waitFor();
    await samplesRegion().getByLabel('Order', { exact: true }).selectOption('oldest');
    const oldest = (await call('GET', `/v1/datasets/${DATASET}/samples?limit=1`)).body.samples[0].id;
    await page.locator('[role="gridcell"][data-index="0"]').and(page.locator(`[data-sample-id="${oldest}"]`)).waitFor();
    // By category: cells grouped by name; a sample moved to "aardvark" leads, before the 1,000 of "many".
    const moved = named.get('plain-4.png')!;
    assert.equal((await call('PATCH', `/v1/datasets/${DATASET}/samples/${moved}`, { category: 'aardvark' })).status, 200);
    await samplesRegion().getByLabel('Order', { exact: true }).selectOption('category');
    await page.locator(`[role="gridcell"][data-index="0"][data-sample-id="${moved}"][data-category="aardvark"]`).waitFor();
    await page.locator('[role="gridcell"][data-index="1"][data-category="many"]').waitFor();
    const shown = await cells().evaluateAll((els) =>
      els.map((el) => [Number((el as HTMLElement).dataset.index), (el as HTMLElement).dataset.category!] as const).sort((a, b) => a[0] - b[0]).map(([, c]) => c),
    );
    assert.ok(shown.length > 2);
    assert.deepEqual(shown, [...shown].sort(), 'grouped by category name');
    await samplesRegion().getByLabel('Order', { exact: true }).selectOption('oldest');
    await page.locator('[role="gridcell"][data-index="0"]').and(page.locator(`[data-sample-id="${oldest}"]`)).waitFor();
    assert.equal((await call('PATCH', `/v1/datasets/${DATASET}/samples/${moved}`, { category: 'other' })).status, 200);
  });

  test('a sample shows its filename, tags (edited by a write key) and history', async () => {
    const id = named.get('zebra-0.png')!;
    await samplesRegion().getByLabel('Sample id', { exact: true }).fill(String(id));
    await samplesRegion().getByRole('button', { name: 'Open' }).click();
    const dialog = page.getByRole('dialog', { name: `Sample #${id}` });
    await dialog.locator('[data-field="filename"]').filter({ hasText: 'zebra-0.png' }).waitFor();
    assert.match(await dialog.locator('[data-field="tags"]').innerText(), /checked[\s\S]*striped|striped[\s\S]*checked/);
    const history = dialog.getByRole('region', { name: 'History' });
    await history.locator('tr[data-audit-action="add"]').waitFor();
    await history.locator('tr[data-audit-action="annotate"]').waitFor();
    await dialog.getByLabel('Tags', { exact: true }).fill('striped, keeper');
    await dialog.getByRole('button', { name: 'Save tags' }).click();
    await dialog.locator('[data-field="tags"]').filter({ hasText: 'keeper' }).waitFor();
    assert.deepEqual([...(await call('GET', `/v1/datasets/${DATASET}/samples/${id}`)).body.tags].sort(), ['keeper', 'striped']);
    await page.waitForFunction(() => document.querySelectorAll('.sample-history tr[data-audit-action="annotate"]').length >= 2);
    assert.match(await history.locator('tbody tr').first().innerText(), /labeller/);
    await axeViolations(page, 'a sample with its tags and history');
    await screenshot(page, 'curation-sample-history');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  test('the dataset\'s history lists who did what', async () => {
    const card = page.locator('section.history-card');
    await card.locator('tr[data-audit-action="relabel"]').first().waitFor();
    assert.match(await card.locator('tbody').innerText(), /labeller/);
  });

  test('delete is for admin keys: hidden for a read key and a write key, shown and confirmed for admin', async () => {
    await signIn(READER);
    await filterCategory('other');
    await page.locator(`[role="gridcell"][data-sample-id="${named.get('plain-4.png')}"]`).click({ modifiers: ['Control'] });
    await selectionBar().getByText('1 sample selected').waitFor();
    assert.equal(await selectionBar().getByRole('button', { name: 'Relabel' }).isVisible(), false, 'a read key sees no actions');
    assert.equal(await selectionBar().getByRole('button', { name: 'Delete…' }).isVisible(), false);

    await signIn(ADMIN);
    await filterCategory('other');
    await page.locator(`[role="gridcell"][data-sample-id="${named.get('plain-4.png')}"]`).click({ modifiers: ['Control'] });
    await page.locator(`[role="gridcell"][data-sample-id="${named.get('plain-3.png')}"]`).click({ modifiers: ['Control'] });
    const before = await revision();
    await selectionBar().getByRole('button', { name: 'Delete…' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete 2 samples?' });
    await confirm.waitFor();
    await axeViolations(page, 'the bulk delete confirmation');
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await page.locator('.bulk-result[data-action="delete"]').waitFor();
    assert.equal(await page.locator('.bulk-result').getAttribute('data-changed'), '2');
    assert.equal(await revision(), before + 1);
    assert.equal((await counts()).other, 3);
    // Undo brings them back as new samples.
    await page.locator('.bulk-result').getByRole('button', { name: 'Undo' }).click();
    await page.locator('.bulk-result[data-action="undo"]').waitFor();
    assert.equal(await page.locator('.bulk-result').getAttribute('data-restored'), '2');
    assert.equal((await counts()).other, 5);
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
