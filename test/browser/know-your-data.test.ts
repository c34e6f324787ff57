/**
 * The "Know your data" card of a dataset's view, in a real browser (Debian's Chromium driven by
 * playwright-core against a real `sensory serve`): near-duplicate groups, the leakage report and
 * the diff between two revisions, with the server's message for a wrong revision.
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

const ADMIN = 'kyd-admin-key-0123456789';
const DATASET = 'looks';

describe('web page: know your data', { skip }, () => {
  let dataDir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const call = (method: string, path: string, body?: unknown, bytes?: Buffer) => apiCall(server.url, ADMIN, method, path, body, bytes);

  /** A picture with structure (a bright square on a gradient), so that its perceptual hash is not flat. */
  async function picture(side: number, offset: number, seed: number): Promise<Buffer> {
    const pixels = Buffer.alloc(side * side * 3);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const inSquare = x >= offset && x < offset + side / 3 && y >= side / 4 && y < side / 4 + side / 3;
        const at = (y * side + x) * 3;
        pixels[at] = inSquare ? 250 : (x * 4 + seed * 40) % 200;
        pixels[at + 1] = inSquare ? 240 : (y * 3 + seed * 70) % 200;
        pixels[at + 2] = inSquare ? 230 : ((x + y) * 2 + seed * 90) % 200;
      }
    }
    return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
  }

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-kyd-'));
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_LOG_LEVEL: 'warn' });
    assert.equal((await call('PUT', `/v1/datasets/${DATASET}`, { width: 32, height: 32, channels: 3, testPercent: 50 })).status, 201);
    // Three distinct pictures, and a near copy of the first (resized on upload: 64 px → 32 px).
    const ids: number[] = [];
    for (const [bytes, category] of [
      [await picture(32, 4, 1), 'a'],
      [await picture(32, 18, 2), 'b'],
      [await picture(32, 10, 3), 'b'],
      [await picture(64, 8, 1), 'a'],
    ] as const) {
      const stored = await call('POST', `/v1/datasets/${DATASET}/samples?category=${category}`, undefined, bytes);
      assert.equal(stored.status, 201, JSON.stringify(stored.body));
      ids.push(stored.body.id);
    }
    // After revision 4: one relabel and one delete, for the diff.
    assert.equal((await call('PATCH', `/v1/datasets/${DATASET}/samples/${ids[1]}`, { category: 'c' })).status, 200);
    assert.equal((await call('DELETE', `/v1/datasets/${DATASET}/samples/${ids[2]}`)).status, 200);
    browser = await launch();
    page = await openDatasetView(browser, server.url, ADMIN, DATASET, pageErrors);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('near-duplicate groups, the leakage report and the diff since the uploads; a wrong revision shows the server\'s message', async () => {
    const card = page.getByRole('region', { name: 'Know your data' });
    await card.getByLabel('Distance (bits)').fill('12');
    await card.getByRole('button', { name: 'Find' }).click();
    await card.locator('.group-summary').filter({ hasText: /groups? of near-duplicates .* within 12 bits, at revision 6/ }).waitFor();
    assert.ok((await card.locator('.groups > li').count()) >= 1, 'the near copy forms a group');
    await card.getByLabel('Report').selectOption('leakage');
    await card.getByRole('button', { name: 'Find' }).click();
    await card.locator('.group-summary').filter({ hasText: /across the train\/test split/ }).waitFor();
    await card.getByLabel('From revision').fill('4');
    await card.getByRole('button', { name: 'Compare' }).click();
    await card.locator('.diff-summary').filter({ hasText: /^From revision 4 to 6: 0 added, 1 deleted, 1 relabelled\.$/ }).waitFor();
    assert.ok((await card.locator('.diff tbody tr[data-category]').count()) >= 1);
    await axeViolations(page, 'the know-your-data card');
    await screenshot(page, 'know-your-data');
    await card.getByLabel('To revision').fill('999');
    await card.getByRole('button', { name: 'Compare' }).click();
    await card.getByRole('alert').filter({ hasText: /to 999 is above/ }).waitFor();
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
