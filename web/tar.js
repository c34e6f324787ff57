// A tar (ustar) body built in the browser from File objects: 512-byte headers around the files'
// own bytes. The Blob refers to the files instead of copying them, so a body of thousands of
// files costs only its headers in memory.

const encoder = new TextEncoder();
const BLOCK = 512;

function writeString(header, offset, length, text) {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new Error(`tar field too long: ${text}`);
  header.set(bytes, offset);
}

function writeOctal(header, offset, length, value) {
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** A member name's UTF-8 bytes cut to at most `max` bytes without splitting a character. */
function cut(text, max) {
  let out = '';
  let size = 0;
  for (const char of text) {
    const n = encoder.encode(char).length;
    if (size + n > max) break;
    out += char;
    size += n;
  }
  return out;
}

/**
 * The member name `<folder>/<file>` in ustar's name (100 bytes) and prefix (155 bytes) fields. A
 * file name longer than 100 bytes keeps its extension and as much of its start as fits.
 */
function placeName(header, folder, file) {
  const whole = `${folder}/${file}`;
  if (encoder.encode(whole).length <= 100) {
    writeString(header, 0, 100, whole);
    return;
  }
  let name = file;
  if (encoder.encode(name).length > 100) {
    const dot = name.lastIndexOf('.');
    const extension = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
    name = cut(name.slice(0, name.length - extension.length), 100 - encoder.encode(extension).length) + extension;
  }
  writeString(header, 0, 100, name);
  writeString(header, 345, 155, cut(folder, 155));
}

function header(folder, file, size, mtime) {
  const block = new Uint8Array(BLOCK);
  placeName(block, folder, file);
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.floor(mtime / 1000));
  block.fill(0x20, 148, 156);
  block[156] = 0x30; // '0': a regular file
  writeString(block, 257, 6, 'ustar\0');
  writeString(block, 263, 2, '00');
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** A tar Blob of `items` = [{folder, name, file}] laid out `<folder>/<name>`, in order. */
export function tarBlob(items) {
  const parts = [];
  for (const { folder, name, file } of items) {
    parts.push(header(folder, name, file.size, file.lastModified || Date.now()), file);
    const padding = (BLOCK - (file.size % BLOCK)) % BLOCK;
    if (padding) parts.push(new Uint8Array(padding));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return new Blob(parts, { type: 'application/x-tar' });
}
