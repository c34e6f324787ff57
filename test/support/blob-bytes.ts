import { createHash } from 'node:crypto';

/** Blob number n: 1–60 KB of bytes that are a function of n alone, and their SHA-256. */
export function blobNumbered(n: number, salt = ''): { sha: string; bytes: Buffer } {
  const length = 1000 + ((n * 7919) % 60_000);
  const bytes = Buffer.alloc(length);
  let s = (n * 2654435761 + salt.length * 97 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    bytes[i] = s >>> 24;
  }
  if (salt) bytes.write(salt, 0, 'latin1');
  return { sha: createHash('sha256').update(bytes).digest('hex'), bytes };
}
