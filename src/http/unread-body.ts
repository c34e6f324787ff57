import type { IncomingMessage } from 'node:http';

/** At most this much of a refused body is read and dropped before the answer goes out. */
export const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
/** And for at most this long. */
export const DRAIN_LIMIT_MS = 10_000;

/**
 * Reads and drops what is left of a request body that will not be used (its request is refused
 * before or while reading it: 401, 404, 413 …), bounded in bytes and time. A reverse proxy that
 * streams bodies (nginx with proxy_request_buffering off) is still sending when an early answer
 * comes; if the service closed the connection then, the proxy would see it reset and answer its
 * own 502 instead of ours. Past the bounds the answer goes out anyway.
 */
export function drainUnreadBody(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.destroyed || raw.readableEnded) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let read = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('close', finish);
      raw.off('error', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > DRAIN_LIMIT_BYTES) finish();
    };
    const timer = setTimeout(finish, DRAIN_LIMIT_MS);
    timer.unref();
    raw.on('data', onData);
    raw.once('end', finish);
    raw.once('close', finish);
    raw.once('error', finish);
    raw.resume();
  });
}
