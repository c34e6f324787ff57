import type { Split } from '../domain/split.js';

export const ORDER_STATUSES = ['queued', 'running', 'complete', 'failed', 'cancelled', 'expired'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const ACTIVE_STATUSES: readonly OrderStatus[] = ['queued', 'running'];

export interface OrderSpec {
  readonly id: string;
  readonly datasetId: number;
  readonly datasetName: string;
  readonly size: number;
  readonly shardSize: number;
  readonly chunkSamples: number;
  readonly seed: number;
  readonly noise: number;
  readonly split: Split;
  /** Category indices the order draws from; null for all. */
  readonly categoryIndexes: readonly number[] | null;
  readonly revision: number;
  readonly dtype: 'uint8' | 'float32';
  readonly labels: 'index' | 'onehot';
  /** Candidates at the order's revision (the epoch length). */
  readonly eligibleCount: number;
  /** The dataset's shape, so that polls never need the dataset itself. */
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** The category map at the order's revision (its length is the one-hot width). */
  readonly categories: readonly { readonly name: string; readonly index: number }[];
  readonly ttlSeconds: number;
  readonly createdAt: string;
}

export interface OrderRecord extends OrderSpec {
  readonly status: OrderStatus;
  readonly shardsTotal: number;
  readonly shardsDone: number;
  readonly produced: number;
  readonly delivered: number;
  readonly expiresAt: string;
  readonly error?: string;
}

/** What a poll may do with one result message. */
export type ClaimOutcome =
  | { readonly kind: 'claimed'; readonly slots: number[] }
  /** Every slot of it was delivered already: a copy to drop. */
  | { readonly kind: 'delivered' }
  /** Another poll holds a lease on some of its slots: hand it back. */
  | { readonly kind: 'busy' };

/**
 * Orders and their delivery ledger. Delivery is exactly-once per slot: a poll claims the
 * undelivered slots of the messages it took (a lease, exclusive over overlapping slots), sends
 * them, then commits them as delivered; a copy of a delivered slot is dropped at claim time.
 */
export interface OrderStore {
  createOrder(spec: OrderSpec, shardsTotal: number, expiresAt: string): Promise<OrderRecord>;
  getOrder(id: string): Promise<OrderRecord | undefined>;
  /** Newest first. */
  listOrders(options: { activeOnly: boolean; limit: number }): Promise<OrderRecord[]>;
  /** Marks slots produced (published and confirmed); moves a queued order to running. */
  recordProduced(id: string, slots: readonly number[]): Promise<void>;
  markShardDone(id: string, shard: number): Promise<void>;
  /** Shards not yet marked done. */
  pendingShards(id: string): Promise<number[]>;
  /** The slots among `slots` not yet delivered. */
  undelivered(id: string, slots: readonly number[]): Promise<number[]>;
  claim(id: string, pollId: string, messages: readonly (readonly number[])[], leaseUntil: number, now: number): Promise<ClaimOutcome[]>;
  /** Marks slots delivered and drops the poll's leases; completes the order when all are delivered. */
  commitDelivery(id: string, pollId: string, slots: readonly number[], expiresAt: string): Promise<void>;
  releaseClaims(id: string, pollId: string): Promise<void>;
  /** Moves an active order to a final status; returns false when it was no longer active. */
  finish(id: string, status: Exclude<OrderStatus, 'queued' | 'running' | 'complete'>, error?: string): Promise<boolean>;
}
