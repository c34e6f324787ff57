import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { readSource, type UploadSource } from './upload-source.js';

/** One item of a bulk upload. */
export interface BulkItem {
  readonly category: string;
  readonly source: UploadSource;
  /** Its file name in the archive (its receipt's path is `<category>/<name>`); by default the file's base name, else its position. */
  readonly name?: string;
}

const BLOCK = 512;

/**
 * A tar of `<category>/<name>` members, one per item in order, each source read only when the
 * network has taken what came before it: memory stays flat however many items.
 */
export function tarOfItems(items: readonly BulkItem[], onItemSent?: (sent: number) => void): Readable {
  return Readable.from(archiveChunks(items, onItemSent), { objectMode: false, highWaterMark: 1024 * 1024 });
}

async function* archiveChunks(items: readonly BulkItem[], onItemSent?: (sent: number) => void): AsyncGenerator<Buffer> {
  for (const [i, item] of items.entries()) {
    const { bytes, name } = await readSource(item.source);
    const path = `${item.category}/${item.name ?? (name ? basename(name) : `${i}`)}`;
    yield memberHeader(path, bytes.length);
    yield bytes;
    const pad = (BLOCK - (bytes.length % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
    onItemSent?.(i + 1);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** The ustar header of a regular file; a path that does not fit its 100 bytes goes first in a pax record. */
function memberHeader(path: string, size: number): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length <= 100 && /^[\x20-\x7e]*$/.test(path)) return header(name, size, '0');
  const record = paxRecord('path', path);
  const pax = Buffer.concat([header(Buffer.from('PaxHeader'), record.length, 'x'), record, Buffer.alloc((BLOCK - (record.length % BLOCK)) % BLOCK)]);
  return Buffer.concat([pax, header(Buffer.from(path.slice(-100).replace(/[^\x20-\x7e]/g, '_')), size, '0')]);
}

/** `<length> <key>=<value>\n`, where the length counts itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return Buffer.from(`${length}${body}`, 'utf8');
}

function header(name: Buffer, size: number, type: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  name.copy(block, 0, 0, Math.min(100, name.length));
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  block.write('        ', 148, 'latin1');
  block.write(type, 156, 'latin1');
  block.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}
