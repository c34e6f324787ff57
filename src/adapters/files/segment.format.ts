import { createHash } from 'node:crypto';
import { fstatSync, ftruncateSync, readSync } from 'node:fs';

/**
 * The layout of a segment file: a 64-byte header naming its writer, then records, each
 *
 *   magic "BLOB" (4) · payload length, u32 big-endian (4) · SHA-256 of the payload (32) · payload
 *
 * and, once its writer is done with it, one seal record (magic "SEAL", length 0, zero digest).
 * The length and the digest let a reader find where a crash tore the tail: the first record whose
 * magic, length or digest does not hold.
 */
export const FILE_MAGIC = Buffer.from('SNSRYSEG', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 64;
export const RECORD_HEADER_BYTES = 40;
const BLOB_MAGIC = 0x424c4f42; // "BLOB"
const SEAL_MAGIC = 0x5345414c; // "SEAL"
/** Payloads are at most SENSORY_MAX_SAMPLE_BYTES (≤ 1 GiB): anything larger is a torn length. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;

export interface SegmentOwner {
  /** A tag of the writer's host name. */
  readonly host: string;
  readonly pid: number;
  /** When the writing process started (ms since the epoch): tells a reused pid apart. */
  readonly startedMs: number;
}

export function encodeHeader(owner: SegmentOwner): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  FILE_MAGIC.copy(header, 0);
  header.writeUInt32BE(FORMAT_VERSION, 8);
  header.writeUInt32BE(owner.pid, 12);
  header.writeDoubleBE(owner.startedMs, 16);
  header.write(owner.host.slice(0, 12), 24, 'latin1');
  return header;
}

export function decodeHeader(header: Buffer): SegmentOwner | undefined {
  if (header.length < HEADER_BYTES || !header.subarray(0, 8).equals(FILE_MAGIC) || header.readUInt32BE(8) !== FORMAT_VERSION) return undefined;
  return {
    pid: header.readUInt32BE(12),
    startedMs: header.readDoubleBE(16),
    host: header.toString('latin1', 24, 36).replace(/\0+$/, ''),
  };
}

export function encodeRecordHeader(sha256: string, length: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  header.writeUInt32BE(BLOB_MAGIC, 0);
  header.writeUInt32BE(length, 4);
  header.write(sha256, 8, 'hex');
  return header;
}

export function sealRecord(): Buffer {
  const seal = Buffer.alloc(RECORD_HEADER_BYTES);
  seal.writeUInt32BE(SEAL_MAGIC, 0);
  return seal;
}

/** Whether the file ends with a seal record (its writer closed it cleanly). */
export function isSealed(fd: number, size: number): boolean {
  if (size < HEADER_BYTES + RECORD_HEADER_BYTES) return false;
  const tail = Buffer.alloc(RECORD_HEADER_BYTES);
  readSync(fd, tail, 0, RECORD_HEADER_BYTES, size - RECORD_HEADER_BYTES);
  return tail.readUInt32BE(0) === SEAL_MAGIC && tail.subarray(4).every((byte) => byte === 0);
}

/** The record at `offset` when it is whole and its digest holds: its payload. */
export function readRecord(fd: number, offset: number, fileSize: number): { sha256: string; payload: Buffer } | undefined {
  if (offset + RECORD_HEADER_BYTES > fileSize) return undefined;
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  if (readSync(fd, header, 0, RECORD_HEADER_BYTES, offset) !== RECORD_HEADER_BYTES) return undefined;
  if (header.readUInt32BE(0) !== BLOB_MAGIC) return undefined;
  const length = header.readUInt32BE(4);
  if (length > MAX_PAYLOAD_BYTES || offset + RECORD_HEADER_BYTES + length > fileSize) return undefined;
  const payload = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, payload, got, length - got, offset + RECORD_HEADER_BYTES + got);
    if (n === 0) return undefined;
    got += n;
  }
  const sha256 = header.toString('hex', 8, 40);
  if (createHash('sha256').update(payload).digest('hex') !== sha256) return undefined;
  return { sha256, payload };
}

/**
 * Walks the records of a segment whose writer is gone and cuts the file after the last whole
 * one: a record torn by a crash (short, or with a digest that does not hold) and everything after
 * it go. Nothing acknowledged can be there — an acknowledged record was fdatasync'ed, and so was
 * every byte before it. Returns the number of bytes cut.
 */
export function cutTornTail(fd: number): { records: number; cutBytes: number; end: number } {
  const size = fstatSync(fd).size;
  let offset = HEADER_BYTES;
  let records = 0;
  for (;;) {
    const record = readRecord(fd, offset, size);
    if (!record) break;
    offset += RECORD_HEADER_BYTES + record.payload.length;
    records++;
  }
  if (offset < size) ftruncateSync(fd, offset);
  return { records, cutBytes: Math.max(0, size - offset), end: offset };
}
