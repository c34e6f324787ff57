/**
 * The ustar header of a regular file, built by hand: an export writes millions of small members,
 * and a header is 512 bytes of fixed fields. Names longer than 100 bytes are split at a `/` into
 * the prefix field (155 bytes), as POSIX ustar readers (GNU tar, Python's tarfile) expect.
 */
export const TAR_BLOCK = 512;
/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

function octal(target: Buffer, offset: number, length: number, value: number): void {
  target.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'ascii');
}

/** Splits a path into ustar's prefix and name, or throws when it cannot fit. */
export function splitTarName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  throw new Error(`tar member name too long for ustar: ${path.slice(0, 80)}…`);
}

/** The header block of a regular file of `size` bytes, mode 0644, owned by 0:0. */
export function tarHeader(path: string, size: number, mtimeSeconds: number): Buffer {
  const header = Buffer.alloc(TAR_BLOCK);
  const { prefix, name } = splitTarName(path);
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, 0o644);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, Math.floor(mtimeSeconds));
  header.fill(0x20, 148, 156);
  header[156] = 0x30; // '0': a regular file
  header.write('ustar\u000000', 257, 8, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += header[i];
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return header;
}

const PADDING = Buffer.alloc(TAR_BLOCK);

/** The zeros after a member of `size` bytes, up to the next block. */
export function tarPadding(size: number): Buffer {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? PADDING.subarray(0, 0) : PADDING.subarray(0, TAR_BLOCK - rest);
}
