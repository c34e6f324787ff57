// The reference for figure 1: a bare node:http server that answers every request with one
// preallocated Buffer of REF_BYTES bytes. Started as its own child process, like the service.
import http from 'node:http';

const bytes = Number(process.env.REF_BYTES);
const port = Number(process.env.PORT ?? 0);
if (!Number.isSafeInteger(bytes) || bytes <= 0) {
  process.stderr.write('REF_BYTES must be a positive integer\n');
  process.exit(2);
}
const payload = Buffer.alloc(bytes);
for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;

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
