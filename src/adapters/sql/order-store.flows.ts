import type { OrderPlan } from '../../domain/order-streams.js';
import type { StreamState } from '../../domain/stream-state.js';
import type { OrderChange, OrderQuery, OrderRow, OrderSpec, OrderStatus, OrderStore, StoredOrder, StreamChange, StreamKey, WriteOptions } from '../../ports/order-store.js';

/**
 * The order store's work, written once for both SQL backends: each operation is a generator that
 * yields the statements it needs (by name) and receives their rows. A backend supplies the SQL
 * text of every name and a driver: SQLite runs a flow synchronously inside BEGIN IMMEDIATE,
 * PostgreSQL awaits each statement inside a transaction whose row reads lock (FOR UPDATE). No
 * rule about orders is here: the changes are pure functions from the domain, passed in.
 */

export const ORDER_STATEMENTS = [
  'insertOrder',
  'upsertStream',
  'orderIdByKey',
  'orderById',
  'orderByKey',
  'listOrders',
  'lockOrder',
  'lockStreams',
  'lockStream',
  'readStream',
  'updateOrder',
  'updateStream',
] as const;
export type OrderStatement = (typeof ORDER_STATEMENTS)[number];
/** The SQL text of every statement, for one backend. */
export type OrderSql = Readonly<Record<OrderStatement, string>>;

export type Row = Record<string, unknown>;
export interface Step {
  readonly name: OrderStatement;
  readonly params: readonly unknown[];
}
export type Flow<T> = Generator<Step, T, Row[]>;

/** Columns of an order row, in the order statements select them (o. is the orders table). */
export const ORDER_COLUMNS = 'o.id, o.spec, o.status, o.owner, o.order_key, o.request, o.generation, o.plan, o.ttl_seconds, o.expires_at, o.error';

function toOrderRow(row: Row): OrderRow {
  const { ttlSeconds: _placedTtl, ...spec } = JSON.parse(row.spec as string) as OrderSpec & { ttlSeconds?: number };
  return {
    spec,
    owner: (row.owner as string | null) ?? null,
    key: (row.order_key as string | null) ?? null,
    request: (row.request as string | null) ?? null,
    plan: JSON.parse(row.plan as string) as OrderPlan,
    status: row.status as OrderStatus,
    ttlSeconds: Number(row.ttl_seconds),
    expiresAt: row.expires_at as string,
    ...(row.error ? { error: row.error as string } : {}),
  };
}

function toStream(row: Row): StreamState {
  return JSON.parse((row.stream_state ?? row.state) as string) as StreamState;
}

/** Rows of orders joined with their current streams (ordered by order, then stream). */
function groupOrders(rows: Row[]): StoredOrder[] {
  const orders: StoredOrder[] = [];
  let current: { order: OrderRow; streams: StreamState[] } | undefined;
  for (const row of rows) {
    if (!current || current.order.spec.id !== row.id) {
      current = { order: toOrderRow(row), streams: [] };
      orders.push(current);
    }
    if (row.stream_state) current.streams.push(toStream(row));
  }
  return orders;
}

function orderParams(order: OrderRow): unknown[] {
  const generation = order.plan.generations.length - 1;
  return [order.status, order.error ?? null, generation, JSON.stringify(order.plan), order.ttlSeconds, order.expiresAt];
}

function* writeStreams(orderId: string, streams: readonly StreamState[]): Flow<void> {
  for (const state of streams) yield { name: 'upsertStream', params: [orderId, state.generation, state.stream, JSON.stringify(state)] };
}

export function* insertFlow(order: OrderRow, streams: readonly StreamState[]): Flow<'inserted' | 'key-taken'> {
  if (order.owner !== null && order.key !== null) {
    const taken = yield { name: 'orderIdByKey', params: [order.owner, order.key] };
    if (taken.length > 0) return 'key-taken';
  }
  const { spec } = order;
  const [status, error, generation, plan, ttl, expiresAt] = orderParams(order);
  yield {
    name: 'insertOrder',
    params: [spec.id, spec.datasetId, JSON.stringify(spec), status, order.owner, order.key, order.request, generation, plan, spec.size, ttl, spec.createdAt, expiresAt, error],
  };
  yield* writeStreams(spec.id, streams);
  return 'inserted';
}

export function* getFlow(id: string): Flow<StoredOrder | undefined> {
  return groupOrders(yield { name: 'orderById', params: [id] })[0];
}

export function* findByKeyFlow(owner: string, key: string): Flow<StoredOrder | undefined> {
  return groupOrders(yield { name: 'orderByKey', params: [owner, key] })[0];
}

export function* listFlow(query: OrderQuery): Flow<StoredOrder[]> {
  const owner = query.owner ?? null;
  return groupOrders(yield { name: 'listOrders', params: [owner, owner, query.activeOnly ? 1 : 0, query.limit] });
}

export function* readStreamFlow(key: StreamKey): Flow<StreamState | undefined> {
  const [row] = yield { name: 'readStream', params: [key.orderId, key.generation, key.stream] };
  return row ? toStream(row) : undefined;
}

export function* updateStreamFlow<T>(key: StreamKey, change: (state: StreamState) => StreamChange<T>): Flow<T | undefined> {
  const [row] = yield { name: 'lockStream', params: [key.orderId, key.generation, key.stream] };
  if (!row) return undefined;
  const { state, result } = change(toStream(row));
  if (state) yield { name: 'updateStream', params: [JSON.stringify(state), key.orderId, key.generation, key.stream] };
  return result;
}

export function* updateOrderFlow<T>(id: string, change: (stored: StoredOrder) => OrderChange<T>): Flow<T | undefined> {
  const [row] = yield { name: 'lockOrder', params: [id] };
  if (!row) return undefined;
  const order = toOrderRow(row);
  const streams = (yield { name: 'lockStreams', params: [id, Number(row.generation)] }).map(toStream);
  const changed = change({ order, streams });
  if (changed.order) yield { name: 'updateOrder', params: [...orderParams(changed.order), id] };
  if (changed.streams) yield* writeStreams(id, changed.streams);
  return changed.result;
}

/** Runs a flow to its end with a synchronous statement runner. */
export function runFlowSync<T>(flow: Flow<T>, run: (step: Step) => Row[]): T {
  let next = flow.next();
  while (!next.done) next = flow.next(run(next.value));
  return next.value;
}

/** Runs a flow to its end, awaiting each statement. */
export async function runFlow<T>(flow: Flow<T>, run: (step: Step) => Promise<Row[]>): Promise<T> {
  let next = flow.next();
  while (!next.done) next = flow.next(await run(next.value));
  return next.value;
}

/** How a backend runs flows: reads outside a transaction, changes inside one. */
export interface FlowDriver {
  read<T>(flow: Flow<T>): Promise<T>;
  write<T>(flow: Flow<T>, options?: WriteOptions): Promise<T>;
  /** The error a unique index raised (a placement key taken by a concurrent placement). */
  isUniqueViolation(error: unknown): boolean;
}

/** The OrderStore over a driver: the same for every SQL backend. */
export class SqlOrderStore implements OrderStore {
  constructor(private readonly driver: FlowDriver) {}

  async insert(order: OrderRow, streams: readonly StreamState[], options?: WriteOptions): Promise<'inserted' | 'key-taken'> {
    try {
      return await this.driver.write(insertFlow(order, streams), options);
    } catch (error) {
      if (order.key !== null && this.driver.isUniqueViolation(error)) return 'key-taken';
      throw error;
    }
  }

  get(id: string): Promise<StoredOrder | undefined> {
    return this.driver.read(getFlow(id));
  }

  findByKey(owner: string, key: string): Promise<StoredOrder | undefined> {
    return this.driver.read(findByKeyFlow(owner, key));
  }

  list(query: OrderQuery): Promise<StoredOrder[]> {
    return this.driver.read(listFlow(query));
  }

  stream(key: StreamKey): Promise<StreamState | undefined> {
    return this.driver.read(readStreamFlow(key));
  }

  updateStream<T>(key: StreamKey, change: (state: StreamState) => StreamChange<T>, options?: WriteOptions): Promise<T | undefined> {
    return this.driver.write(updateStreamFlow(key, change), options);
  }

  updateOrder<T>(id: string, change: (stored: StoredOrder) => OrderChange<T>, options?: WriteOptions): Promise<T | undefined> {
    return this.driver.write(updateOrderFlow(id, change), options);
  }
}
