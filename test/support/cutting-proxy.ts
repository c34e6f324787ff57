import net from 'node:net';

export interface CutOptions {
  /** Which answer to cut, counting those that grow past `cutAfter` bytes while armed (1 unless told). */
  readonly nth?: number;
  /** Armed from the start (true unless told); otherwise from arm() on. */
  readonly armed?: boolean;
}

/**
 * A TCP proxy in front of a service that, while armed, cuts one connection (both sides at once)
 * once the `nth` long answer has passed `cutAfter` bytes: the service sees its response aborted
 * in the middle, the client a broken answer. It cuts once, then only relays.
 */
export class CuttingProxy {
  private readonly server = net.createServer((client) => this.connect(client));
  private readonly sockets = new Set<net.Socket>();
  private readonly nth: number;
  private armed: boolean;
  private longAnswers = 0;
  cuts = 0;
  /** Bytes of the cut answer that had reached the client. */
  bytesBeforeCut = 0;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly cutAfter: number,
    { nth = 1, armed = true }: CutOptions = {},
  ) {
    this.nth = nth;
    this.armed = armed;
  }

  /** The proxy's URL, on a free port of 127.0.0.1. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Cuts the next long answer (the `nth` from now). */
  arm(): void {
    this.armed = true;
    this.longAnswers = 0;
  }

  private connect(client: net.Socket): void {
    const upstream = net.connect(this.target);
    this.sockets.add(client).add(upstream);
    let answerBytes = 0;
    client.on('data', (chunk) => {
      answerBytes = 0; // a new request: count its answer from zero
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      const before = answerBytes;
      answerBytes += chunk.length;
      if (this.armed && before <= this.cutAfter && answerBytes > this.cutAfter && ++this.longAnswers === this.nth) {
        this.armed = false;
        this.cuts++;
        this.bytesBeforeCut = before;
        upstream.destroy();
        client.destroy();
        return;
      }
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
