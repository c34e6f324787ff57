import assert from 'node:assert/strict';
import sharp from 'sharp';
import { call, sha256, sleep, type Reply } from './process.js';

/**
 * Upload traffic for fault tests: a few clients upload distinct PNGs in a loop through several
 * replicas while a fault happens, and the ledger keeps what each answer was. Afterwards it checks
 * the rules: only the expected statuses (an error status with the expected code), recovery, and
 * every acknowledged (201) upload still stored with its bytes.
 */
export class UploadLedger {
  /** sha256 → the sample id of every 201. */
  readonly acknowledged = new Map<string, number>();
  readonly statuses = new Map<number, number>();
  /** Error codes and messages of non-2xx answers, and network failures, as `status code: message`. */
  readonly errors: string[] = [];
  private counter = 0;
  private running = false;

  constructor(
    private readonly key: string,
    private readonly dataset: string,
    /** Distinguishes this ledger's images from every other ledger's in the same dataset. */
    private readonly tag: number,
    /** The dataset's shape: one byte per pixel, 8×8, unless told. */
    private readonly size = 8,
  ) {}

  /** A PNG no other upload of any ledger has: the counter and the tag are its first pixels. */
  async nextPng(): Promise<Buffer> {
    const pixels = Buffer.alloc(this.size * this.size);
    pixels.writeUInt32BE(this.counter++, 0);
    pixels.writeUInt32BE(this.tag, 4);
    return sharp(pixels, { raw: { width: this.size, height: this.size, channels: 1 } }).png().toBuffer();
  }

  async uploadOnce(url: string): Promise<Reply | Error> {
    const png = await this.nextPng();
    try {
      const reply = await call(url, this.key, 'POST', `/v1/datasets/${this.dataset}/samples?category=c${this.tag}`, { bytes: png, timeoutMs: 30_000 });
      this.statuses.set(reply.status, (this.statuses.get(reply.status) ?? 0) + 1);
      if (reply.status === 201) this.acknowledged.set(sha256(png), reply.json().id);
      else this.errors.push(`${reply.status} ${reply.body.toString('utf8').slice(0, 300)}`);
      return reply;
    } catch (error) {
      this.statuses.set(0, (this.statuses.get(0) ?? 0) + 1);
      this.errors.push(`network: ${(error as Error).message} ${String((error as { cause?: unknown }).cause ?? '')}`);
      return error as Error;
    }
  }

  /** Starts `clients` upload loops spread over `urls`; stop() ends them. */
  run(urls: readonly string[], clients: number): Promise<void> {
    this.running = true;
    return Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        while (this.running) {
          const reply = await this.uploadOnce(urls[i % urls.length]);
          // A refused upload is retried after a pause, as a client would.
          if (reply instanceof Error || reply.status !== 201) await sleep(50);
        }
      }),
    ).then(() => undefined);
  }

  async stop(traffic: Promise<void>): Promise<void> {
    this.running = false;
    await traffic;
  }

  count(status: number): number {
    return this.statuses.get(status) ?? 0;
  }

  summary(): string {
    return `${[...this.statuses].map(([status, n]) => `${n} × ${status || 'network error'}`).join(', ')}; ${this.acknowledged.size} acknowledged`;
  }

  /** Every answer had one of `statuses`; every error answer carries `code`; no network failure. */
  assertOnly(statuses: readonly number[], code: string): void {
    const unexpected = [...this.statuses.keys()].filter((status) => !statuses.includes(status));
    assert.deepEqual(unexpected, [], `unexpected answers (${this.summary()}):\n${this.errors.slice(0, 10).join('\n')}`);
    const wrongCode = this.errors.filter((line) => !line.includes(code));
    assert.deepEqual(wrongCode.slice(0, 5), [], `error answers without ${code}`);
    assert.ok(this.acknowledged.size > 0, 'some uploads were acknowledged');
  }

  /** Each URL accepts an upload again within `ms`. */
  async assertRecovers(urls: readonly string[], ms = 20_000): Promise<void> {
    for (const url of urls) {
      const deadline = performance.now() + ms;
      for (;;) {
        const reply = await this.uploadOnce(url);
        if (!(reply instanceof Error) && reply.status === 201) break;
        assert.ok(performance.now() < deadline, `${url} did not accept uploads again within ${ms} ms: ${this.errors.at(-1)}`);
        await sleep(250);
      }
    }
  }

  /** Every acknowledged upload is listed with its sha256, and its stored bytes are the ones sent. */
  async assertAllKept(url: string): Promise<void> {
    const listed = new Map<string, number>();
    let cursor: string | undefined;
    do {
      const reply = await call(url, this.key, 'GET', `/v1/datasets/${this.dataset}/samples?category=c${this.tag}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(reply.status, 200, reply.body.toString());
      const page = reply.json() as { samples: { id: number; sha256: string }[]; nextCursor?: string };
      for (const sample of page.samples) listed.set(sample.sha256, sample.id);
      cursor = page.nextCursor;
    } while (cursor);
    const lost = [...this.acknowledged].filter(([sha, id]) => listed.get(sha) !== id);
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} of ${this.acknowledged.size} acknowledged uploads are missing`);
    // The bytes of a spread of them, from the data dir.
    const ids = [...this.acknowledged].filter((_, i) => i % Math.max(1, Math.floor(this.acknowledged.size / 40)) === 0);
    for (const [sha, id] of ids) {
      const content = await call(url, this.key, 'GET', `/v1/datasets/${this.dataset}/samples/${id}/content`);
      assert.equal(content.status, 200, content.body.toString());
      assert.equal(sha256(content.body), sha, `sample ${id}'s bytes`);
    }
  }
}
