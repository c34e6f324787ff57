/**
 * The "Label review" card of a dataset's view, in a real browser (Debian's Chromium driven by
 * playwright-core against a real `sensory serve`): the samples a trainer's feedback points at as
 * mislabelled, one at a time with their preview, decided with one key each.
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
import { apiCall, axeViolations, launch, openDatasetView, screenshot, skip } from './web-support.js';

const ADMIN = 'review-admin-key-0123456789';
const DATASET = 'shapes-review';
const SHAPES = ['circle', 'square', 'triangle'];

async function shapePng(shape: number, seed: number): Promise<Buffer> {
  const r = 10 + (seed % 4);
  const c = 24 + ((seed * 5) % 16);
  const fill = `rgb(${(seed * 53) % 180 + 60},${(seed * 97) % 180 + 60},${(seed * 31) % 180 + 60})`;
  const body =
    shape === 0
      ? `<circle cx="${c}" cy="${c}" r="${r}" fill="${fill}"/>`
      : shape === 1
        ? `<rect x="${c - r}" y="${c - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`
        : `<polygon points="${c},${c - r} ${c - r},${c + r} ${c + r},${c + r}" fill="${fill}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="rgb(${seed * 7},20,30)"/>${body}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

describe('web page: label review', { skip }, () => {
  let dataDir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** The mislabelled samples, [id, label, shape shown]; in the queue's order once it is read. */
  const wrong: [number, number, number][] = [];

  const call = (method: string, path: string, body?: unknown, bytes?: Buffer) => apiCall(server.url, ADMIN, method, path, body, bytes);

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-review-'));
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_LOG_LEVEL: 'warn' });
    assert.equal((await call('PUT', `/v1/datasets/${DATASET}`, { width: 32, height: 32, channels: 3, categories: SHAPES })).status, 201);
    const items = [];
    for (let i = 0; i < 30; i++) {
      const truth = i % 3;
      const label = i % 10 === 4 ? (truth + 1) % 3 : truth;
      const stored = await call('POST', `/v1/datasets/${DATASET}/samples?category=${SHAPES[label]}`, undefined, await shapePng(truth, i + 1));
      assert.equal(stored.status, 201, JSON.stringify(stored.body));
      const probs = [0.05, 0.05, 0.05];
      probs[truth] = 0.9;
      if (label !== truth) wrong.push([stored.body.id, label, truth]);
      items.push({ id: stored.body.id, probs, loss: -Math.log(probs[label]) });
    }
    const fed = await call('POST', `/v1/datasets/${DATASET}/feedback`, { items });
    assert.equal(fed.status, 200, JSON.stringify(fed.body));
    browser = await launch();
    page = await openDatasetView(browser, server.url, ADMIN, DATASET, pageErrors);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('one sample at a time with its preview, label, suggestion and reasons; C, R, D and the arrows decide and move', async () => {
    const card = page.getByRole('region', { name: 'Label review' });
    const panel = card.getByRole('group', { name: 'Sample under review' });
    // The mislabelled three first; near-duplicates of theirs that carry the other label may follow.
    const before = (await call('GET', `/v1/datasets/${DATASET}/review?limit=200`)).body;
    const topIds: number[] = before.items.slice(0, 3).map((item: { id: number }) => item.id);
    assert.deepEqual([...topIds].sort((a, b) => a - b), wrong.map((w) => w[0]).sort((a, b) => a - b));
    wrong.sort((a, b) => topIds.indexOf(a[0]) - topIds.indexOf(b[0]));
    await card.locator('.review-summary').filter({ hasText: new RegExp(`^${before.total} samples to review\\.`) }).waitFor();
    const shown = () => panel.getAttribute('data-sample-id').then(Number);
    const [first, second, third] = wrong;
    assert.equal(await shown(), first[0]);
    await panel.locator('.review-label').filter({ hasText: SHAPES[first[1]] }).waitFor();
    await panel.locator('.review-suggested').filter({ hasText: SHAPES[first[2]] }).waitFor();
    assert.ok((await panel.locator('.review-reasons li[data-kind="confident_disagreement"]').count()) === 1);
    await panel.getByRole('img', { name: `Sample #${first[0]}, labelled ${SHAPES[first[1]]}` }).waitFor();
    await page.waitForFunction(() => ((document.querySelector('.review-preview') as HTMLImageElement | null)?.naturalWidth ?? 0) > 0);
    await axeViolations(page, 'the label review card');
    await screenshot(page, 'label-review');

    // Arrows: skip and come back.
    await panel.focus();
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((id) => document.querySelector('.review-panel')?.getAttribute('data-sample-id') === String(id), second[0]);
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction((id) => document.querySelector('.review-panel')?.getAttribute('data-sample-id') === String(id), first[0]);

    // R: relabelled to the suggestion, through the API's sample service.
    await page.keyboard.press('r');
    await page.waitForFunction((id) => document.querySelector('.review-panel')?.getAttribute('data-sample-id') === String(id), second[0]);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${first[0]}`)).body.category, SHAPES[first[2]]);

    // C: confirmed, the label stays.
    await page.keyboard.press('c');
    await page.waitForFunction((id) => document.querySelector('.review-panel')?.getAttribute('data-sample-id') === String(id), third[0]);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${second[0]}`)).body.category, SHAPES[second[1]]);

    // D: deleted (this key is admin).
    await page.keyboard.press('d');
    await page.waitForFunction((id) => document.querySelector('.review-panel')?.getAttribute('data-sample-id') !== String(id) || (document.querySelector('.review-panel') as HTMLElement | null)?.hidden, third[0]);
    assert.equal((await call('GET', `/v1/datasets/${DATASET}/samples/${third[0]}`)).status, 404);
    // What is left (near-duplicates of the relabelled one no longer conflict, so they left too), as the page says.
    const queue = (await call('GET', `/v1/datasets/${DATASET}/review?limit=200`)).body;
    assert.ok(queue.total < before.total - 2);
    await card.locator('.review-summary').filter({ hasText: queue.total === 0 ? /^Nothing to review/ : new RegExp(`^${queue.total} samples? to review\\.`) }).waitFor();
    assert.ok(!queue.items.some((item: { id: number }) => wrong.some((w) => w[0] === item.id)));
    await axeViolations(page, 'the emptied label review card');
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
