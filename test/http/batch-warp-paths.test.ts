/**
 * A noisy RGB safetensors batch is warped where it is sent from: in place in a chunk over a
 * WebAssembly memory on the event loop, or by warp threads into the chunk that an arena is. Either
 * way its pixels are those of warpInto on the stored pixels, sample by sample.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { warpInto } from '../../src/domain/augmentation.js';
import { removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

const SHAPE = { width: 100, height: 100, channels: 3 } as const;
const RECORD = SHAPE.width * SHAPE.height * SHAPE.channels;
/** Enough samples for a chunk above the 128 KiB that warp threads take. */
const COUNT = 8;

for (const [what, env] of [
  ['on the event loop, in place', {}],
  ['on warp threads, into the chunk', { SENSORY_WARP_THREADS: '2' }],
] as const) {
  describe(`noisy RGB safetensors batches warped ${what}`, () => {
    let t: TestApp;
    let pixels: Map<number, Buffer>;
    before(async () => {
      t = await startTestApp(env);
      ({ pixels } = await seedDataset(t, 'warped', SHAPE, COUNT, ['a', 'b']));
    });
    after(async () => {
      await t.close();
      removeDir(t.dataDir);
    });

    for (const noise of [1, 0.5]) {
      it(`every sample is warpInto of its stored pixels (noise ${noise}), and a second request gives the same bytes`, async () => {
        const body = { size: COUNT, seed: 31, noise };
        const request = (accept?: string) =>
          t.app.inject({ method: 'POST', url: '/v1/datasets/warped/batches', headers: { ...t.auth('read'), ...(accept ? { accept } : {}) }, payload: body });
        const json = (await request()).json() as { ids: number[]; augment: { rotation: number; scale: number }[] };
        const first = await request('application/x-safetensors');
        assert.equal(first.statusCode, 200, first.body);
        const parsed = parseSafetensors(first.rawPayload);
        assert.deepEqual(JSON.parse(parsed.metadata.ids), json.ids);
        const data = parsed.tensors.data.data;
        json.ids.forEach((id, i) => {
          const expected = new Uint8Array(RECORD);
          warpInto(pixels.get(id)!, SHAPE, json.augment[i], expected, 0);
          assert.deepEqual(new Uint8Array(data.subarray(i * RECORD, (i + 1) * RECORD)), expected, `sample ${i} (id ${id})`);
        });
        const second = await request('application/x-safetensors');
        assert.ok(second.rawPayload.equals(first.rawPayload));
      });
    }
  });
}
