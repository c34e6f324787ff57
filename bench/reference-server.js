// The reference for figures 1, 2 and 10: a bare node:http server that answers every request
// with one preallocated Buffer: the bytes of REF_FILE (the very answer Sensory gave), or
// REF_BYTES bytes of a pattern. Started as its own child process, like the service.
import { readFileSync } from 'node:fs';
import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
let payload;
if (process.env.REF_FILE) {
  payload = readFileSync(process.env.REF_FILE);
} else {
  const bytes = Number(process.env.REF_BYTES);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    process.stderr.write('REF_FILE or REF_BYTES (a positive integer) must be set\n');
    process.exit(2);
  }
  payload = Buffer.alloc(bytes);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
}
const bytes = payload.length;

const server = http.createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': payload.length });
    response.end(payload);
  });
});
server.listen(port, '127.0.0.1', () => {
  process.stderr.write(`reference listening on http://127.0.0.1:${server.address().port} (${bytes} bytes)\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
