/**
 * The web page at scale, in Chromium against a real `sensory serve`: a dataset of 100,000 samples
 * (SENSORY_WEB_SCALE_SAMPLES to change it; tiny PNGs made here and sent through the bulk endpoint)
 * browsed from the first sample to the last with the page's element count and JS heap checked
 * flat; previews of camera-sized JPEGs checked small per sample; and the page's upload rate
 * against `sensory import` for files of the same kind and number.
 *
 * Needs /usr/bin/chromium (see web.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { ensureBuilt, runCli, startServer, stop, type Server } from '../support/process.js';
import { tarOf } from '../support/tar.js';
import { elementCount, heapUsed, launch, screenshot, skip } from './web-support.js';

const ADMIN = 'scale-admin-key-0123456789';
const SAMPLES = Number(process.env.SENSORY_WEB_SCALE_SAMPLES ?? 100_000);
const BIG = 'big';
const PER_REQUEST = 5000;

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** An 8 × 8 grey PNG whose pixels spell `n` (every n gives other bytes), made without a codec. */
function tinyPng(n: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(8, 0);
  header.writeUInt32BE(8, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  const rows = Buffer.alloc(8 * 9);
  for (let y = 0; y < 8; y++) {
    rows[y * 9] = 0; // filter: none
    for (let x = 0; x < 8; x++) rows[y * 9 + 1 + x] = y < 4 ? (n >>> (8 * (y % 4))) & 0xff : (x * 32 + y * 8) & 0xff;
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** A 28 × 28 RGB PNG of seeded noise (a few KiB, like a small real image). */
async function noisePng(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(28 * 28 * 3);
  let state = seed * 2654435761 || 1;
  for (let i = 0; i < pixels.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    pixels[i] = state & 0xff;
  }
  return sharp(pixels, { raw: { width: 28, height: 28, channels: 3 } }).png().toBuffer();
}

/** A 4000 × 3000 JPEG with shapes, a gradient and grain: megabytes, like a photo. */
async function cameraJpeg(seed: number): Promise<Buffer> {
  const [width, height] = [4000, 3000];
  const circles = Array.from({ length: 60 }, (_, i) => `<circle cx="${(i * 677 + seed * 91) % width}" cy="${(i * 419) % height}" r="${60 + (i % 7) * 30}" fill="rgb(${(i * 37) % 255},${(i * 91 + seed * 50) % 255},${(i * 13) % 255})"/>`).join('');
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="rgb(${(seed * 40) % 255},120,200)"/><stop offset="1" stop-color="rgb(250,${(seed * 70) % 255},40)"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>${circles}</svg>`,
  );
  const grain = await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian', mean: 0, sigma: 12 } } }).png().toBuffer();
  return sharp(svg).composite([{ input: grain, blend: 'overlay' }]).jpeg({ quality: 90 }).toBuffer();
}

describe('web page at scale', { skip }, () => {
  let dataDir: string;
  let fileDir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;

  async function call(method: string, path: string, body?: unknown) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'API-ACCESS-KEY': ADMIN, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  async function bulk(dataset: string, members: { name: string; data: Buffer }[]) {
    const response = await fetch(`${server.url}/v1/datasets/${dataset}/samples/bulk`, {
      method: 'POST',
      headers: { 'API-ACCESS-KEY': ADMIN, 'Content-Type': 'application/x-tar' },
      body: new Uint8Array(await tarOf(members)),
    });
    const result = (await response.json()) as any;
    assert.equal(response.status, 201, JSON.stringify(result).slice(0, 300));
    return result;
  }

  before(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sensory-web-scale-'));
    fileDir = mkdtempSync(join(tmpdir(), 'sensory-web-scale-files-'));
    server = await startServer(dataDir, { SENSORY_API_KEYS: `${ADMIN}:admin`, SENSORY_LOG_LEVEL: 'warn' });
    browser = await launch();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(server.url);
    await page.getByLabel('API key', { exact: true }).fill(ADMIN);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server) await stop(server);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (fileDir) rmSync(fileDir, { recursive: true, force: true });
  });

  test(`${SAMPLES.toLocaleString('en')} samples browsed to the end: element count and JS heap stay flat`, { timeout: 1_800_000 }, async (t) => {
    assert.equal((await call('PUT', `/v1/datasets/${BIG}`, { width: 8, height: 8, channels: 1 })).status, 201);
    const seeding = performance.now();
    for (let first = 0; first < SAMPLES; first += PER_REQUEST) {
      const members = [];
      for (let n = first; n < Math.min(SAMPLES, first + PER_REQUEST); n++) members.push({ name: `c${n % 10}/s${n}.png`, data: tinyPng(n) });
      const result = await bulk(BIG, members);
      assert.equal(result.stored, members.length);
    }
    const seeded = (performance.now() - seeding) / 1000;
    t.diagnostic(`seeded ${SAMPLES} samples through the bulk endpoint in ${seeded.toFixed(1)} s (${Math.round(SAMPLES / seeded)}/s)`);
    assert.equal((await call('GET', `/v1/datasets/${BIG}`)).body.sampleCount, SAMPLES);

    const thumbBytes: number[] = [];
    // The bytes on the wire, from Content-Length (the page reads the bodies itself).
    const onThumb = (response: { url(): string; status(): number; headers(): Record<string, string> }) => {
      if (/\/thumbnail\?size=/.test(response.url()) && response.status() === 200) thumbBytes.push(Number(response.headers()['content-length']));
    };
    page.on('response', onThumb);
    await page.goto(`${server.url}/#/datasets/${BIG}`);
    const viewport = page.locator('.grid-viewport');
    const settled = () =>
      page.waitForFunction(
        () => document.querySelectorAll('[role="gridcell"].pending').length === 0 && document.querySelectorAll('[role="gridcell"][data-sample-id]').length > 0 && document.querySelectorAll('[data-thumb="wanted"], [data-thumb="loading"]').length === 0,
        undefined,
        { timeout: 120_000 },
      );
    await settled();
    const startElements = await elementCount(page);
    const startHeap = await heapUsed(page);
    const counts: number[] = [startElements];
    const steps = 40;
    const browsing = performance.now();
    for (let step = 1; step <= steps; step++) {
      await viewport.evaluate((el, share) => {
        el.scrollTop = share * (el.scrollHeight - el.clientHeight);
      }, step / steps);
      await settled();
      counts.push(await elementCount(page));
    }
    const browsed = (performance.now() - browsing) / 1000;
    // At the end: the last sample, and the status counts them all.
    await page.locator(`[role="gridcell"][data-index="${SAMPLES - 1}"][data-sample-id="${SAMPLES}"]`).waitFor();
    assert.match(await page.locator('.grid-status').innerText(), new RegExp(`of ${SAMPLES.toLocaleString('en')} `));
    const endHeap = await heapUsed(page);
    const endElements = await elementCount(page);
    t.diagnostic(`browsed to the end in ${steps} jumps in ${browsed.toFixed(1)} s; elements ${Math.min(...counts)}–${Math.max(...counts)} (start ${startElements}, end ${endElements}); JS heap ${(startHeap / 2 ** 20).toFixed(1)} MiB → ${(endHeap / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(Math.max(...counts) <= startElements * 1.25 + 50, `elements stay flat: ${counts.join(', ')}`);
    // What grows with the dataset is a few bytes a listed sample (typed arrays), not elements or objects.
    assert.ok(endHeap - startHeap < 16 * 2 ** 20, `heap grew ${((endHeap - startHeap) / 2 ** 20).toFixed(1)} MiB`);
    const average = thumbBytes.reduce((a, b) => a + b, 0) / Math.max(1, thumbBytes.length);
    t.diagnostic(`${thumbBytes.length} previews loaded while browsing, ${Math.round(average)} bytes each on average`);
    assert.ok(thumbBytes.length > 0 && thumbBytes.every((n) => n > 0) && average < 1024);
    page.off('response', onThumb);

    // The keyboard reaches both ends and a position jumps there.
    await page.locator(`[role="gridcell"][data-index="${SAMPLES - 1}"]`).focus();
    await page.keyboard.press('Control+Home');
    await page.waitForFunction(() => (document.activeElement as HTMLElement | null)?.dataset.index === '0', undefined, { timeout: 60_000 });
    await page.keyboard.press('Control+End');
    await page.waitForFunction((last) => (document.activeElement as HTMLElement | null)?.dataset.index === String(last), SAMPLES - 1, { timeout: 60_000 });
    const middle = Math.floor(SAMPLES / 2);
    await page.getByLabel('Go to position').fill(String(middle));
    await page.getByRole('button', { name: 'Go', exact: true }).click();
    await page.waitForFunction((m) => (document.activeElement as HTMLElement | null)?.dataset.sampleId === String(m), middle, { timeout: 60_000 });
    await screenshot(page, 'grid-100k-desktop');
  });

  test('previews of 4000 × 3000 camera JPEGs cost the grid a few KiB per sample', { timeout: 600_000 }, async (t) => {
    assert.equal((await call('PUT', '/v1/datasets/photos', { width: 64, height: 48, channels: 3 })).status, 201);
    const members = [];
    let originals = 0;
    for (let i = 0; i < 6; i++) {
      const bytes = await cameraJpeg(i);
      originals += bytes.length;
      members.push({ name: `street/photo-${i}.jpg`, data: bytes });
    }
    await bulk('photos', members);
    const sizes: number[] = [];
    const listener = (response: { url(): string; status(): number; headers(): Record<string, string> }) => {
      if (/\/v1\/datasets\/photos\/samples\/\d+\/(thumbnail|content)/.test(response.url()) && response.status() === 200) sizes.push(Number(response.headers()['content-length']));
    };
    page.on('response', listener);
    await page.goto(`${server.url}/#/datasets/photos`);
    await page.waitForFunction(() => document.querySelectorAll('[role="gridcell"][data-thumb="done"]').length === 6, undefined, { timeout: 120_000 });
    page.off('response', listener);
    const perSample = sizes.reduce((a, b) => a + b, 0) / 6;
    t.diagnostic(`6 camera JPEGs, ${Math.round(originals / 6 / 1024)} KiB each: the grid fetched ${Math.round(perSample)} bytes per sample in ${sizes.length} requests`);
    assert.equal(sizes.length, 6);
    assert.ok(sizes.every((n) => n > 0));
    assert.ok(perSample < 12 * 1024, `${perSample} bytes per sample`);
  });

  test('uploading a folder tree from the page runs at least half the rate of sensory import', { timeout: 900_000 }, async (t) => {
    const FILES = Number(process.env.SENSORY_WEB_RATE_FILES ?? 2000);
    // Two trees of the same kind and number (distinct bytes, so neither run finds the other's blobs stored).
    const trees = { cli: join(fileDir, 'cli', 'digits'), page: join(fileDir, 'page', 'digits') };
    for (const [which, root] of Object.entries(trees)) {
      for (let i = 0; i < FILES; i++) {
        const folder = join(root, `class-${i % 10}`);
        mkdirSync(folder, { recursive: true });
        writeFileSync(join(folder, `${i}.png`), await noisePng(i * 2 + (which === 'cli' ? 1 : 2)));
      }
    }
    const cliStart = performance.now();
    const cli = runCli(['import', trees.cli, '--dataset', 'rate-cli', '--width', '28', '--height', '28', '--url', server.url, '--key', ADMIN], {});
    const exit = await cli.exit;
    const cliSeconds = (performance.now() - cliStart) / 1000;
    assert.equal(exit.code, 0, cli.stderr());
    assert.equal((await call('GET', '/v1/datasets/rate-cli')).body.sampleCount, FILES);

    assert.equal((await call('PUT', '/v1/datasets/rate-page', { width: 28, height: 28, channels: 3 })).status, 201);
    await page.goto(`${server.url}/#/datasets/rate-page`);
    await page.locator('input[webkitdirectory]').setInputFiles(trees.page);
    await page.locator('.chosen').filter({ hasText: `${FILES.toLocaleString('en')} files` }).waitFor();
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('.upload-summary[data-state="done"]').waitFor({ timeout: 600_000 });
    const pageSeconds = Number(await page.locator('.upload-summary').getAttribute('data-seconds'));
    assert.equal(await page.locator('.upload-summary').getAttribute('data-stored'), String(FILES));
    assert.equal((await call('GET', '/v1/datasets/rate-page')).body.sampleCount, FILES);
    const cliRate = FILES / cliSeconds;
    const pageRate = FILES / pageSeconds;
    t.diagnostic(`${FILES} files of 28 × 28: sensory import ${cliRate.toFixed(0)} files/s (${cliSeconds.toFixed(1)} s, process start included), the page ${pageRate.toFixed(0)} files/s (${pageSeconds.toFixed(1)} s): ${(pageRate / cliRate).toFixed(2)} of the CLI`);
    assert.ok(pageRate >= 0.5 * cliRate, `page ${pageRate.toFixed(0)}/s vs CLI ${cliRate.toFixed(0)}/s`);
    await screenshot(page, 'upload-summary-desktop');
  });
});
