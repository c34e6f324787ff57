/**
 * A child that writes blobs into a segment store until it is killed: `node --import tsx
 * segment-writer.child.ts <sqlite|postgres> <directory> [databaseUrl]`. Eight loops put distinct
 * blobs (1–60 KB, a function of their number); after each put resolves (durable) it prints
 * `ok <n>` on stdout. The parent SIGKILLs it.
 */
import { openSegmentStore } from './blob-stores.js';
import { blobNumbered } from './blob-bytes.js';

const [backend, dir, databaseUrl] = process.argv.slice(2);
const opened = openSegmentStore(dir, backend as 'sqlite' | 'postgres', { databaseUrl, segmentBytes: 2 * 1024 * 1024 });
await opened.blobs.init();
let next = 0;
process.stdout.write('ready\n');
await Promise.all(
  Array.from({ length: 8 }, async () => {
    for (;;) {
      const n = next++;
      const { sha, bytes } = blobNumbered(n);
      await opened.blobs.put(sha, bytes);
      process.stdout.write(`ok ${n}\n`);
    }
  }),
);
