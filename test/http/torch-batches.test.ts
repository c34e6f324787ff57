/**
 * Torch-ready small batches: labelDtype (int32, int64) and layout (nhwc, nchw) in both formats,
 * with every dtype, noise and channel count, against the plain batch of the same seed; and
 * their wrong forms, for batches and (not taking them yet) orders.
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

  it('orders do not take labelDtype or layout yet: a 400 naming the field, and no order placed', async () => {
    for (const fields of [{ labelDtype: 'int64' }, { layout: 'nchw' }]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/datasets/rgb/orders', headers: t.auth('read'), payload: { size: 4, ...fields } });
      assert.match(expectError(res, 400, 'SENSORY_ERR_BAD_REQUEST'), new RegExp(Object.keys(fields)[0]));
    }
    const orders = await t.app.inject({ method: 'GET', url: '/v1/orders', headers: t.auth('admin') });
    assert.deepEqual(orders.json().orders, []);
  });

  it('the OpenAPI description documents both fields for batches (with their values), and neither for orders', async () => {
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as any;
    const schemaOf = (path: string) => spec.paths[path].post.requestBody.content['application/json'].schema;
    const batch = schemaOf('/v1/datasets/{name}/batches').properties;
    assert.deepEqual(batch.labelDtype.enum, ['int32', 'int64']);
    assert.deepEqual(batch.layout.enum, ['nhwc', 'nchw']);
    const order = schemaOf('/v1/datasets/{name}/orders').properties;
    assert.equal(order.labelDtype, undefined);
    assert.equal(order.layout, undefined);
  });
});
