import type Database from 'better-sqlite3';
import type { ClaimOutcome, OrderRecord, OrderSpec, OrderStatus, OrderStore } from '../../ports/order-store.js';

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

/**
 * Orders in the same SQLite database as the metadata (see SqliteMetadataStore.db). Writes that
 * a client or another process relies on (a new order, a delivery, a final status) wait for
 * `syncCommitted`; counters and leases may be lost in a crash without harm.
 */
export class SqliteOrderStore implements OrderStore {
  constructor(
    private readonly db: Database.Database,
    private readonly syncCommitted: () => Promise<void> = async () => undefined,
  ) {}

  async createOrder(spec: OrderSpec, shardsTotal: number, expiresAt: string): Promise<OrderRecord> {
    this.db
      .prepare(
        `INSERT INTO orders (id, dataset_id, spec, status, shards_total, size, created_at, expires_at)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)`,
      )
      .run(spec.id, spec.datasetId, JSON.stringify(spec), shardsTotal, spec.size, spec.createdAt, expiresAt);
    await this.syncCommitted();
    return (await this.getOrder(spec.id))!;
  }

  async getOrder(id: string): Promise<OrderRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM orders WHERE id = ?').get(id) as OrderRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async listOrders({ activeOnly, limit }: { activeOnly: boolean; limit: number }): Promise<OrderRecord[]> {
    const where = activeOnly ? `WHERE status IN ('queued', 'running')` : '';
    const rows = this.db.prepare(`SELECT * FROM orders ${where} ORDER BY created_at DESC, id LIMIT ?`).all(limit) as OrderRow[];
    return rows.map(toRecord);
  }

  async recordProduced(id: string, slots: readonly number[]): Promise<void> {
    this.db.transaction(() => {
      const added = this.addSlots(id, PRODUCED, slots);
      this.db
        .prepare(`UPDATE orders SET produced = produced + ?, status = CASE status WHEN 'queued' THEN 'running' ELSE status END WHERE id = ?`)
        .run(added, id);
    }).immediate();
  }

  async markShardDone(id: string, shard: number): Promise<void> {
    this.db.transaction(() => {
      const inserted = this.db.prepare('INSERT OR IGNORE INTO order_shards_done (order_id, shard) VALUES (?, ?)').run(id, shard).changes;
      if (inserted) this.db.prepare('UPDATE orders SET shards_done = shards_done + 1 WHERE id = ?').run(id);
    }).immediate();
  }

  async pendingShards(id: string): Promise<number[]> {
    const order = this.db.prepare('SELECT shards_total FROM orders WHERE id = ?').pluck().get(id) as number | undefined;
    if (order === undefined) return [];
    const done = new Set(this.db.prepare('SELECT shard FROM order_shards_done WHERE order_id = ?').pluck().all(id) as number[]);
    return Array.from({ length: order }, (_, shard) => shard).filter((shard) => !done.has(shard));
  }

  async undelivered(id: string, slots: readonly number[]): Promise<number[]> {
    return this.withBits(id, DELIVERED, (has) => slots.filter((slot) => !has(slot)));
  }

  async claim(id: string, pollId: string, messages: readonly (readonly number[])[], leaseUntil: number, now: number): Promise<ClaimOutcome[]> {
    const overlapping = this.db.prepare(
      `SELECT 1 FROM order_claims WHERE order_id = ? AND poll_id <> ? AND lease_until > ? AND from_slot < ? AND to_slot > ? LIMIT 1`,
    );
    const insert = this.db.prepare('INSERT INTO order_claims (order_id, poll_id, from_slot, to_slot, lease_until) VALUES (?, ?, ?, ?, ?)');
    const dropExpired = this.db.prepare('DELETE FROM order_claims WHERE order_id = ? AND lease_until <= ?');
    return this.db
      .transaction(() => {
        dropExpired.run(id, now);
        return messages.map((slots): ClaimOutcome => {
          const open = this.withBits(id, DELIVERED, (has) => slots.filter((slot) => !has(slot)));
          if (open.length === 0) return { kind: 'delivered' };
          const from = Math.min(...open);
          const to = Math.max(...open) + 1;
          if (overlapping.get(id, pollId, now, to, from)) return { kind: 'busy' };
          insert.run(id, pollId, from, to, leaseUntil);
          return { kind: 'claimed', slots: open };
        });
      })
      .immediate();
  }

  async commitDelivery(id: string, pollId: string, slots: readonly number[], expiresAt: string): Promise<void> {
    this.db.transaction(() => {
      const added = this.addSlots(id, DELIVERED, slots);
      this.db
        .prepare(
          `UPDATE orders SET delivered = delivered + @added, expires_at = @expiresAt,
             status = CASE WHEN delivered + @added >= size AND status IN ('queued', 'running') THEN 'complete' ELSE status END
           WHERE id = @id`,
        )
        .run({ added, expiresAt, id });
      this.db.prepare('DELETE FROM order_claims WHERE order_id = ? AND poll_id = ?').run(id, pollId);
    }).immediate();
    await this.syncCommitted();
  }

  async releaseClaims(id: string, pollId: string): Promise<void> {
    this.db.prepare('DELETE FROM order_claims WHERE order_id = ? AND poll_id = ?').run(id, pollId);
  }

  async finish(id: string, status: Exclude<OrderStatus, 'queued' | 'running' | 'complete'>, error?: string): Promise<boolean> {
    const changes = this.db
      .prepare(`UPDATE orders SET status = ?, error = ? WHERE id = ? AND status IN ('queued', 'running')`)
      .run(status, error ?? null, id).changes;
    await this.syncCommitted();
    return changes > 0;
  }

  /** Sets the slots' bits; returns how many were not set before. Call inside a transaction. */
  private addSlots(id: string, kind: number, slots: readonly number[]): number {
    const byBlock = new Map<number, number[]>();
    for (const slot of slots) {
      const block = Math.floor(slot / BLOCK_SLOTS);
      const list = byBlock.get(block);
      if (list) list.push(slot);
      else byBlock.set(block, [slot]);
    }
    let added = 0;
    for (const [block, blockSlots] of byBlock) {
      const bits = this.readBlock(id, kind, block);
      for (const slot of blockSlots) {
        const offset = slot - block * BLOCK_SLOTS;
        const mask = 1 << (offset & 7);
        if ((bits[offset >> 3] & mask) === 0) {
          bits[offset >> 3] |= mask;
          added++;
        }
      }
      this.db.prepare('INSERT OR REPLACE INTO order_slot_bits (order_id, kind, block, bits) VALUES (?, ?, ?, ?)').run(id, kind, block, bits);
    }
    return added;
  }

  private readBlock(id: string, kind: number, block: number): Buffer {
    const bits = this.db.prepare('SELECT bits FROM order_slot_bits WHERE order_id = ? AND kind = ? AND block = ?').pluck().get(id, kind, block) as
      | Buffer
      | undefined;
    return bits ?? Buffer.alloc(BLOCK_SLOTS / 8);
  }

  private withBits<T>(id: string, kind: number, use: (has: (slot: number) => boolean) => T): T {
    const blocks = new Map<number, Buffer>();
    return use((slot) => {
      const block = Math.floor(slot / BLOCK_SLOTS);
      let bits = blocks.get(block);
      if (!bits) {
        bits = this.readBlock(id, kind, block);
        blocks.set(block, bits);
      }
      const offset = slot - block * BLOCK_SLOTS;
      return (bits[offset >> 3] & (1 << (offset & 7))) !== 0;
    });
  }
}
