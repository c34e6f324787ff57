import type { Dtype, LabelDtype, LabelForm, Layout, PlanCategory } from '../domain/batch-plan.js';
import { ACTIVE_STATUSES, ORDER_STATUSES, type OrderStatus } from '../domain/order-lifecycle.js';
import type { OrderPlan } from '../domain/order-streams.js';
import type { Split } from '../domain/split.js';
import type { StreamState } from '../domain/stream-state.js';

export { ACTIVE_STATUSES, ORDER_STATUSES, type OrderStatus };

/** What an order draws from and how it is served: fixed when it is placed. */
export interface OrderSpec {
  readonly id: string;
  readonly datasetId: number;
  readonly datasetName: string;
  /** The size asked for (the slots delivered follow from the plan). */
  readonly size: number;
  readonly shardSize: number;
  readonly chunkSamples: number;
  readonly seed: number;
  readonly noise: number;
  readonly split: Split;
  /** Category indices the order draws from; null for all. */
  readonly categoryIndexes: readonly number[] | null;
  readonly revision: number;
  readonly dtype: Dtype;
  readonly labels: LabelForm;
  /** Index labels as int64 (int32 when absent: orders placed before it existed too). */
  readonly labelDtype?: LabelDtype;
  /** Channels first (nhwc when absent). */
  readonly layout?: Layout;
  /** Candidates at the order's revision (the epoch length). */
  readonly eligibleCount: number;
  /** The dataset's shape, so that polls never need the dataset itself. */
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** The category map at the order's revision (its length is the one-hot width). */
  readonly categories: readonly PlanCategory[];
  readonly createdAt: string;
}

/** An order's row: its spec and what changes (status, plan generations, TTL, expiry). */
export interface OrderRow {
  readonly spec: OrderSpec;
  /** Who placed it (derived from the API key, never the key); null for orders from before owners. */
  readonly owner: string | null;
  /** The placement key, unique per owner. */
  readonly key: string | null;
  /** The request as placed (canonical JSON): a key must come back with the same request. */
  readonly request: string | null;
  readonly plan: OrderPlan;
  /** Active (queued or running) until a final status is written; the facts decide between the two. */
  readonly status: OrderStatus;
  readonly ttlSeconds: number;
  readonly expiresAt: string;
  readonly error?: string;
}

/** An order with the streams of its current generation, by stream number. */
export interface StoredOrder {
  readonly order: OrderRow;
  readonly streams: readonly StreamState[];
}

export interface StreamKey {
  readonly orderId: string;
  readonly generation: number;
  readonly stream: number;
}

export interface OrderQuery {
  /** Only this owner's orders; all when absent. */
  readonly owner?: string;
  /** Only orders whose row is active (queued or running). */
  readonly activeOnly: boolean;
  readonly limit: number;
}

/** What a change decided: the rows to write (none: nothing changes) and a result for the caller. */
export interface StreamChange<T> {
  readonly state?: StreamState;
  readonly result: T;
}

export interface OrderChange<T> {
  readonly order?: OrderRow;
  /** Stream rows to write, inserted or replaced (a reshape writes the old generation's and the new one's). */
  readonly streams?: readonly StreamState[];
  readonly result: T;
}

export interface WriteOptions {
  /** Resolve only once the change is on disk (a delivery, an acknowledgement, a final status). */
  readonly durable?: boolean;
}

/**
 * Orders and their streams, as rows. The rules live in the domain: the service passes a pure
 * change, and the store runs it between reading the row with a lock (SELECT … FOR UPDATE, or
 * BEGIN IMMEDIATE) and writing what it returns. A change that throws writes nothing. Changes of
 * different streams of one order do not wait for each other.
 */
export interface OrderStore {
  /** 'key-taken' when the owner already has an order with this key (nothing is stored then). */
  insert(order: OrderRow, streams: readonly StreamState[], options?: WriteOptions): Promise<'inserted' | 'key-taken'>;
  get(id: string): Promise<StoredOrder | undefined>;
  findByKey(owner: string, key: string): Promise<StoredOrder | undefined>;
  /** Newest first. */
  list(query: OrderQuery): Promise<StoredOrder[]>;
  stream(key: StreamKey): Promise<StreamState | undefined>;
  /** undefined when there is no such stream. */
  updateStream<T>(key: StreamKey, change: (state: StreamState) => StreamChange<T>, options?: WriteOptions): Promise<T | undefined>;
  /** Locks the order and its current streams; undefined when there is no such order. */
  updateOrder<T>(id: string, change: (stored: StoredOrder) => OrderChange<T>, options?: WriteOptions): Promise<T | undefined>;
}
