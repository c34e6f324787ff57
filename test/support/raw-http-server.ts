import net from 'node:net';

/** Answers one whole request (head and its content-length body) by writing bytes to the socket. */
export type RawAnswer = (socket: net.Socket, request: string) => void;

/**
 * A raw TCP server for client tests that need exact answer bytes: it reads each whole HTTP/1.1
 * request and hands it to `answer`, which the test sets before each read.
 */
export interface RawHttpServer {
  answer: RawAnswer;
  readonly port: number;
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Destroys every open connection. */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startRawHttpServer(): Promise<RawHttpServer> {
  const open = new Set<net.Socket>();
  let connections = 0;
  const raw = {
    answer: (() => undefined) as RawAnswer,
    port: 0,
    url: '',
    get connections() {
      return connections;
    },
    cutAll() {
      for (const socket of open) socket.destroy();
    },
    async close() {
      raw.cutAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = net.createServer((socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(pending)?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      const request = pending.slice(0, end + 4 + length);
      pending = pending.slice(end + 4 + length);
      raw.answer(socket, request);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  raw.port = (server.address() as net.AddressInfo).port;
  raw.url = `http://127.0.0.1:${raw.port}`;
  return raw;
}
