/**
 * A WebAssembly kernel writing uint8 H×W×3 samples as JSON text, `[[[r,g,b],…],…]`: the hot
 * loop of a JSON batch. The same table-of-texts loop in JavaScript pays a bounds check on every
 * load and store; here one value is a byte load, a 32-bit table load, an unaligned 32-bit store
 * and a length add (measured 2–3× less CPU per value).
 *
 * The module is assembled below from its opcodes (no toolchain, no binary file to ship). It
 * imports its memory, laid out as:
 *   [0, 1024)     the text of each byte value and ',' as a little-endian 32-bit word
 *   [1024, 2048)  the same with ']'
 *   [2048, 2304)  the bytes of each entry, separator included (2–4)
 *   [TABLES_BYTES, …)  free for the caller: the pixels read and the text written.
 * `rgb(src, dst, height, width, count, commaFirst)` writes the `count` samples read from `src`
 * (one after the other) to `dst`, separated by commas and with one before the first if
 * `commaFirst` is 1, and returns where the text ended; it writes up to 3 bytes past the end (the
 * last 32-bit store), and needs height, width, count ≥ 1. One call per chunk: a call from
 * JavaScript costs more than a pixel.
 */

/** Where the caller's bytes may start: after the tables, 64-byte aligned. */
export const TABLES_BYTES = 2368;
const CLOSE_WORDS = 1024;
const LENGTHS = 2048;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (text: string) => vec([...Buffer.from(text, 'ascii')].map((byte) => [byte]));

const I32 = 0x7f;
const get = (local: number) => [0x20, local];
const set = (local: number) => [0x21, local];
const tee = (local: number) => [0x22, local];
const constant = (value: number) => [0x41, ...sleb(value)];
const ADD = [0x6a];
const SUB = [0x6b];
const SHL = [0x74];
/** Memory access with an alignment hint of 1 byte (every store here may be unaligned) and a constant offset. */
const load8 = (offset: number) => [0x2d, 0, ...uleb(offset)];
const load32 = (offset: number) => [0x28, 0, ...uleb(offset)];
const store8 = [0x3a, 0, 0];
const store32 = [0x36, 0, 0];
const LOOP = [0x03, 0x40];
const END = [0x0b];
const BR_IF_LOOP = [0x0d, 0];

const OPEN = 0x5b;
const CLOSE = 0x5d;
const COMMA = 0x2c;

// Parameters, then locals.
const SRC = 0;
const DST = 1;
const HEIGHT = 2;
const WIDTH = 3;
const COUNT = 4;
const COMMA_FIRST = 5;
const X = 6;
const Y = 7;
const VALUE = 8;

/** dst[0] = byte; dst += 1 */
const put = (byte: number) => [...get(DST), ...constant(byte), ...store8, ...get(DST), ...constant(1), ...ADD, ...set(DST)];
/** dst[-1] = byte (replaces the comma after the last element of a row or of the sample) */
const replaceLast = (byte: number) => [...get(DST), ...constant(1), ...SUB, ...constant(byte), ...store8];
/** value = src[k]; store32(dst, words[value]); dst += lengths[value] */
const value = (k: number, words: number) => [
  ...get(SRC), ...load8(k), ...set(VALUE),
  ...get(DST), ...get(VALUE), ...constant(2), ...SHL, ...load32(words), ...store32,
  ...get(DST), ...get(VALUE), ...load8(LENGTHS), ...ADD, ...set(DST),
];

// prettier-ignore
const RGB_BODY = [
  ...vec([[3, I32]]), // locals X, Y, VALUE
  ...get(COMMA_FIRST), 0x04, 0x40, ...put(COMMA), ...END, // if
  ...LOOP, // each sample: "[…],"
  ...put(OPEN),
  ...get(HEIGHT), ...set(Y),
  ...LOOP, // each row: "[…],"
  ...put(OPEN),
  ...get(WIDTH), ...set(X),
  ...LOOP, // each pixel: "[r,g,b],"
  ...put(OPEN),
  ...value(0, 0), ...value(1, 0), ...value(2, CLOSE_WORDS),
  ...put(COMMA),
  ...get(SRC), ...constant(3), ...ADD, ...set(SRC),
  ...get(X), ...constant(1), ...SUB, ...tee(X), ...BR_IF_LOOP,
  ...END,
  ...replaceLast(CLOSE), ...put(COMMA),
  ...get(Y), ...constant(1), ...SUB, ...tee(Y), ...BR_IF_LOOP,
  ...END,
  ...replaceLast(CLOSE), ...put(COMMA),
  ...get(COUNT), ...constant(1), ...SUB, ...tee(COUNT), ...BR_IF_LOOP,
  ...END,
  ...get(DST), ...constant(1), ...SUB, // without the comma after the last sample
  ...END,
];

// prettier-ignore
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([[I32]])]])), // (i32 × 6) → i32
  ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])), // memory, at least 1 page
  ...section(3, vec([[0]])),
  ...section(7, vec([[...name('rgb'), 0x00, 0]])),
  ...section(10, vec([[...uleb(RGB_BODY.length), ...RGB_BODY]])),
]);

const compiled = new WebAssembly.Module(MODULE);

/** The texts of the byte values as JSON prints integers, into the table area. */
function writeTables(bytes: Uint8Array): void {
  for (let value = 0; value < 256; value++) {
    const text = String(value);
    for (let i = 0; i < text.length; i++) {
      bytes[value * 4 + i] = text.charCodeAt(i);
      bytes[CLOSE_WORDS + value * 4 + i] = text.charCodeAt(i);
    }
    bytes[value * 4 + text.length] = COMMA;
    bytes[CLOSE_WORDS + value * 4 + text.length] = CLOSE;
    bytes[LENGTHS + value] = text.length + 1;
  }
}

/** `rgb(src, dst, height, width, count, commaFirst)`: see the top of this file; offsets into the memory. */
export type RgbText = (src: number, dst: number, height: number, width: number, count: number, commaFirst: number) => number;

const instances = new WeakMap<WebAssembly.Memory, RgbText>();

/**
 * The kernel over `memory` (one instance per memory, kept while the memory lives), with its
 * tables written afresh: whoever used the memory before may have overwritten them.
 */
export function rgbTextKernel(memory: WebAssembly.Memory): RgbText {
  writeTables(new Uint8Array(memory.buffer, 0, TABLES_BYTES));
  let rgb = instances.get(memory);
  if (!rgb) {
    rgb = new WebAssembly.Instance(compiled, { env: { memory } }).exports.rgb as RgbText;
    instances.set(memory, rgb);
  }
  return rgb;
}
