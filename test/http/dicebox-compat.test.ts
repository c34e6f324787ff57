/**
 * An original dicebox client configuration against a real `sensory serve` process: the calls
 * its Python code made with `requests` (headers `Content-type`, `API-ACCESS-KEY`,
 * `API-VERSION: 0.3.0`; bodies from `json.dumps`, so with ", " and ": " separators; a GET that
 * carries a JSON body; base64 from Python 2's `encode('base64')`, wrapped every 76 characters),
 * written here with node:http, and the response shapes that code read back.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePng } from '../support/harness.js';
import { startServer, stop, type Server } from '../support/process.js';

const KEY = 'dicebox-legacy-key-0123456789';
const API_VERSION = '0.3.0';
/** What dicebox.config named the network: stores go to dataset <name>_<width>x<height>. */
const NAME = 'dice';
const WIDTH = 28;
const HEIGHT = 28;
const LEGACY_DATASET = `${NAME}_${WIDTH}x${HEIGHT}`;

/** Python's json.dumps: ", " between items and ": " after keys. */
function jsonDumps(value: Record<string, unknown>): string {
  return `{${Object.entries(value)
    .map(([key, item]) => `${JSON.stringify(key)}: ${JSON.stringify(item)}`)
    .join(', ')}}`;
}

/** Python 2's `bytes.encode('base64')`: MIME base64, a newline every 76 characters and at the end. */
function python2Base64(bytes: Buffer): string {
  return `${bytes.toString('base64').match(/.{1,76}/g)!.join('\n')}\n`;
}

interface Answer {
  readonly status: number;
  readonly text: string;
  json(): any;
}

describe('an original dicebox client against Sensory', () => {
  let workDir: string;
  let service: Server;

  /**
   * `make_sensory_api_call(end_point, json_data, call_type)`: requests.get/post(url, data=json_data,
   * headers=…) — a GET carries its JSON body too.
   */
  function apiCall(endPoint: string, jsonData: string | undefined, callType: 'GET' | 'POST', headers: Record<string, string> = {}): Promise<Answer> {
    const allHeaders: Record<string, string | number> = {
      'Content-type': 'application/json',
      'API-ACCESS-KEY': KEY,
      'API-VERSION': API_VERSION,
      'User-Agent': 'python-requests/2.18.4',
      Accept: '*/*',
      ...headers,
    };
    for (const [name, value] of Object.entries(headers)) if (value === '') delete allHeaders[name];
    const body = jsonData === undefined ? undefined : Buffer.from(jsonData, 'utf8');
    if (body) allHeaders['Content-Length'] = body.length;
    const { hostname, port } = new URL(service.url);
    return new Promise((resolve, reject) => {
      const request = http.request(
        { hostname, port, method: callType, path: `/${endPoint}`, headers: allHeaders },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: response.statusCode ?? 0, text, json: () => JSON.parse(text) });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  /** One image as the dicebox client sent it: {name, width, height, category, data: base64 PNG}. */
  async function store(category: string, png: Buffer): Promise<Answer> {
    return apiCall('api/sensory/store', jsonDumps({ name: NAME, width: WIDTH, height: HEIGHT, category, data: python2Base64(png) }), 'POST');
  }

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'sensory-dicebox-'));
    service = await startServer(join(workDir, 'data'), {
      SENSORY_LOG_LEVEL: 'warn',
      SENSORY_API_KEYS: `${KEY}:read,write`,
      SENSORY_API_VERSION: API_VERSION,
      SENSORY_LEGACY_DATASET: LEGACY_DATASET,
    });
  });

  after(async () => {
    if (service) await stop(service);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('version and plain health, without a key', async () => {
    const version = await apiCall('api/version', undefined, 'GET', { 'API-ACCESS-KEY': '', 'API-VERSION': '' });
    assert.equal(version.status, 200);
    assert.equal(version.json()['dicebox lib version'], API_VERSION);
    assert.equal(typeof version.json().version, 'string');
    const health = await apiCall('health/plain', undefined, 'GET', { 'API-ACCESS-KEY': '', 'API-VERSION': '' });
    assert.equal(health.status, 200);
    assert.equal(health.json(), true);
  });

  test('before anything is stored, the batch endpoints answer 404 naming SENSORY_LEGACY_DATASET', async () => {
    const category = await apiCall('api/sensory/category', '{}', 'GET');
    assert.equal(category.status, 404);
    assert.match(category.text, /SENSORY_LEGACY_DATASET/);
  });

  test('store → category → request → batch → poll, as the dicebox client and trainer did', async () => {
    const categories = ['1d6_1', '1d6_2', '1d6_3'];
    for (const [c, category] of categories.entries()) {
      for (let i = 0; i < 4; i++) {
        // Webcam frames: grayscale PNGs of another size than the network's; stored at 28×28×3.
        const answer = await store(category, await makePng(60, 50, 1, c * 10 + i));
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(answer.json(), { sensory_store: true });
      }
    }

    // get_category_map: a GET with a JSON body, as requests.get(url, data=json_data) sends it.
    const categoryAnswer = await apiCall('api/sensory/category', '{}', 'GET');
    assert.equal(categoryAnswer.status, 200, categoryAnswer.text);
    const categoryMap: Record<string, number> = categoryAnswer.json().category_map;
    assert.deepEqual(Object.keys(categoryMap).sort(), categories);
    assert.deepEqual(Object.values(categoryMap).sort(), [0, 1, 2]);

    // The small-batch approach: response['labels'], response['data'].
    const small = await apiCall('api/sensory/request', jsonDumps({ batch_size: 5, noise: 0 }), 'POST');
    assert.equal(small.status, 201, small.text);
    const { labels, data } = small.json();
    assert.equal(labels.length, 5);
    for (const label of labels) {
      assert.equal(label.length, 1);
      assert.ok(Object.values(categoryMap).includes(label[0]));
    }
    assert.equal(data.length, 5);
    for (const image of data) {
      assert.equal(image.length, HEIGHT);
      assert.equal(image[0].length, WIDTH);
      assert.equal(image[0][0].length, 3);
      assert.ok(image.flat(2).every((value: number) => Number.isInteger(value) && value >= 0 && value <= 255));
    }

    // get_batch: batch_request_id['batch_id'], then poll until batch_size samples came.
    const batchSize = 30; // more than the 12 stored: successive epochs
    const ordered = await apiCall('api/sensory/batch', jsonDumps({ batch_size: batchSize, noise: 0.5 }), 'POST');
    assert.equal(ordered.status, 202, ordered.text);
    const batchId: string = ordered.json().batch_id;
    assert.equal(typeof batchId, 'string');

    const imageLabels: number[][] = [];
    const deadline = performance.now() + 60_000;
    while (imageLabels.length < batchSize) {
      assert.ok(performance.now() < deadline, `polling: ${imageLabels.length} of ${batchSize} after 60 s`);
      const poll = await apiCall('api/sensory/poll', jsonDumps({ batch_id: batchId }), 'POST');
      assert.equal(poll.status, 200, poll.text);
      const { label, data: image } = poll.json();
      if (label === null) {
        assert.equal(image, null);
        await new Promise((resolve) => setTimeout(resolve, 20)); // the original slept and polled again
        continue;
      }
      assert.equal(label.length, 1);
      assert.ok(Object.values(categoryMap).includes(label[0]));
      assert.equal(image.length, HEIGHT);
      assert.equal(image[0].length, WIDTH);
      assert.equal(image[0][0].length, 3);
      imageLabels.push(label);
    }
    assert.equal(imageLabels.length, batchSize);
    // Every sample was handed over: nothing more comes.
    const after = await apiCall('api/sensory/poll', jsonDumps({ batch_id: batchId }), 'POST');
    assert.deepEqual(after.json(), { label: null, data: null });
  });

  test('the original error cases: no key 403, another API-VERSION 400, a body missing a field 400, an unknown batch 404', async () => {
    const noKey = await apiCall('api/sensory/request', jsonDumps({ batch_size: 1, noise: 0 }), 'POST', { 'API-ACCESS-KEY': '' });
    assert.equal(noKey.status, 403);
    const wrongKey = await apiCall('api/sensory/request', jsonDumps({ batch_size: 1, noise: 0 }), 'POST', { 'API-ACCESS-KEY': 'wrong-key-0123456789' });
    assert.equal(wrongKey.status, 403);
    const oldVersion = await apiCall('api/sensory/request', jsonDumps({ batch_size: 1, noise: 0 }), 'POST', { 'API-VERSION': '0.1.0' });
    assert.equal(oldVersion.status, 400);
    const noVersion = await apiCall('api/sensory/category', undefined, 'GET', { 'API-VERSION': '' });
    assert.equal(noVersion.status, 400);
    const missingField = await apiCall('api/sensory/store', jsonDumps({ name: NAME, width: WIDTH, height: HEIGHT, data: 'aGVsbG8=' }), 'POST');
    assert.equal(missingField.status, 400);
    const notAnImage = await apiCall('api/sensory/store', jsonDumps({ name: NAME, width: WIDTH, height: HEIGHT, category: 'x', data: python2Base64(Buffer.from('hello')) }), 'POST');
    assert.equal(notAnImage.status, 415);
    const tooMany = await apiCall('api/sensory/request', jsonDumps({ batch_size: 1000, noise: 0 }), 'POST');
    assert.equal(tooMany.status, 422);
    const unknownBatch = await apiCall('api/sensory/poll', jsonDumps({ batch_id: 'c0ffee00-0000-4000-8000-000000000000' }), 'POST');
    assert.equal(unknownBatch.status, 404);
    for (const answer of [noKey, oldVersion, missingField, notAnImage, tooMany, unknownBatch]) {
      assert.match(answer.json().error.code, /^SENSORY_ERR_/, 'errors keep the service\'s JSON shape');
    }
  });
});
