import { randomUUID } from 'node:crypto';
import { recordBytes } from '../domain/dataset-shape.js';
import { SensoryError } from '../domain/errors.js';
import { chunkSamplesFor } from '../domain/order-plan.js';
import { planOrder, streamLength, type OrderPlan, type Rounding } from '../domain/order-streams.js';
import { randomSeed } from '../domain/random.js';
import type { OrderSpec } from '../ports/order-store.js';
import type { BatchRequest, Selection } from './batch.service.js';

export interface OrderRequest extends BatchRequest {
  readonly shardSize?: number;
  readonly ranks?: number;
  readonly rounding?: Rounding;
  /** The same key from the same API key with the same request returns the same order. */
  readonly key?: string;
}

export interface OrderSettings {
  readonly shardSize: number;
  readonly ttlSeconds: number;
  /** Lease of a poll on the samples it sends (plus its waitMs); LEASE_MS when absent. */
  readonly leaseMs?: number;
  readonly maxSamples: number;
  readonly maxShards: number;
  readonly maxRanks: number;
  readonly maxTtlSeconds: number;
  /** A waiting poll looks again this often when nothing woke it; POLL_RECHECK_MS when absent. */
  readonly pollRecheckMs?: number;
  /** Polls waiting at once, in all and per API key; over either → 429 SENSORY_ERR_TOO_MANY_POLLS. */
  readonly maxWaitingPolls?: number;
  readonly maxWaitingPollsPerKey?: number;
  /** Active orders per API key; over it → 429 SENSORY_ERR_TOO_MANY_ORDERS. MAX_ACTIVE_ORDERS_PER_KEY when absent. */
  readonly maxActiveOrdersPerKey?: number;
  /** Bytes of one order's results produced and not polled yet (split over its ranks). */
  readonly bufferBytes?: number;
}

/** Who asks: an order belongs to the key that placed it; admin keys act on every order. */
export interface Caller {
  readonly owner: string;
  readonly admin: boolean;
}

/** The request as it decides the order, with its defaults: a key must come back with the same. */
export function canonicalRequest(dataset: string, request: OrderRequest, shardSize: number): string {
  const { key: _key, ...given } = request;
  // The defaults spelled out or left out are the same request (and orders placed before these
  // fields existed keep their keys).
  const rest = Object.fromEntries(Object.entries(given).filter(([field, value]) => !(field === 'labelDtype' && value === 'int32') && !(field === 'layout' && value === 'nhwc')));
  const full: Record<string, unknown> = {
    dataset,
    noise: 0,
    split: 'all',
    dtype: 'uint8',
    labels: 'index',
    ranks: 1,
    rounding: 'exact',
    ...rest,
    shardSize,
  };
  return JSON.stringify(Object.fromEntries(Object.entries(full).sort(([a], [b]) => a.localeCompare(b))));
}

/** The order's plan and shard size, after every limit is checked: nothing is stored for an order refused here. */
export function checkOrder(request: OrderRequest, settings: OrderSettings): { plan: OrderPlan; shardSize: number } {
  if (request.balance) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'balance is available for small batches only, not for orders', { field: 'balance' });
  if (request.labelDtype !== undefined && request.labels === 'onehot') {
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'labelDtype applies to index labels; one-hot labels are always uint8 rows', { field: 'labelDtype' });
  }
  const { maxSamples, maxShards, maxRanks } = settings;
  if (request.size > maxSamples) {
    throw new SensoryError('SENSORY_ERR_ORDER_TOO_LARGE', `an order may have at most ${maxSamples} samples (SENSORY_MAX_ORDER_SAMPLES); this one asks ${request.size}`, { size: request.size, max: maxSamples });
  }
  const ranks = request.ranks ?? 1;
  if (ranks > maxRanks) throw new SensoryError('SENSORY_ERR_TOO_MANY_RANKS', `an order may have at most ${maxRanks} ranks (SENSORY_MAX_ORDER_RANKS); this one asks ${ranks}`, { ranks, max: maxRanks });
  const plan = planOrder(request.size, ranks, request.rounding ?? 'exact');
  const shardSize = request.shardSize ?? settings.shardSize;
  const perRank = streamLength(plan, 0);
  const shards = ranks * Math.ceil(perRank / shardSize);
  if (shards > maxShards) {
    throw new SensoryError(
      'SENSORY_ERR_ORDER_TOO_LARGE',
      `an order may have at most ${maxShards} shards (SENSORY_MAX_ORDER_SHARDS); this one has ${shards}: ask a shardSize of at least ${Math.ceil(perRank / Math.max(1, Math.floor(maxShards / ranks)))}`,
      { shards, max: maxShards },
    );
  }
  return { plan, shardSize };
}

/** What the order draws from and how it is served, fixed now (a seed is drawn when none was given). */
export function orderSpec(selection: Selection, request: OrderRequest, shardSize: number, now: number): OrderSpec {
  const { dataset } = selection;
  return {
    id: randomUUID(),
    datasetId: dataset.id,
    datasetName: dataset.name,
    size: request.size,
    shardSize,
    chunkSamples: Math.min(chunkSamplesFor(recordBytes(dataset)), shardSize),
    seed: request.seed ?? randomSeed(),
    noise: request.noise ?? 0,
    split: selection.split,
    categoryIndexes: selection.categoryIndexes ?? null,
    revision: selection.revision,
    dtype: request.dtype ?? 'uint8',
    ...(request.labelDtype === 'int64' ? { labelDtype: 'int64' as const } : {}),
    ...(request.layout === 'nchw' ? { layout: 'nchw' as const } : {}),
    labels: request.labels ?? 'index',
    eligibleCount: selection.eligible.length,
    width: dataset.width,
    height: dataset.height,
    channels: dataset.channels,
    categories: selection.categories,
    createdAt: new Date(now).toISOString(),
  };
}
