/**
 * OrderService without HTTP, on real in-process adapters and a fake clock: settlement and leases
 * (shared mode), cursors, acknowledgement and resume (cursor mode), ranks and reshape.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SensoryError } from '../../src/domain/errors.js';
import { encodeCursor } from '../../src/domain/order-cursor.js';
import type { ReceivedResult } from '../../src/ports/order-queue.js';
import {
  OWNER,
  assertExactlyOnce,
  drainCursor,
  drainShared,
  openWorld,
  pollOnce,
  pollSome,
  until,
  type ServiceWorld,
} from '../support/order-service.js';

async function rejects(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SensoryError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('orders (service): delivery', () => {
  let w: ServiceWorld;

  before(async () => {
    w = await openWorld();
    await w.seed('digits', 7);
    await w.startWorker(2);
  });
  after(() => w.close());

  async function place(request: Parameters<ServiceWorld['orders']['place']>[1]): Promise<string> {
    return (await w.orders.place('digits', request, OWNER)).order.spec.id;
  }

  it('shared mode: an answer not sent delivers nothing and comes again; a sent one counts once', async () => {
    const id = await place({ size: 40, seed: 1 });
    const cut = await pollSome(w.orders, id, OWNER, { max: 10 }, false);
    assert.equal((await w.orders.get(id)).samples.delivered, 0);
    const again = await pollSome(w.orders, id, OWNER, { max: 10 });
    assert.deepEqual(again.slots, cut.slots, 'the same samples, again');
    assert.equal((await w.orders.get(id)).samples.delivered, 10);
    const rest = await drainShared(w.orders, id, OWNER);
    assertExactlyOnce([...again.slots, ...rest.slots], 40);
    assert.equal(rest.polls >= 1, true);
    assert.equal((await w.orders.get(id)).status, 'complete');
  });

  it('shared mode: a poll whose replica died holds its samples until its lease ends, then they come again', async () => {
    const id = await place({ size: 20, shardSize: 5, seed: 2 }); // messages of 5: the lost poll holds one whole message
    await until(async () => (await w.orders.get(id)).samples.produced === 20, 'every sample produced');
    // The dying replica takes messages; the broker hands them back when its connection drops,
    // but the poll's lease stays in the order store.
    const held: ReceivedResult[] = [];
    const take = w.queue.takeResults.bind(w.queue);
    w.queue.takeResults = async (ref, max) => {
      const taken = await take(ref, max);
      held.push(...taken);
      return taken;
    };
    const lost = await w.orders.poll(id, OWNER, { max: 5, waitMs: 1000 });
    w.queue.takeResults = take;
    assert.equal(lost.count, 5);
    for (const message of held) message.requeue();
    const others = await drainUntilStuck(id);
    assert.equal(others.length, 15, 'everything but the leased samples');
    const stuck = await pollOnce(w.orders, id, OWNER, { max: 20 });
    assert.deepEqual([stuck.count, stuck.done, stuck.remaining], [0, false, 5]);
    w.clock.advance(10_000 + 1000); // SENSORY_ORDER_LEASE_MS + its waitMs
    const back = await drainShared(w.orders, id, OWNER);
    assert.deepEqual([...back.slots].sort((a, b) => a - b), [...lost.slots].sort((a, b) => a - b));
    assertExactlyOnce([...others, ...back.slots], 20);
    assert.equal((await w.orders.get(id)).samples.delivered, 20);
  });

  /** Polls (shared) until nothing more comes without waiting on a lease. */
  async function drainUntilStuck(id: string): Promise<number[]> {
    const slots: number[] = [];
    for (;;) {
      const result = await pollOnce(w.orders, id, OWNER, { max: 20 });
      slots.push(...result.slots);
      if (result.count === 0) return slots;
    }
  }

  it('cursor mode: the same poll twice gives the same samples; only acknowledged samples count; the final ack completes', async () => {
    const id = await place({ size: 30, seed: 3 });
    const first = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 8 });
    const retry = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 8 });
    assert.deepEqual(retry.slots, first.slots, 'a retried poll (its answer lost) gives the same samples');
    assert.equal(retry.cursor, first.cursor);
    assert.equal((await w.orders.get(id)).samples.delivered, 0, 'sent is not delivered');
    const second = await pollSome(w.orders, id, OWNER, { cursor: first.cursor, ack: first.cursor, max: 8 });
    assert.equal((await w.orders.get(id)).streams[0].acknowledged, 8);
    const rest = await drainCursor(w.orders, id, OWNER, { max: 8 }, second.cursor!);
    assertExactlyOnce([...first.slots, ...second.slots, ...rest.slots], 30);
    const done = await w.orders.get(id);
    assert.deepEqual([done.status, done.samples.delivered, done.streams[0].mode], ['complete', 30, 'cursor']);
  });

  it('cursor mode: resume from a checkpoint takes back everything after it; without resume a cursor behind the acknowledged one is 409', async () => {
    const id = await place({ size: 40, seed: 4 });
    const a = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 10 });
    const checkpoint = a.cursor!;
    const b = await pollSome(w.orders, id, OWNER, { cursor: checkpoint, ack: checkpoint, max: 10 });
    await pollSome(w.orders, id, OWNER, { cursor: b.cursor, ack: b.cursor, max: 10 });
    assert.equal((await w.orders.get(id)).samples.delivered, 20);
    await rejects(w.orders.poll(id, OWNER, { cursor: checkpoint }), 'SENSORY_ERR_CURSOR_CONFLICT', /behind .*resume/);
    const resumed = await pollSome(w.orders, id, OWNER, { cursor: checkpoint, resume: true, max: 10 });
    assert.deepEqual(resumed.slots, b.slots, 'the samples after the checkpoint, again');
    assert.equal((await w.orders.get(id)).samples.delivered, 10, 'delivered now agrees with the checkpoint');
    const rest = await drainCursor(w.orders, id, OWNER, { max: 16 }, resumed.cursor!);
    assertExactlyOnce([...a.slots, ...resumed.slots, ...rest.slots], 40);
  });

  it('cursor mode: resume to a checkpoint once every sample after it was produced and sent (the queue empty) produces them again', async () => {
    const id = await place({ size: 24, shardSize: 8, seed: 6 });
    const a = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 6 });
    const checkpoint = a.cursor!;
    const rest = { slots: [] as number[], cursor: checkpoint };
    while (rest.slots.length < 18) {
      const next = await pollSome(w.orders, id, OWNER, { cursor: rest.cursor, ack: rest.cursor, max: 6 });
      rest.slots.push(...next.slots);
      rest.cursor = next.cursor!;
    }
    assert.equal((await w.orders.get(id)).samples.produced, 24);
    // The trainer dies before training on it, without the final acknowledgement: its checkpoint
    // is after the first 6. Nothing of the rest is in the queue any more.
    const resumed = await pollSome(w.orders, id, OWNER, { cursor: checkpoint, ack: checkpoint, resume: true, max: 6, waitMs: 500 }, true, 5_000);
    assert.deepEqual(resumed.slots, rest.slots.slice(0, 6), 'the samples after the checkpoint, again');
    const again = await drainCursor(w.orders, id, OWNER, { max: 6 }, resumed.cursor!);
    assertExactlyOnce([...a.slots, ...resumed.slots, ...again.slots], 24);
    assert.equal((await w.orders.get(id)).status, 'complete');
  });

  it('cursor mode: "start" continues after what was acknowledged; a lost result queue is made again from the cursor', async () => {
    const id = await place({ size: 200, seed: 5 });
    const ref = { orderId: id, generation: 0, stream: 0 };
    const a = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 30 });
    await pollSome(w.orders, id, OWNER, { cursor: a.cursor, ack: a.cursor, max: 30 }); // sent, never acknowledged
    await until(async () => (await w.orders.get(id)).samples.produced === 200, 'every sample produced');
    await w.queue.deleteResultQueue(ref);
    const rest = await drainCursor(w.orders, id, OWNER, { max: 50 });
    assert.deepEqual(rest.slots.slice(0, 1), [30], '"start" is the acknowledged position');
    assertExactlyOnce([...a.slots, ...rest.slots], 200);
    assert.ok((await w.orderStore.stream(ref))!.run >= 1, 'production started over');
  });

  it('modes and cursors: the other mode, a malformed or foreign cursor, ack past the cursor, max 0 without a cursor: refused, nothing changed', async () => {
    const id = await place({ size: 10, ranks: 2, seed: 6 });
    const other = await place({ size: 10, seed: 6 });
    await pollSome(w.orders, id, OWNER, { rank: 0, max: 2 }); // rank 0: shared
    await rejects(w.orders.poll(id, OWNER, { rank: 0, cursor: 'start' }), 'SENSORY_ERR_POLL_MODE_CONFLICT', /without cursors/);
    const c = await pollSome(w.orders, id, OWNER, { rank: 1, cursor: 'start', max: 2 }); // rank 1: cursor
    await rejects(w.orders.poll(id, OWNER, { rank: 1, max: 2 }), 'SENSORY_ERR_POLL_MODE_CONFLICT', /with cursors/);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: 'nonsense!' }), 'SENSORY_ERR_BAD_CURSOR', /^cursor /);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: c.cursor, ack: 'x' }), 'SENSORY_ERR_BAD_CURSOR', /^ack /);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: encodeCursor({ orderId: other, generation: 0, stream: 1, position: 1 }) }), 'SENSORY_ERR_CURSOR_CONFLICT', /another order/);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: encodeCursor({ orderId: id, generation: 0, stream: 0, position: 1 }) }), 'SENSORY_ERR_CURSOR_CONFLICT', /rank 0, not to rank 1/);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: 'start', ack: c.cursor }), 'SENSORY_ERR_BAD_CURSOR', /past the cursor/);
    await rejects(w.orders.poll(id, OWNER, { rank: 1, cursor: encodeCursor({ orderId: id, generation: 0, stream: 1, position: 6 }) }), 'SENSORY_ERR_BAD_CURSOR', /outside rank 1/);
    await rejects(w.orders.poll(id, OWNER, { rank: 2 }), 'SENSORY_ERR_RANK_OUT_OF_RANGE', /rank 2 does not exist: .* 2 rank\(s\)/);
    await rejects(w.orders.poll(id, OWNER, { rank: 0, max: 0 }), 'SENSORY_ERR_BAD_REQUEST', /max 0/);
    await rejects(w.orders.poll(id, OWNER, { rank: 0, ack: c.cursor }), 'SENSORY_ERR_BAD_REQUEST', /with a cursor/);
    const order = await w.orders.get(id);
    assert.deepEqual(order.streams.map((s) => [s.mode, s.delivered]), [['shared', 2], ['cursor', 0]], 'the refused polls changed nothing');
    for (const one of [id, other]) await w.orders.cancel(one, OWNER);
  });
});

describe('orders (service): ranks and reshape', () => {
  let w: ServiceWorld;

  before(async () => {
    w = await openWorld();
    await w.seed('digits', 7);
    await w.startWorker(2);
  });
  after(() => w.close());

  it('ranks: equal counts, disjoint parts whose union is the order, the same parts for the same seed', async () => {
    const parts: number[][][] = [];
    for (const seed of [11, 11]) {
      const id = (await w.orders.place('digits', { size: 36, ranks: 3, seed }, OWNER)).order.spec.id;
      const ranks = await Promise.all([0, 1, 2].map((rank) => drainCursor(w.orders, id, OWNER, { rank, max: 5 })));
      assert.deepEqual(ranks.map((r) => r.slots.length), [12, 12, 12]);
      assertExactlyOnce(ranks.flatMap((r) => r.slots), 36);
      ranks.forEach((r, rank) => assert.deepEqual(r.slots, Array.from({ length: 12 }, (_, p) => p * 3 + rank), `rank ${rank} holds slots p·3 + ${rank}`));
      parts.push(ranks.map((r) => r.ids));
      assert.equal((await w.orders.get(id)).status, 'complete');
    }
    assert.deepEqual(parts[1], parts[0], 'the same seed gives every rank the same samples, in the same order');
  });

  it('rounding: drop leaves the last samples out, repeat repeats the first ones; every rank gets as many', async () => {
    const drop = (await w.orders.place('digits', { size: 10, ranks: 3, rounding: 'drop', seed: 12 }, OWNER)).order;
    assert.equal(drop.slots, 9);
    const dropped = await Promise.all([0, 1, 2].map((rank) => drainShared(w.orders, drop.spec.id, OWNER, { rank })));
    assert.deepEqual(dropped.map((r) => r.slots.length), [3, 3, 3]);
    assertExactlyOnce(dropped.flatMap((r) => r.slots), 9);
    const repeat = (await w.orders.place('digits', { size: 10, ranks: 4, rounding: 'repeat', seed: 12 }, OWNER)).order;
    assert.equal(repeat.slots, 12);
    const repeated = await Promise.all([0, 1, 2, 3].map((rank) => drainShared(w.orders, repeat.spec.id, OWNER, { rank })));
    assert.deepEqual(repeated.map((r) => r.slots.length), [3, 3, 3, 3]);
    assertExactlyOnce(repeated.flatMap((r) => r.slots), 12);
    const bySlot = new Map(repeated.flatMap((r) => r.slots.map((slot, i) => [slot, r.ids[i]] as const)));
    assert.equal(bySlot.get(10), bySlot.get(0), 'slot 10 repeats slot 0');
    assert.equal(bySlot.get(11), bySlot.get(1));
  });

  it('reshape 2 → 1 mid-order, then 1 → 3: every slot delivered exactly once, equal counts per rank in each generation', async () => {
    const { order } = await w.orders.place('digits', { size: 60, ranks: 2, seed: 13 }, OWNER);
    const id = order.spec.id;
    const seen: number[] = [];
    // Uneven progress: rank 0 acknowledges 12, rank 1 acknowledges 4 and was sent 4 more.
    const r0 = await pollSome(w.orders, id, OWNER, { rank: 0, cursor: 'start', max: 12 });
    await pollOnce(w.orders, id, OWNER, { rank: 0, cursor: r0.cursor, ack: r0.cursor, max: 0 });
    const r1 = await pollSome(w.orders, id, OWNER, { rank: 1, cursor: 'start', max: 4 });
    await pollSome(w.orders, id, OWNER, { rank: 1, cursor: r1.cursor, ack: r1.cursor, max: 4 });
    seen.push(...r0.slots, ...r1.slots);
    const one = await w.orders.reshape(id, OWNER, { ranks: 1 });
    assert.deepEqual([one.generation, one.ranks, one.streams.map((s) => s.length), one.samples.delivered], [1, 1, [44], 16]);
    await rejects(w.orders.poll(id, OWNER, { rank: 1 }), 'SENSORY_ERR_RANK_OUT_OF_RANGE', /generation 1/);
    await rejects(w.orders.poll(id, OWNER, { rank: 0, cursor: r0.cursor }), 'SENSORY_ERR_CURSOR_CONFLICT', /generation 0 .*now generation 1/);
    const g1 = await pollSome(w.orders, id, OWNER, { cursor: 'start', max: 20 });
    await pollOnce(w.orders, id, OWNER, { cursor: g1.cursor, ack: g1.cursor, max: 0 });
    seen.push(...g1.slots);
    await rejects(w.orders.reshape(id, OWNER, { ranks: 5 }), 'SENSORY_ERR_UNEVEN_RANKS', /undelivered samples 24 is not a multiple of ranks 5/);
    const three = await w.orders.reshape(id, OWNER, { ranks: 3 });
    assert.deepEqual([three.generation, three.streams.map((s) => s.length)], [2, [8, 8, 8]]);
    const last = await Promise.all([0, 1, 2].map((rank) => drainCursor(w.orders, id, OWNER, { rank, max: 4 })));
    assert.deepEqual(last.map((r) => r.slots.length), [8, 8, 8]);
    seen.push(...last.flatMap((r) => r.slots));
    assertExactlyOnce(seen, 60);
    const done = await w.orders.get(id);
    assert.deepEqual([done.status, done.samples.delivered, done.slots], ['complete', 60, 60]);
    await rejects(w.orders.reshape(id, OWNER, { ranks: 1 }), 'SENSORY_ERR_ORDER_FINISHED');
  });

  it('reshape 8 → 4 with uneven shared progress, and 1 → 3 with repeat: every slot once, equal counts', async () => {
    const { order } = await w.orders.place('digits', { size: 80, ranks: 8, seed: 14 }, OWNER);
    const id = order.spec.id;
    const seen: number[] = [];
    for (let rank = 0; rank < 8; rank++) {
      for (let i = 0; i < rank % 3; i++) seen.push(...(await pollSome(w.orders, id, OWNER, { rank, max: 2 })).slots);
    }
    const four = await w.orders.reshape(id, OWNER, { ranks: 4, rounding: 'drop' });
    const undelivered = 80 - seen.length;
    assert.equal(four.slots, seen.length + Math.floor(undelivered / 4) * 4);
    const g1 = await Promise.all([0, 1, 2, 3].map((rank) => drainShared(w.orders, id, OWNER, { rank, max: 3 })));
    assert.equal(new Set(g1.map((r) => r.slots.length)).size, 1, 'equal counts');
    seen.push(...g1.flatMap((r) => r.slots));
    assert.equal(new Set(seen).size, seen.length, 'no slot twice');
    assert.equal(seen.length, four.slots);

    const second = (await w.orders.place('digits', { size: 20, seed: 15 }, OWNER)).order.spec.id;
    const head = await pollSome(w.orders, second, OWNER, { max: 6 });
    const three = await w.orders.reshape(second, OWNER, { ranks: 3, rounding: 'repeat' });
    assert.deepEqual([three.slots, three.streams.map((s) => s.length)], [21, [5, 5, 5]]);
    const g = await Promise.all([0, 1, 2].map((rank) => drainShared(w.orders, second, OWNER, { rank })));
    assertExactlyOnce([...head.slots, ...g.flatMap((r) => r.slots)], 21);
  });

  it('a reshape while a poll without cursor is sending is refused (409), and changes nothing', async () => {
    const id = (await w.orders.place('digits', { size: 20, ranks: 2, seed: 16 }, OWNER)).order.spec.id;
    const sending = await w.orders.poll(id, OWNER, { rank: 1, max: 3, waitMs: 2000 });
    await until(async () => sending.count > 0, 'a poll in flight');
    await rejects(w.orders.reshape(id, OWNER, { ranks: 1 }), 'SENSORY_ERR_ORDER_BUSY', /rank 1/);
    assert.deepEqual([(await w.orders.get(id)).generation, (await w.orders.get(id)).ranks], [0, 2]);
    await sending.settle(true);
    assert.equal((await w.orders.reshape(id, OWNER, { ranks: 1 })).generation, 1);
  });
});
