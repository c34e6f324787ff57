/**
 * The Orders view of an order with ranks, in a real browser (Debian's Chromium driven by
 * playwright-core against a real `sensory serve`): each rank's progress is shown beside the
 * order's, follows the ranks' polls, and follows a reshape to another number of ranks.
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
import { apiCall, launch, screenshot, skip } from './web-support.js';

const ADMIN = 'ranks-admin-key-0123456789';
const DATASET = 'ranked';

describe('web page: an order with ranks', { skip }, () => {
  let dataDir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const call = (method: string, path: string, body?: unknown, bytes?: Buffer) => apiCall(server.url, ADMIN, method, path, body, bytes);

  const rankBar = (id: string, rank: number) => page.locator(`[data-order-id="${id}"] .order-rank[data-rank="${rank}"] [role="progressbar"]`);

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-ranks-'));
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_LOG_LEVEL: 'warn' });
    assert.equal((await call('PUT', `/v1/datasets/${DATASET}`, { width: 8, height: 8, channels: 1 })).status, 201);
    for (let i = 0; i < 6; i++) {
      const png = await sharp(Buffer.alloc(64, 20 + i * 30), { raw: { width: 8, height: 8, channels: 1 } }).png().toBuffer();
      assert.equal((await call('POST', `/v1/datasets/${DATASET}/samples?category=c${i % 2}`, undefined, png)).status, 201);
    }
    browser = await launch();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
    await page.goto(server.url);
    await page.getByLabel('API key', { exact: true }).fill(ADMIN);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('link', { name: 'Orders' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orders' }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('each rank shows its own progress, which follows its polls and a reshape', async () => {
    const placed = await call('POST', `/v1/datasets/${DATASET}/orders`, { size: 36, ranks: 3, seed: 4 });
    assert.equal(placed.status, 202);
    const id = placed.body.id as string;
    for (const rank of [0, 1, 2]) {
      await rankBar(id, rank).waitFor();
      assert.equal(await rankBar(id, rank).getAttribute('aria-valuemax'), '12');
      assert.equal(await rankBar(id, rank).getAttribute('aria-label'), `Order ${id} rank ${rank} delivered`);
    }

    // Rank 1 takes 8 of its 12, rank 2 all of its 12 (shared polls), rank 0 nothing yet.
    const take = async (rank: number, max: number) => {
      let got = 0;
      while (got < max) {
        const polled = await call('POST', `/v1/orders/${id}/poll`, { rank, max: max - got, waitMs: 5000 });
        assert.equal(polled.status, 200, JSON.stringify(polled.body));
        got += polled.body.ids.length;
      }
    };
    await take(1, 8);
    await take(2, 12);
    await page.locator(`[data-order-id="${id}"] .order-rank[data-rank="1"] [aria-valuenow="8"]`).waitFor();
    await page.locator(`[data-order-id="${id}"] .order-rank[data-rank="2"] [aria-valuenow="12"]`).waitFor();
    assert.equal(await rankBar(id, 0).getAttribute('aria-valuenow'), '0');
    assert.match(await page.locator(`[data-order-id="${id}"] .order-rank[data-rank="1"]`).innerText(), /Rank 1[\s\S]*8 \/ 12 · shared polls/);
    assert.match(await page.locator(`[data-order-id="${id}"] .order-rank[data-rank="0"]`).innerText(), /0 \/ 12 · not polled yet/);
    await screenshot(page, 'orders-ranks');

    // Reshape to 2 ranks: the 16 undelivered slots are dealt 8 and 8, and the page shows two rows.
    const reshaped = await call('POST', `/v1/orders/${id}/reshape`, { ranks: 2 });
    assert.equal(reshaped.status, 200, JSON.stringify(reshaped.body));
    await page.locator(`[data-order-id="${id}"] .order-rank`).nth(1).waitFor();
    await page.waitForFunction((orderId) => document.querySelectorAll(`[data-order-id="${orderId}"] .order-rank`).length === 2, id);
    for (const rank of [0, 1]) await page.locator(`[data-order-id="${id}"] .order-rank[data-rank="${rank}"] [aria-valuemax="8"][aria-valuenow="0"]`).waitFor();

    // An order of one rank shows no rank rows.
    const single = await call('POST', `/v1/datasets/${DATASET}/orders`, { size: 6, seed: 5 });
    await page.locator(`[data-order-id="${single.body.id}"] [role="progressbar"]`).first().waitFor();
    assert.equal(await page.locator(`[data-order-id="${single.body.id}"] .order-rank`).count(), 0);
    assert.equal(await page.locator(`[data-order-id="${single.body.id}"] .order-ranks`).isHidden(), true);
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
