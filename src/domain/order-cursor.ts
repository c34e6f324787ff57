import { SensoryError } from './errors.js';

/**
 * Cursor tokens: opaque strings naming a position of one stream of one generation of one
 * order. A client hands back the token of the last answer it received; nothing in it is secret,
 * but it is checked strictly, so a token of another order or rank never moves a stream.
 */

export interface CursorPosition {
  readonly orderId: string;
  readonly generation: number;
  readonly stream: number;
  readonly position: number;
}

const VERSION = 'v1';
const MAX_TOKEN_LENGTH = 200;
const TOKEN = /^[A-Za-z0-9_-]{1,200}$/;
const BODY = /^v1\.([0-9a-f]{12})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,14})$/;

/** The part of an order id a token carries: enough to tell orders apart, short enough to read. */
function orderTag(orderId: string): string {
  return orderId.replace(/-/g, '').toLowerCase().padEnd(12, '0').slice(0, 12);
}

export function encodeCursor(cursor: CursorPosition): string {
  return Buffer.from(`${VERSION}.${orderTag(cursor.orderId)}.${cursor.generation}.${cursor.stream}.${cursor.position}`, 'utf8').toString('base64url');
}

/**
 * The position a token names, checked against the stream it is used on: 400 when it is not a
 * token, 409 when it is one of another order, generation or rank.
 */
export function decodeCursor(field: string, token: string, expected: Omit<CursorPosition, 'position'>): number {
  const malformed = () => new SensoryError('SENSORY_ERR_BAD_CURSOR', `${field} is not a cursor of this service: send the cursor of an answer unchanged`);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token)) throw malformed();
  const match = BODY.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!match || Buffer.from(match[0], 'utf8').toString('base64url') !== token) throw malformed();
  const [, tag, generation, stream, position] = match;
  if (tag !== orderTag(expected.orderId)) {
    throw new SensoryError('SENSORY_ERR_CURSOR_CONFLICT', `${field} belongs to another order, not to order ${expected.orderId}`);
  }
  if (Number(generation) !== expected.generation) {
    throw new SensoryError(
      'SENSORY_ERR_CURSOR_CONFLICT',
      `${field} belongs to generation ${generation} of the order, which was reshaped since: it is now generation ${expected.generation}; start again with cursor "start"`,
      { generation: expected.generation },
    );
  }
  if (Number(stream) !== expected.stream) {
    throw new SensoryError('SENSORY_ERR_CURSOR_CONFLICT', `${field} belongs to rank ${stream}, not to rank ${expected.stream}`, { rank: expected.stream });
  }
  return Number(position);
}
