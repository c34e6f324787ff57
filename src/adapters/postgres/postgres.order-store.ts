import type pg from 'pg';
import { ORDER_COLUMNS, SqlOrderStore, runFlow, type OrderSql, type Row, type Step } from '../sql/order-store.flows.js';
import { inTransaction } from './postgres.metadata-store.js';

const UNIQUE_VIOLATION = '23505';

const WITH_STREAMS = `SELECT ${ORDER_COLUMNS}, s.state AS stream_state
  FROM orders o LEFT JOIN order_streams s ON s.order_id = o.id AND s.generation = o.generation`;

/** The statements of sql/order-store.flows.ts in PostgreSQL's dialect: the reads of a change lock their rows. */
export const POSTGRES_ORDER_SQL: OrderSql = {
  insertOrder: `INSERT INTO orders (id, dataset_id, spec, status, owner, order_key, request, generation, plan, size, ttl_seconds, created_at, expires_at, error)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
  upsertStream: `INSERT INTO order_streams (order_id, generation, stream, state) VALUES ($1, $2, $3, $4)
    ON CONFLICT (order_id, generation, stream) DO UPDATE SET state = excluded.state`,
  orderIdByKey: 'SELECT id FROM orders WHERE owner = $1 AND order_key = $2',
  orderById: `${WITH_STREAMS} WHERE o.id = $1 ORDER BY s.stream`,
  orderByKey: `${WITH_STREAMS} WHERE o.owner = $1 AND o.order_key = $2 ORDER BY s.stream`,
  listOrders: `SELECT ${ORDER_COLUMNS}, s.state AS stream_state
    FROM (SELECT * FROM orders WHERE ($1::text IS NULL OR owner = $2::text) AND ($3::integer = 0 OR status IN ('queued', 'running'))
          ORDER BY created_at COLLATE "C" DESC, id COLLATE "C" LIMIT $4) o
    LEFT JOIN order_streams s ON s.order_id = o.id AND s.generation = o.generation
    ORDER BY o.created_at COLLATE "C" DESC, o.id COLLATE "C", s.stream`,
  lockOrder: `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1 FOR UPDATE`,
  lockStreams: 'SELECT state FROM order_streams WHERE order_id = $1 AND generation = $2 ORDER BY stream FOR UPDATE',
  lockStream: 'SELECT state FROM order_streams WHERE order_id = $1 AND generation = $2 AND stream = $3 FOR UPDATE',
  readStream: 'SELECT state FROM order_streams WHERE order_id = $1 AND generation = $2 AND stream = $3',
  updateOrder: 'UPDATE orders SET status = $1, error = $2, generation = $3, plan = $4, ttl_seconds = $5, expires_at = $6 WHERE id = $7',
  updateStream: 'UPDATE order_streams SET state = $1 WHERE order_id = $2 AND generation = $3 AND stream = $4',
};

/**
 * Orders in PostgreSQL, on the metadata store's pool (which that store closes). A change runs in
 * one transaction whose row reads lock (SELECT … FOR UPDATE), so changes of one stream run one at
 * a time across replicas while other streams of the order go on. Commits are durable.
 */
export class PostgresOrderStore extends SqlOrderStore {
  constructor(pool: pg.Pool) {
    const on = (db: pg.Pool | pg.PoolClient) => async (step: Step) => (await db.query(POSTGRES_ORDER_SQL[step.name], step.params as unknown[])).rows as Row[];
    super({
      read: (flow) => runFlow(flow, on(pool)),
      write: (flow) => inTransaction(pool, (client) => runFlow(flow, on(client))),
      isUniqueViolation: (error) => (error as { code?: string }).code === UNIQUE_VIOLATION,
    });
  }
}
