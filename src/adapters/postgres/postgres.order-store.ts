import type pg from 'pg';
import type { ClaimOutcome, OrderRecord, OrderSpec, OrderStatus, OrderStore } from '../../ports/order-store.js';
import { inTransaction } from './postgres.metadata-store.js';

const BLOCK_SLOTS = 65_536;
const PRODUCED = 0;
const DELIVERED = 1;

interface OrderRow {
  spec: string;
  status: OrderStatus;
  shards_total: number;
  shards_done: number;
  produced: number;
  delivered: number;
  expires_at: string;
  error: string | null;
}

/** The columns OrderRow reads, named (not *): a prepared statement keeps its result columns. */
const ORDER_COLUMNS = 'spec, status, shards_total, shards_done, produced, delivered, expires_at, error';

function toRecord(row: OrderRow): OrderRecord {
  return {
    ...(JSON.parse(row.spec) as OrderSpec),
    status: row.status,
    shardsTotal: row.shards_total,
    shardsDone: row.shards_done,
    produced: row.produced,
    delivered: row.delivered,
    expiresAt: row.expires_at,
    ...(row.error ? { error: row.error } : {}),
  };
}

function blockOf(slot: number): number {
  return Math.floor(slot / BLOCK_SLOTS);
}

/**
 * Orders in the same PostgreSQL database as the metadata (shares PostgresMetadataStore.pool, which
 * that store closes). Every write transaction first locks the order row (SELECT … FOR UPDATE), so
 * the read-modify-write of slot bitmaps and the claim checks run one at a time per order, across
 * replicas. Same semantics as SqliteOrderStore.
 */
export class PostgresOrderStore implements OrderStore {
  constructor(private readonly pool: pg.Pool) {}

  async createOrder(spec: OrderSpec, shardsTotal: number, expiresAt: string): Promise<OrderRecord> {
    await this.pool.query(
      `INSERT INTO orders (id, dataset_id, spec, status, shards_total, size, created_at, expires_at)
       VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7)`,
      [spec.id, spec.datasetId, JSON.stringify(spec), shardsTotal, spec.size, spec.createdAt, expiresAt],
    );
    return (await this.getOrder(spec.id))!;
  }

  async getOrder(id: string): Promise<OrderRecord | undefined> {
    const row = (await this.pool.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id])).rows[0];
    return row ? toRecord(row) : undefined;
  }

  async listOrders({ activeOnly, limit }: { activeOnly: boolean; limit: number }): Promise<OrderRecord[]> {
    const where = activeOnly ? `WHERE status IN ('queued', 'running')` : '';
    const { rows } = await this.pool.query<OrderRow>(
      `SELECT ${ORDER_COLUMNS} FROM orders ${where} ORDER BY created_at COLLATE "C" DESC, id COLLATE "C" LIMIT $1`,
      [limit],
    );
    return rows.map(toRecord);
  }

  async recordProduced(id: string, slots: readonly number[]): Promise<void> {
    await this.write(id, async (client) => {
      const added = await addSlots(client, id, PRODUCED, slots);
      await client.query(
        `UPDATE orders SET produced = produced + $1, status = CASE status WHEN 'queued' THEN 'running' ELSE status END WHERE id = $2`,
        [added, id],
      );
    });
  }

  async markShardDone(id: string, shard: number): Promise<void> {
    await this.write(id, async (client) => {
      const inserted = await client.query('INSERT INTO order_shards_done (order_id, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, shard]);
      if (inserted.rowCount) await client.query('UPDATE orders SET shards_done = shards_done + 1 WHERE id = $1', [id]);
    });
  }

  async pendingShards(id: string): Promise<number[]> {
    const order = (await this.pool.query<{ shards_total: number }>('SELECT shards_total FROM orders WHERE id = $1', [id])).rows[0];
    if (!order) return [];
    const { rows } = await this.pool.query<{ shard: number }>('SELECT shard FROM order_shards_done WHERE order_id = $1', [id]);
    const done = new Set(rows.map((row) => row.shard));
    return Array.from({ length: order.shards_total }, (_, shard) => shard).filter((shard) => !done.has(shard));
  }

  async undelivered(id: string, slots: readonly number[]): Promise<number[]> {
    const has = await readBits(this.pool, id, DELIVERED, slots);
    return slots.filter((slot) => !has(slot));
  }

  async claim(id: string, pollId: string, messages: readonly (readonly number[])[], leaseUntil: number, now: number): Promise<ClaimOutcome[]> {
    return this.write(id, async (client) => {
      await client.query('DELETE FROM order_claims WHERE order_id = $1 AND lease_until <= $2', [id, now]);
      const others = await client.query<{ from_slot: number; to_slot: number }>(
        'SELECT from_slot, to_slot FROM order_claims WHERE order_id = $1 AND poll_id <> $2 AND lease_until > $3',
        [id, pollId, now],
      );
      const delivered = await readBits(client, id, DELIVERED, messages.flat());
      const claimed: { from: number; to: number }[] = [];
      const outcomes = messages.map((slots): ClaimOutcome => {
        const open = slots.filter((slot) => !delivered(slot));
        if (open.length === 0) return { kind: 'delivered' };
        const from = Math.min(...open);
        const to = Math.max(...open) + 1;
        if (others.rows.some((claim) => claim.from_slot < to && claim.to_slot > from)) return { kind: 'busy' };
        claimed.push({ from, to });
        return { kind: 'claimed', slots: open };
      });
      if (claimed.length > 0) {
        await client.query(
          `INSERT INTO order_claims (order_id, poll_id, from_slot, to_slot, lease_until)
           SELECT $1, $2, u.from_slot, u.to_slot, $3 FROM unnest($4::bigint[], $5::bigint[]) AS u(from_slot, to_slot)`,
          [id, pollId, leaseUntil, claimed.map((c) => c.from), claimed.map((c) => c.to)],
        );
      }
      return outcomes;
    });
  }

  async commitDelivery(id: string, pollId: string, slots: readonly number[], expiresAt: string): Promise<void> {
    await this.write(id, async (client) => {
      const added = await addSlots(client, id, DELIVERED, slots);
      await client.query(
        `UPDATE orders SET delivered = delivered + $1, expires_at = $2,
           status = CASE WHEN delivered + $1 >= size AND status IN ('queued', 'running') THEN 'complete' ELSE status END
         WHERE id = $3`,
        [added, expiresAt, id],
      );
      await client.query('DELETE FROM order_claims WHERE order_id = $1 AND poll_id = $2', [id, pollId]);
    });
  }

  async releaseClaims(id: string, pollId: string): Promise<void> {
    await this.write(id, async (client) => {
      await client.query('DELETE FROM order_claims WHERE order_id = $1 AND poll_id = $2', [id, pollId]);
    });
  }

  async finish(id: string, status: Exclude<OrderStatus, 'queued' | 'running' | 'complete'>, error?: string): Promise<boolean> {
    // One statement: PostgreSQL re-checks the status condition on the row it locks.
    const { rowCount } = await this.pool.query(
      `UPDATE orders SET status = $1, error = $2 WHERE id = $3 AND status IN ('queued', 'running')`,
      [status, error ?? null, id],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Runs `work` in a transaction holding the order row's lock (no lock to take when there is no such order). */
  private write<T>(id: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [id]);
      return work(client);
    });
  }
}

/** Sets the slots' bits; returns how many were not set before. Call holding the order's lock. */
async function addSlots(client: pg.PoolClient, id: string, kind: number, slots: readonly number[]): Promise<number> {
  if (slots.length === 0) return 0;
  const blocks = await readBlocks(client, id, kind, slots);
  const touched = new Set<number>();
  let added = 0;
  for (const slot of slots) {
    const block = blockOf(slot);
    const bits = blocks.get(block)!;
    const offset = slot - block * BLOCK_SLOTS;
    const mask = 1 << (offset & 7);
    if ((bits[offset >> 3] & mask) === 0) {
      bits[offset >> 3] |= mask;
      added++;
      touched.add(block);
    }
  }
  if (touched.size > 0) {
    const list = [...touched];
    await client.query(
      `INSERT INTO order_slot_bits (order_id, kind, block, bits)
       SELECT $1, $2, u.block, u.bits FROM unnest($3::integer[], $4::bytea[]) AS u(block, bits)
       ON CONFLICT (order_id, kind, block) DO UPDATE SET bits = EXCLUDED.bits`,
      [id, kind, list, list.map((block) => blocks.get(block)!)],
    );
  }
  return added;
}

/** The bitmap blocks covering `slots` (zeroed when not stored yet). */
async function readBlocks(db: pg.Pool | pg.PoolClient, id: string, kind: number, slots: readonly number[]): Promise<Map<number, Buffer>> {
  const wanted = [...new Set(slots.map(blockOf))];
  const blocks = new Map<number, Buffer>(wanted.map((block) => [block, Buffer.alloc(BLOCK_SLOTS / 8)]));
  if (wanted.length === 0) return blocks;
  const { rows } = await db.query<{ block: number; bits: Buffer }>(
    'SELECT block, bits FROM order_slot_bits WHERE order_id = $1 AND kind = $2 AND block = ANY($3::integer[])',
    [id, kind, wanted],
  );
  for (const row of rows) blocks.set(row.block, row.bits);
  return blocks;
}

/** A test of one bit of `kind` for the given slots (read at once). */
async function readBits(db: pg.Pool | pg.PoolClient, id: string, kind: number, slots: readonly number[]): Promise<(slot: number) => boolean> {
  const blocks = await readBlocks(db, id, kind, slots);
  return (slot) => {
    const block = blockOf(slot);
    const offset = slot - block * BLOCK_SLOTS;
    return (blocks.get(block)![offset >> 3] & (1 << (offset & 7))) !== 0;
  };
}
