/**
 * Torch-ready small batches: labelDtype (int32, int64) and layout (nhwc, nchw) in both formats,
 * with every dtype, noise and channel count, against the plain batch of the same seed; and
 * their wrong forms; and orders served the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSafetensors } from '@sensory/client';
import { expectError, removeDir, seedDataset, startTestApp, type TestApp } from '../support/harness.js';

const SAFETENSORS = 'application/x-safetensors';

describe('labelDtype and layout', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    // The in-process worker that produces orders' samples.
    await t.runtime.startWorker(1);
    await seedDataset(t, 'rgb', { width: 7, height: 5, channels: 3 }, 12, ['cat', 'dog', 'eel']);
    await seedDataset(t, 'grey', { width: 6, height: 4, channels: 1 }, 6, ['a', 'b']);
  });
  after(async () => {
    await t.close();
    removeDir(t.dataDir);
  });

  const post = (dataset: string, body: Record<string, unknown>, accept?: string) =>
    t.app.inject({ method: 'POST', url: `/v1/datasets/${dataset}/batches`, headers: { ...t.auth('read'), ...(accept ? { accept } : {}) }, payload: body });
  const safetensors = async (dataset: string, body: Record<string, unknown>) => {
    const res = await post(dataset, body, SAFETENSORS);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(Number(res.headers['content-length']), res.rawPayload.length);
    return parseSafetensors(res.rawPayload);
  };
  const json = async (dataset: string, body: Record<string, unknown>) => {
    const res = await post(dataset, body);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { shape: number[]; labels: number[]; labelDtype?: string; layout: string; data: unknown[]; dtype: string };
  };

  /** NHWC values of sample n, read back at (c, y, x). */
  const at = (data: ArrayLike<number>, [, h, w, c]: number[], n: number, ch: number, y: number, x: number) => data[((n * h + y) * w + x) * c + ch];

  for (const [dataset, channels] of [['rgb', 3], ['grey', 1]] as const) {
    for (const dtype of ['uint8', 'float32'] as const) {
      for (const noise of [0, 1]) {
        it(`${dataset}, ${dtype}, noise ${noise}: nchw holds the nhwc values channels first, in safetensors and in JSON`, async () => {
          const body = { size: 5, seed: 11, noise, dtype };
          const nhwc = await safetensors(dataset, body);
          const nchw = await safetensors(dataset, { ...body, layout: 'nchw' });
          const [n, h, w, c] = nhwc.tensors.data.shape;
          assert.equal(c, channels);
          assert.deepEqual(nchw.tensors.data.shape, [n, c, h, w]);
          assert.equal(nchw.tensors.data.dtype, nhwc.tensors.data.dtype);
          assert.equal(nchw.metadata.layout, 'nchw');
          assert.equal(nhwc.metadata.layout, 'nhwc');
          assert.deepEqual(nchw.metadata.ids, nhwc.metadata.ids);
          const values = (file: ReturnType<typeof parseSafetensors>) => {
            const bytes = Uint8Array.from(file.tensors.data.data);
            return dtype === 'uint8' ? bytes : new Float32Array(bytes.buffer);
          };
          const a = values(nhwc);
          const b = values(nchw);
          for (let s = 0; s < n; s++) {
            for (let ch = 0; ch < c; ch++) {
              for (let y = 0; y < h; y++) {
                for (let x = 0; x < w; x++) assert.equal(b[((s * c + ch) * h + y) * w + x], at(a, [n, h, w, c], s, ch, y, x));
              }
            }
          }
          const text = await json(dataset, { ...body, layout: 'nchw' });
          assert.deepEqual(text.shape, [n, c, h, w]);
          assert.equal(text.layout, 'nchw');
          assert.deepEqual((text.data as unknown[]).flat(Infinity as 1), Array.from(b));
        });
      }
    }
  }

  it('labelDtype int64: safetensors I64 labels equal to the int32 ones; JSON says which', async () => {
    const int32 = await safetensors('rgb', { size: 8, seed: 4 });
    const int64 = await safetensors('rgb', { size: 8, seed: 4, labelDtype: 'int64' });
    assert.equal(int32.tensors.labels.dtype, 'I32');
    assert.equal(int64.tensors.labels.dtype, 'I64');
    assert.deepEqual(int64.tensors.labels.shape, [8]);
    assert.equal(int64.tensors.labels.data.length, 64);
    const wide = new BigInt64Array(Uint8Array.from(int64.tensors.labels.data).buffer);
    const narrow = new Int32Array(Uint8Array.from(int32.tensors.labels.data).buffer);
    assert.deepEqual(Array.from(wide, Number), Array.from(narrow));
    assert.ok(int64.tensors.data.data.equals(int32.tensors.data.data), 'the same pixels');
    const explicit = await safetensors('rgb', { size: 8, seed: 4, labelDtype: 'int32' });
    assert.ok(Buffer.from(explicit.tensors.labels.data).equals(Buffer.from(int32.tensors.labels.data)));

    const text = await json('rgb', { size: 8, seed: 4, labelDtype: 'int64', layout: 'nchw' });
    assert.equal(text.labelDtype, 'int64');
    assert.deepEqual(text.labels, Array.from(narrow));
    const onehot = await json('rgb', { size: 8, seed: 4, labels: 'onehot' });
    assert.equal(onehot.labelDtype, undefined, 'one-hot rows have no label dtype to report');
  });

  it('the same seed gives byte-identical torch-ready batches', async () => {
    const body = { size: 6, seed: 99, noise: 1, layout: 'nchw', labelDtype: 'int64', dtype: 'float32' };
    const one = await post('rgb', body, SAFETENSORS);
    const two = await post('rgb', body, SAFETENSORS);
    assert.ok(one.rawPayload.equals(two.rawPayload));
  });

  const wrong: Array<[string, Record<string, unknown>]> = [
    ['labelDtype "int16"', { labelDtype: 'int16' }],
    ['labelDtype "INT64"', { labelDtype: 'INT64' }],
    ['labelDtype 64', { labelDtype: 64 }],
    ['labelDtype null', { labelDtype: null }],
    ['layout "NCHW"', { layout: 'NCHW' }],
    ['layout "chw"', { layout: 'chw' }],
    ['layout 1', { layout: 1 }],
    ['layout ""', { layout: '' }],
  ];
  for (const [label, fields] of wrong) {
    it(`${label} is a 400 naming the field`, async () => {
      const field = Object.keys(fields)[0];
      for (const accept of [undefined, SAFETENSORS]) {
        const message = expectError(await post('rgb', { size: 2, ...fields }, accept), 400, 'SENSORY_ERR_BAD_REQUEST');
        assert.match(message, new RegExp(field));
      }
    });
  }

  it('labelDtype with one-hot labels is a 400 naming labelDtype (one-hot rows are uint8)', async () => {
    for (const labelDtype of ['int32', 'int64']) {
      const message = expectError(await post('rgb', { size: 2, labels: 'onehot', labelDtype }, SAFETENSORS), 400, 'SENSORY_ERR_BAD_REQUEST');
      assert.match(message, /labelDtype/);
    }
  });

  /** Every slot of an order polled to its end as safetensors: slot → [its label, its data bytes]. */
  const drainOrder = async (body: Record<string, unknown>) => {
    const placed = await t.app.inject({ method: 'POST', url: '/v1/datasets/rgb/orders', headers: t.auth('read'), payload: body });
    assert.equal(placed.statusCode, 202, placed.body);
    const id = placed.json().id as string;
    const bySlot = new Map<number, { label: number; data: Buffer; dtype: string; shape: number[] }>();
    for (let polls = 0; polls < 200; polls++) {
      const res = await t.app.inject({ method: 'POST', url: `/v1/orders/${id}/poll`, headers: { ...t.auth('read'), accept: SAFETENSORS }, payload: { max: 64, waitMs: 2000 } });
      assert.equal(res.statusCode, 200, res.body);
      const file = parseSafetensors(res.rawPayload);
      const slots = JSON.parse(file.metadata.slots) as number[];
      const { labels, data } = file.tensors;
      const per = slots.length ? data.data.length / slots.length : 0;
      const wide = labels.dtype === 'I64';
      const view = Buffer.from(labels.data);
      slots.forEach((slot, i) =>
        bySlot.set(slot, { label: wide ? Number(view.readBigInt64LE(i * 8)) : view.readInt32LE(i * 4), data: Buffer.from(data.data.subarray(i * per, (i + 1) * per)), dtype: labels.dtype, shape: data.shape.slice(1) }),
      );
      if (file.metadata.done === 'true') return bySlot;
    }
    throw new Error(`order ${id} not done`);
  };

  it('orders take labelDtype int64 and layout nchw: the same samples as the plain order of that seed, labels I64, data channels first', async () => {
    const plain = await drainOrder({ size: 20, seed: 4 });
    const torch = await drainOrder({ size: 20, seed: 4, labelDtype: 'int64', layout: 'nchw' });
    assert.equal(torch.size, 20);
    for (const [slot, sample] of plain) {
      const ready = torch.get(slot)!;
      assert.equal(ready.dtype, 'I64');
      assert.equal(sample.dtype, 'I32');
      assert.equal(ready.label, sample.label, `slot ${slot}: the same label`);
      assert.deepEqual(sample.shape, [5, 7, 3]);
      assert.deepEqual(ready.shape, [3, 5, 7]);
      for (let c = 0; c < 3; c++) for (let y = 0; y < 5; y++) for (let x = 0; x < 7; x++) assert.equal(ready.data[(c * 5 + y) * 7 + x], sample.data[(y * 7 + x) * 3 + c]);
    }
  });

  it('orders: labelDtype with one-hot labels, and wrong values, are a 400 naming the field; no order placed', async () => {
    const before = (await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('admin') })).json().orders.length;
    for (const fields of [{ labels: 'onehot', labelDtype: 'int64' }, { labelDtype: 'int16' }, { layout: 'chw' }]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/datasets/rgb/orders', headers: t.auth('read'), payload: { size: 4, ...fields } });
      assert.match(expectError(res, 400, 'SENSORY_ERR_BAD_REQUEST'), fields.labels ? /labelDtype/ : new RegExp(Object.keys(fields)[0]));
    }
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('admin') })).json().orders.length, before);
  });

  it('the OpenAPI description documents both fields, with their values, for batches and orders', async () => {
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as any;
    const schemaOf = (path: string) => spec.paths[path].post.requestBody.content['application/json'].schema;
    for (const path of ['/v1/datasets/{name}/batches', '/v1/datasets/{name}/orders']) {
      const fields = schemaOf(path).properties;
      assert.deepEqual(fields.labelDtype.enum, ['int32', 'int64'], path);
      assert.deepEqual(fields.layout.enum, ['nhwc', 'nchw'], path);
    }
  });
});
