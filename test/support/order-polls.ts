import assert from 'node:assert/strict';
import http from 'node:http';
import { parseSafetensors } from '@sensory/client';
import { call, sleep, type Reply } from './process.js';

/**
 * Polling real orders over HTTP, shared by the process tests: one poll checked against each
 * sample's pixels, a ledger of the slots received, a poll cut off in the middle of its body.
 */

export const SAFETENSORS = 'application/x-safetensors';

export interface OrderView {
  id: string;
  dataset: string;
  status: string;
  size: number;
  shards: { total: number; done: number };
  samples: { produced: number; delivered: number };
  revision: number;
  seed: number;
  createdAt: string;
  expiresAt: string;
  error?: string;
}

export interface Polled {
  readonly slots: number[];
  readonly ids: number[];
  readonly done: boolean;
  readonly remaining: number;
}

/** A poll answered with something other than 200 (a 503, say): callers may retry it. */
export class PollError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`poll answered ${status}: ${body.slice(0, 300)}`);
  }
}

/** Every slot received, with the sample id it carried; a slot received twice is recorded. */
export class Ledger {
  readonly bySlot = new Map<number, number>();
  readonly doubled: number[] = [];
  polls = 0;

  add(polled: Polled): void {
    this.polls++;
    polled.slots.forEach((slot, i) => {
      if (this.bySlot.has(slot)) this.doubled.push(slot);
      else this.bySlot.set(slot, polled.ids[i]);
    });
  }

  /** Exactly slots 0..size-1, each once; each full epoch holds every sample once. */
  assertExact(size: number, ids: readonly number[]): void {
    assert.deepEqual(this.doubled.slice(0, 20), [], `${this.doubled.length} slot(s) received twice`);
    const missing: number[] = [];
    for (let slot = 0; slot < size; slot++) if (!this.bySlot.has(slot)) missing.push(slot);
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} slot(s) never received`);
    assert.equal(this.bySlot.size, size, 'slots outside 0..size-1 were received');
    const all = [...ids].sort((a, b) => a - b);
    for (let epoch = 0; epoch < Math.floor(size / ids.length); epoch++) {
      const seen = Array.from({ length: ids.length }, (_, i) => this.bySlot.get(epoch * ids.length + i)!).sort((a, b) => a - b);
      assert.deepEqual(seen, all, `epoch ${epoch} is not a permutation of the dataset`);
    }
    const counts = new Map<number, number>();
    for (const id of this.bySlot.values()) counts.set(id, (counts.get(id) ?? 0) + 1);
    if (size % ids.length === 0) for (const id of ids) assert.equal(counts.get(id), size / ids.length, `sample ${id} count`);
  }
}

export interface PixelShape {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** Order reads and polls with `key`, checking every polled sample against `pixelsById`. */
export function orderPolls(key: string, shape: PixelShape, pixelsById: ReadonlyMap<number, Buffer>) {
  const record = shape.width * shape.height * shape.channels;
  const request = (url: string, method: string, path: string, options: Parameters<typeof call>[4] = {}): Promise<Reply> =>
    call(url, key, method, path, { timeoutMs: 30_000, ...options });

  async function getOrder(url: string, id: string): Promise<OrderView> {
    const reply = await request(url, 'GET', `/v1/orders/${id}`);
    assert.equal(reply.status, 200, `${url}: ${reply.body.toString('utf8')}`);
    return reply.json() as OrderView;
  }

  async function waitForOrder(url: string, id: string, ok: (order: OrderView) => boolean, what: string, ms = 20_000): Promise<OrderView> {
    const deadline = performance.now() + ms;
    for (;;) {
      const order = await getOrder(url, id);
      if (ok(order)) return order;
      if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify(order)}`);
      await sleep(50);
    }
  }

  /** One poll as safetensors; checks the metadata, the headers and every sample's pixels. */
  async function poll(url: string, id: string, max: number, waitMs: number): Promise<Polled> {
    const reply = await request(url, 'POST', `/v1/orders/${id}/poll`, { json: { max, waitMs }, accept: SAFETENSORS, timeoutMs: waitMs + 30_000 });
    if (reply.status !== 200) throw new PollError(reply.status, reply.body.toString('utf8'));
    const file = parseSafetensors(reply.body);
    const slots = JSON.parse(file.metadata.slots) as number[];
    const ids = JSON.parse(file.metadata.ids) as number[];
    assert.equal(ids.length, slots.length);
    assert.ok(slots.length <= max, `a poll of max ${max} carried ${slots.length}`);
    assert.equal(reply.headers.get('sensory-done'), file.metadata.done);
    assert.equal(reply.headers.get('sensory-remaining'), file.metadata.remaining);
    const data = file.tensors.data;
    assert.deepEqual(data.shape, [slots.length, shape.height, shape.width, shape.channels]);
    for (let i = 0; i < ids.length; i++) {
      const expected = pixelsById.get(ids[i]);
      assert.ok(expected, `unknown sample id ${ids[i]}`);
      assert.ok(data.data.subarray(i * record, (i + 1) * record).equals(expected), `slot ${slots[i]} (sample ${ids[i]}) carries other pixels`);
    }
    return { slots, ids, done: file.metadata.done === 'true', remaining: Number(file.metadata.remaining) };
  }

  /**
   * Opens a poll with node:http (its own connection), reads the first `readBytes` of its body,
   * then calls `hangUp` (by default: destroys the socket). `complete` says the whole body
   * arrived first (the hang-up came too late to test anything).
   */
  function pollAndHangUp(
    url: string,
    id: string,
    body: { max: number; waitMs: number },
    accept: string,
    readBytes: number,
    hangUp?: () => Promise<unknown>,
  ): Promise<{ status: number; received: number; complete: boolean }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (result: { status: number; received: number; complete: boolean } | Error) => {
        if (settled) return;
        settled = true;
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const payload = JSON.stringify(body);
      const poll = http.request(new URL(`/v1/orders/${id}/poll`, url), {
        method: 'POST',
        agent: false,
        headers: { 'api-access-key': key, accept, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      });
      poll.setTimeout(30_000, () => finish(new Error('the poll did not answer within 30 s')));
      poll.on('error', (error) => finish(error));
      poll.on('response', (response) => {
        let received = 0;
        let hungUp = false;
        response.on('error', () => undefined);
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (hungUp || received < readBytes) return;
          hungUp = true;
          const status = response.statusCode ?? 0;
          if (!hangUp) {
            poll.destroy();
            response.socket?.destroy();
            finish({ status, received, complete: false });
            return;
          }
          response.pause();
          hangUp().then(
            () => {
              poll.destroy();
              finish({ status, received, complete: false });
            },
            (error: Error) => finish(error),
          );
        });
        response.on('end', () => finish({ status: response.statusCode ?? 0, received, complete: true }));
      });
      poll.end(payload);
    });
  }


  /**
   * Polls (max 1000, waitMs 2000) until the order says done. `tolerateMs`: how long errors (a
   * 503, a refused connection) are retried before the loop gives up; 0 → the first one throws.
   */
  async function pollUntilDone(
    url: () => string,
    id: string,
    ledger: Ledger,
    { deadlineMs = 60_000, tolerateMs = 0, context = () => '' }: { deadlineMs?: number; tolerateMs?: number; context?: () => string } = {},
  ): Promise<{ errors: string[] }> {
    const deadline = performance.now() + deadlineMs;
    const errors: string[] = [];
    let failingSince: number | undefined;
    for (;;) {
      assert.ok(
        performance.now() < deadline,
        `the order was not done after ${deadlineMs} ms (${ledger.bySlot.size} slots received; last errors: ${errors.slice(-2).join(' | ')})${context()}`,
      );
      let polled: Polled;
      try {
        polled = await poll(url(), id, 1000, 2000);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        failingSince ??= performance.now();
        errors.push((error as Error).message);
        if (performance.now() - failingSince > tolerateMs) throw error;
        await sleep(250);
        continue;
      }
      failingSince = undefined;
      ledger.add(polled);
      if (polled.done) return { errors };
    }
  }

  /** Waits (up to 5 s) for the order to leave `running`, asserts it is complete with every sample delivered, returns it. */
  async function assertCompleted(url: string, id: string, size: number): Promise<OrderView> {
    // The last poll's delivery is committed once its response is sent: the status follows.
    const done = await waitForOrder(url, id, (order) => order.status !== 'running', 'the order to settle', 5000);
    assert.equal(done.status, 'complete');
    assert.equal(done.samples.delivered, size);
    return done;
  }

  return { getOrder, waitForOrder, poll, pollUntilDone, assertCompleted, pollAndHangUp };
}
