/**
 * Figure 3r's second reference, the floor over HTTP: a bare node:http server that does for each
 * raw image/png upload exactly the floor's work (ingest-floor.ts: SHA-256, the lean decode, one
 * append, one fdatasync per group of uploads arriving together) and then answers 201 with a small
 * JSON body. No database, no dedupe, no auth, no logs, one thread: what any service taking
 * single uploads over HTTP pays at least on this machine, in the same run as the service.
 * Started as its own child process (node --import tsx), like the service; FLOOR_FILE is the file
 * it appends to, PORT its port.
 */
import { openSync } from 'node:fs';
import http from 'node:http';
import { FloorAppender } from './ingest-floor.js';

const floor = new FloorAppender(openSync(process.env.FLOOR_FILE ?? 'floor-server.bin', 'w'));

const server = http.createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    floor.store(Buffer.concat(chunks)).then(
      (digest) => {
        const body = JSON.stringify({ sha256: digest.toString('hex'), outcome: 'stored' });
        response.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        response.end(body);
      },
      (error: Error) => {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(error.message);
      },
    );
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stderr.write(`floor server listening on http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
