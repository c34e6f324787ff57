/**
 * The lean result connection (src/adapters/queue/amqp-result-connection.ts) against the real broker, a
 * TCP relay in front of it (to cut the connection in the middle of a message) and, for frames no
 * real broker sends, a scripted peer on loopback.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { AmqpResultConnection, ResultChannelClosed } from '../src/adapters/queue/amqp-result-connection.js';
import { FRAME_BODY, FRAME_END, FRAME_HEADER, METHOD, MethodReader, MethodWriter } from '../src/adapters/queue/amqp-wire.js';
import { chunkPoolStats, releaseChunk } from '../src/lib/chunk-pool.js';
import { AMQP_URL, describeWithBroker } from './support/broker.js';

const tag = `test.reader.${process.pid}.${Date.now().toString(36)}`;
let queueNumber = 0;
const declared: string[] = [];

/** A fresh non-durable queue holding `bodies`, published with amqplib (confirmed). */
async function queueWith(connection: amqp.ChannelModel, bodies: readonly Buffer[]): Promise<string> {
  const name = `${tag}.${++queueNumber}`;
  declared.push(name);
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(name, { durable: false });
  for (const body of bodies) channel.sendToQueue(name, body, { persistent: false });
  await channel.waitForConfirms();
  await channel.close();
  return name;
}

async function readyCount(connection: amqp.ChannelModel, name: string): Promise<number> {
  const channel = await connection.createChannel();
  try {
    return (await channel.checkQueue(name)).messageCount;
  } finally {
    await channel.close();
  }
}

/** Waits until the queue has `count` ready messages (settles travel asynchronously). */
async function untilReady(connection: amqp.ChannelModel, name: string, count: number): Promise<void> {
  const deadline = performance.now() + 5000;
  while ((await readyCount(connection, name)) !== count) {
    if (performance.now() > deadline) assert.fail(`queue ${name} has ${await readyCount(connection, name)} ready messages, expected ${count}`);
    await sleep(20);
  }
}

/** A TCP relay to the broker; `cut()` drops every connection through it at once. */
async function relay(onBrokerBytes: (total: number) => void = () => undefined): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const target = new URL(AMQP_URL);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const broker = net.connect({ host: target.hostname, port: Number(target.port || 5672) });
    let total = 0;
    for (const socket of [client, broker]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(broker);
    broker.on('data', (chunk: Buffer) => {
      total += chunk.length;
      client.write(chunk);
      onBrokerBytes(total);
    });
    client.on('close', () => broker.destroy());
    broker.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const url = new URL(AMQP_URL);
  url.port = String(port);
  return {
    url: url.toString(),
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

await describeWithBroker('the result connection on RabbitMQ', () => {
  let connection: amqp.ChannelModel;
  const readers: AmqpResultConnection[] = [];
  const open = async (url = AMQP_URL, options = {}) => {
    const reader = await AmqpResultConnection.open(url, options);
    readers.push(reader);
    return reader;
  };

  before(async () => {
    connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
  });

  after(async () => {
    for (const reader of readers) await reader.close();
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    for (const name of declared) await channel.deleteQueue(name).catch(() => undefined);
    await connection.close();
  });

  it('takes messages whole and in order, each into a pooled buffer, and answers undefined when the queue is empty', async () => {
    // Empty, one byte, one frame's worth and a byte more (frame max 131,072), a result message's size, and several MiB.
    const bodies = [0, 1, 131_064, 131_065, 1_021_432, 3 * 1024 * 1024 + 5].map((n) => randomBytes(n));
    const name = await queueWith(connection, bodies);
    const reader = await open();
    const lentBefore = chunkPoolStats().lentBytes;
    const taken = [];
    for (const body of bodies) {
      const message = await reader.get(name);
      assert.ok(message, 'a message');
      assert.equal(message.body.length, body.length);
      assert.ok(message.body.equals(body), `the body of ${body.length} bytes arrives as it was sent`);
      taken.push(message);
    }
    assert.equal(await reader.get(name), undefined);
    assert.ok(chunkPoolStats().lentBytes > lentBefore, 'the bodies are the chunk pool\'s buffers');
    for (const message of taken) {
      message.settle('ack');
      message.settle('requeue'); // a second settle is ignored
      releaseChunk(message.body);
    }
    assert.equal(chunkPoolStats().lentBytes, lentBefore);
    await untilReady(connection, name, 0);
    assert.equal(await reader.get(name), undefined);
  });

  it('requeue puts a message back in its place, drop removes it', async () => {
    const name = await queueWith(connection, [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    const reader = await open();
    const a = (await reader.get(name))!;
    const b = (await reader.get(name))!;
    a.settle('requeue');
    b.settle('drop');
    const again = (await reader.get(name))!;
    assert.equal(again.body.toString(), 'a');
    assert.equal((await reader.get(name))!.body.toString(), 'c');
    again.settle('ack');
  });

  it('a get on a missing queue rejects with the broker\'s 404; what was taken on that channel goes back; the reader goes on', async () => {
    const name = await queueWith(connection, [Buffer.from('kept')]);
    const reader = await open();
    const taken = (await reader.get(name))!;
    await assert.rejects(reader.get(`${tag}.no-such-queue`), (error: unknown) => error instanceof ResultChannelClosed && error.replyCode === 404);
    // Settling on the closed channel does nothing (the broker put the message back).
    taken.settle('ack');
    await untilReady(connection, name, 1);
    const again = (await reader.get(name))!;
    assert.equal(again.body.toString(), 'kept');
    again.settle('ack');
    await untilReady(connection, name, 0);
  });

  it('a message over maxBodyBytes is dropped as it arrives, never held; the next one is taken', async () => {
    const name = await queueWith(connection, [randomBytes(300_000), Buffer.from('small')]);
    const reader = await open(AMQP_URL, { maxBodyBytes: 100_000 });
    const lentBefore = chunkPoolStats().lentBytes;
    const message = (await reader.get(name))!;
    assert.equal(message.body.toString(), 'small');
    message.settle('ack');
    releaseChunk(message.body);
    assert.equal(chunkPoolStats().lentBytes, lentBefore);
    await untilReady(connection, name, 0);
  });

  it('a refused login fails the opening with the broker\'s reason', async () => {
    const url = new URL(AMQP_URL);
    url.password = 'not-the-password';
    await assert.rejects(AmqpResultConnection.open(url.toString()), /403 ACCESS_REFUSED/);
  });

  it('publishes confirmed, the bodies as they were, in order, also several at once', async () => {
    const name = await queueWith(connection, []);
    const results = await open();
    const bodies = [0, 1, 131_064, 131_065, 1_021_432, 3 * 1024 * 1024 + 5].map((n) => randomBytes(n));
    assert.deepEqual(await Promise.all(bodies.map((body) => results.publish(name, body))), bodies.map(() => 'published'));
    for (const body of bodies) {
      const message = (await results.get(name))!;
      assert.ok(message.body.equals(body), `a published body of ${body.length} bytes comes back as it was`);
      message.settle('ack');
      releaseChunk(message.body);
    }
    assert.equal(await results.get(name), undefined);
  });

  it("answers 'full' when a bounded queue refuses the publish, and publishes again once there is room", async () => {
    const name = `${tag}.${++queueNumber}`;
    declared.push(name);
    const channel = await connection.createChannel();
    await channel.assertQueue(name, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await channel.close();
    const results = await open();
    assert.equal(await results.publish(name, Buffer.from('one')), 'published');
    assert.equal(await results.publish(name, Buffer.from('two')), 'full');
    const one = (await results.get(name))!;
    one.settle('ack');
    assert.equal(await results.publish(name, Buffer.from('three')), 'published');
    assert.equal((await results.get(name))!.body.toString(), 'three');
  });

  it('the connection lost in the middle of a message: the get fails with a clear error, so does every later call, and every message not acknowledged is back in the queue', async () => {
    const bodies = [randomBytes(1000), randomBytes(8 * 1024 * 1024)];
    const name = await queueWith(connection, bodies);
    let cutAt = Number.POSITIVE_INFINITY;
    const proxy = await relay((total) => {
      if (total >= cutAt) proxy.cut();
    });
    try {
      const reader = await open(proxy.url);
      let lostWith: Error | undefined;
      reader.onClose((error) => (lostWith = error));
      const first = (await reader.get(name))!;
      assert.ok(first.body.equals(bodies[0]));
      const lentBefore = chunkPoolStats().lentBytes;
      // Cut once a first megabyte of the 8 MiB body has come through.
      cutAt = 1024 * 1024;
      await assert.rejects(reader.get(name), /closed the result connection|result connection failed/);
      assert.ok(lostWith, 'onClose heard of the loss');
      assert.equal(chunkPoolStats().lentBytes, lentBefore, 'the partly received body went back to the pool');
      await assert.rejects(reader.get(name), /closed the result connection|result connection failed/);
      first.settle('ack'); // too late: nothing is sent on a lost connection
      releaseChunk(first.body);
      await untilReady(connection, name, 2);
      await assert.rejects(reader.publish(name, Buffer.from('late')), /closed the result connection|result connection failed/);
    } finally {
      await proxy.close();
    }
  });

  it('a publish whose confirm the lost connection never brought fails with a clear error', async () => {
    const name = await queueWith(connection, []);
    const proxy = await relay();
    try {
      const results = await open(proxy.url);
      assert.equal(await results.publish(name, Buffer.from('first')), 'published');
      const publishing = results.publish(name, randomBytes(8 * 1024 * 1024));
      await sleep(1);
      proxy.cut();
      await assert.rejects(publishing, /closed the result connection|result connection failed/);
    } finally {
      await proxy.close();
    }
  });
});

// ---------------------------------------------------------------- a scripted peer

/** Frames from a byte stream (the scripted peer's side). */
function frames(onFrame: (type: number, channel: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let greeted = false;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    if (!greeted) {
      if (pending.length < 8) return;
      pending = pending.subarray(8);
      greeted = true;
      onFrame(0, 0, Buffer.alloc(0));
    }
    while (pending.length >= 7 && pending.length >= 8 + pending.readUInt32BE(3)) {
      const size = pending.readUInt32BE(3);
      onFrame(pending[0], pending.readUInt16BE(1), pending.subarray(7, 7 + size));
      pending = pending.subarray(8 + size);
    }
  };
}

function rawFrame(type: number, channel: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(8 + payload.length);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[7 + payload.length] = FRAME_END;
  return out;
}

function contentHeader(channel: number, size: number): Buffer {
  const payload = Buffer.alloc(14);
  payload.writeUInt16BE(60, 0);
  payload.writeBigUInt64BE(BigInt(size), 4);
  return rawFrame(FRAME_HEADER, channel, payload);
}

/**
 * A peer on loopback that opens like a broker (frame max 4096, no heartbeats) and answers each
 * basic.get with `onGet(channel, getNumber)`: the frames to send back.
 */
async function scriptedPeer(onGet: (channel: number, n: number) => Buffer[], tune = { frameMax: 4096, agreed: (_frameMax: number) => undefined as void }): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let gets = 0;
    socket.on(
      'data',
      frames((type, channel, payload) => {
        if (type === 0) {
          socket.write(new MethodWriter(METHOD.connectionStart).octet(0).octet(9).table({}).longstr(Buffer.from('PLAIN')).longstr(Buffer.from('en_US')).frame(0));
          return;
        }
        if (type !== 1) return;
        const method = new MethodReader(payload).method;
        if (method === METHOD.connectionStartOk) socket.write(new MethodWriter(METHOD.connectionTune).short(16).long(tune.frameMax).short(0).frame(0));
        else if (method === METHOD.connectionTuneOk) {
          const agreed = new MethodReader(payload);
          agreed.short();
          tune.agreed(agreed.long());
        }
        else if (method === METHOD.connectionOpen) socket.write(new MethodWriter(METHOD.connectionOpenOk).shortstr('').frame(0));
        else if (method === METHOD.channelOpen) socket.write(new MethodWriter(METHOD.channelOpenOk).longstr(Buffer.alloc(0)).frame(channel));
        else if (method === METHOD.basicGet) for (const frame of onGet(channel, ++gets)) socket.write(frame);
        else if (method === METHOD.connectionClose) socket.write(new MethodWriter(METHOD.connectionCloseOk).frame(0));
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }),
  };
}

const getOk = (channel: number, tag: number) => new MethodWriter(METHOD.basicGetOk).longlong(tag).octet(0).shortstr('').shortstr('q').long(0).frame(channel);
const getEmpty = (channel: number) => new MethodWriter(METHOD.basicGetEmpty).shortstr('').frame(channel);

it('a frame over the negotiated frame size closes the connection with an error saying so', async () => {
  const peer = await scriptedPeer((channel) => [getOk(channel, 1), contentHeader(channel, 10_000), rawFrame(FRAME_BODY, channel, Buffer.alloc(5000))]);
  try {
    const reader = await AmqpResultConnection.open(peer.url);
    const lentBefore = chunkPoolStats().lentBytes;
    await assert.rejects(reader.get('q'), /frame of 5000 bytes, over the negotiated frame size 4096/);
    await assert.rejects(reader.get('q'), /frame of 5000 bytes/);
    assert.equal(chunkPoolStats().lentBytes, lentBefore, 'the message begun went back to the pool');
  } finally {
    await peer.close();
  }
});

it('a body longer than its header announced closes the connection', async () => {
  const peer = await scriptedPeer((channel) => [getOk(channel, 1), contentHeader(channel, 10), rawFrame(FRAME_BODY, channel, Buffer.alloc(11))]);
  try {
    const reader = await AmqpResultConnection.open(peer.url);
    await assert.rejects(reader.get('q'), /a body longer than the 10 bytes its header announced/);
  } finally {
    await peer.close();
  }
});

it('the channel closed in the middle of a message: the get fails, the part received goes back to the pool, the next get opens the channel again', async () => {
  const peer = await scriptedPeer((channel, n) =>
    n === 1
      ? [getOk(channel, 1), contentHeader(channel, 6000), rawFrame(FRAME_BODY, channel, Buffer.alloc(3000)), new MethodWriter(METHOD.channelClose).short(406).shortstr('PRECONDITION_FAILED - test').short(60).short(70).frame(channel)]
      : [getEmpty(channel)],
  );
  try {
    const reader = await AmqpResultConnection.open(peer.url);
    const lentBefore = chunkPoolStats().lentBytes;
    await assert.rejects(reader.get('q'), (error: unknown) => error instanceof ResultChannelClosed && error.replyCode === 406);
    assert.equal(chunkPoolStats().lentBytes, lentBefore);
    assert.equal(await reader.get('q'), undefined);
    await reader.close();
  } finally {
    await peer.close();
  }
});

it("the frame size: a broker without a limit gets amqplib's default (128 KiB), a frameMax in the URL bounds what is accepted", async () => {
  const agreed: number[] = [];
  const peer = await scriptedPeer((channel) => [getOk(channel, 1), contentHeader(channel, 20_000), rawFrame(FRAME_BODY, channel, Buffer.alloc(10_000))], { frameMax: 0, agreed: (n) => void agreed.push(n) });
  try {
    const unbounded = await AmqpResultConnection.open(peer.url);
    const bounded = await AmqpResultConnection.open(`${peer.url}?frameMax=8192`);
    assert.deepEqual(agreed, [131_072, 8192]);
    await assert.rejects(bounded.get('q'), /frame of 10000 bytes, over the negotiated frame size 8192/);
    await unbounded.close();
  } finally {
    await peer.close();
  }
});
