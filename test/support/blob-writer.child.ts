/**
 * A process that puts blobs into a BlobStore until it is killed, for the durability test of
 * test/blob-store.contract.test.ts: `node --import tsx blob-writer.child.ts <implementation> <directory>`.
 * Each blob is 16 MiB of fresh random bytes; it prints `put <sha256>` before each put and
 * `done <sha256>` once the put has returned.
 */
import { createHash, randomBytes } from 'node:crypto';
import { BLOB_STORES } from './blob-stores.js';

const [name, directory] = process.argv.slice(2);
const implementation = BLOB_STORES.find((entry) => entry.name === name);
if (!implementation || !directory) throw new Error(`usage: blob-writer.child.ts <${BLOB_STORES.map((entry) => entry.name).join('|')}> <directory>`);
const store = implementation.open(directory);

const say = (line: string) => new Promise<void>((resolve) => process.stdout.write(`${line}\n`, () => resolve()));

for (;;) {
  const bytes = randomBytes(16 * 1024 * 1024);
  const sha = createHash('sha256').update(bytes).digest('hex');
  await say(`put ${sha}`);
  await store.put(sha, bytes);
  await say(`done ${sha}`);
}
