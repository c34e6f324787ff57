/** What the browser tests share: Chromium's launch, axe-core, screenshots, heap and element counts. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../support/process.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');

const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing && process.env.CI === 'true') {
  throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium); under CI the browser test must run`);
}
export const skip = chromiumMissing ? `${CHROMIUM} is missing: install it with apt-get install -y chromium to run the browser test` : false;

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Evaluated through the DevTools protocol: the page's Content-Security-Policy (script-src 'self') stays on.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Fails on axe-core's serious and critical violations of the page as it is (WCAG 2.x A and AA, best practices, names matching visible text). */
export async function axeViolations(page: Page, what: string): Promise<void> {
  if (!(await page.evaluate(() => Boolean((window as any).axe)))) await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const result = await (window as any).axe.run(document, {
      resultTypes: ['violations'],
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      // Experimental in axe, so off by default: a control's accessible name must contain its visible text.
      rules: { 'label-content-name-mismatch': { enabled: true } },
    });
    return result.violations
      .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
      .map((v: any) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')).join(' | ')}`);
  });
  assert.deepEqual(found, [], `axe on ${what}`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** The page's elements, counted. */
export const elementCount = (page: Page): Promise<number> => page.evaluate(() => document.getElementsByTagName('*').length);

/** The JS heap in use after a full garbage collection, with ArrayBuffer backing stores (typed arrays), in bytes. */
export async function heapUsed(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('HeapProfiler.collectGarbage');
    const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
    return usage.usedSize + (usage.backingStorageSize ?? 0);
  } finally {
    await cdp.detach();
  }
}

/** A real drop of files or folders from the file system (Chromium's input layer, as a person's drag). */
export async function dropPaths(page: Page, selector: string, paths: string[]): Promise<void> {
  const box = await page.locator(selector).boundingBox();
  assert.ok(box, `${selector} is on screen`);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const cdp = await page.context().newCDPSession(page);
  try {
    const data = { items: [], files: paths, dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  } finally {
    await cdp.detach();
  }
}

/** An API call with `key`: a JSON body, or PNG bytes as a raw body; the answer's status and JSON. */
export async function apiCall(url: string, key: string, method: string, path: string, body?: unknown, bytes?: Buffer): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'API-ACCESS-KEY': key, ...(bytes ? { 'Content-Type': 'image/png' } : body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: bytes ? new Uint8Array(bytes) : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** A page at desktop size on a dataset's view, signed in with `key`; script errors go to `errors`. */
export async function openDatasetView(browser: Browser, url: string, key: string, dataset: string, errors: string[]): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  await page.goto(`${url}/#/datasets/${dataset}`);
  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { level: 1, name: dataset }).waitFor();
  return page;
}
