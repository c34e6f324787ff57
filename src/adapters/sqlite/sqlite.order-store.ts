import type Database from 'better-sqlite3';
import { ORDER_COLUMNS, SqlOrderStore, runFlowSync, type OrderSql, type Row, type Step } from '../sql/order-store.flows.js';
import type { SqliteDatabase } from './sqlite.database.js';

const WITH_STREAMS = `SELECT ${ORDER_COLUMNS}, s.state AS stream_state
  FROM orders o LEFT JOIN order_streams s ON s.order_id = o.id AND s.generation = o.generation`;

/** The statements of sql/order-store.flows.ts in SQLite's dialect (BEGIN IMMEDIATE locks, so reads need no FOR UPDATE). */
export const SQLITE_ORDER_SQL: OrderSql = {
  insertOrder: `INSERT INTO orders (id, dataset_id, spec, status, owner, order_key, request, generation, plan, size, ttl_seconds, created_at, expires_at, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  upsertStream: `INSERT INTO order_streams (order_id, generation, stream, state) VALUES (?, ?, ?, ?)
    ON CONFLICT (order_id, generation, stream) DO UPDATE SET state = excluded.state`,
  orderIdByKey: 'SELECT id FROM orders WHERE owner = ? AND order_key = ?',
  orderById: `${WITH_STREAMS} WHERE o.id = ? ORDER BY s.stream`,
  orderByKey: `${WITH_STREAMS} WHERE o.owner = ? AND o.order_key = ? ORDER BY s.stream`,
  listOrders: `SELECT ${ORDER_COLUMNS}, s.state AS stream_state
    FROM (SELECT * FROM orders WHERE (? IS NULL OR owner = ?) AND (? = 0 OR status IN ('queued', 'running'))
          ORDER BY created_at DESC, id LIMIT ?) o
    LEFT JOIN order_streams s ON s.order_id = o.id AND s.generation = o.generation
    ORDER BY o.created_at DESC, o.id, s.stream`,
  lockOrder: `SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = ?`,
  lockStreams: 'SELECT state FROM order_streams WHERE order_id = ? AND generation = ? ORDER BY stream',
  lockStream: 'SELECT state FROM order_streams WHERE order_id = ? AND generation = ? AND stream = ?',
  readStream: 'SELECT state FROM order_streams WHERE order_id = ? AND generation = ? AND stream = ?',
  updateOrder: 'UPDATE orders SET status = ?, error = ?, generation = ?, plan = ?, ttl_seconds = ?, expires_at = ? WHERE id = ?',
  updateStream: 'UPDATE order_streams SET state = ? WHERE order_id = ? AND generation = ? AND stream = ?',
};

/**
 * Orders in a SqliteDatabase (usually the metadata's). Every change runs synchronously inside one
 * BEGIN IMMEDIATE transaction; writes a client relies on wait for the shared WAL sync.
 */
export class SqliteOrderStore extends SqlOrderStore {
  constructor(database: SqliteDatabase) {
    const db = database.connection;
    const statements = new Map<string, Database.Statement>();
    const run = (step: Step): Row[] => {
      const text = SQLITE_ORDER_SQL[step.name];
      let statement = statements.get(text);
      if (!statement) {
        statement = db.prepare(text);
        statements.set(text, statement);
      }
      if (statement.reader) return statement.all(...step.params) as Row[];
      statement.run(...step.params);
      return [];
    };
    super({
      read: async (flow) => runFlowSync(flow, run),
      write: async (flow, options) => {
        const result = db.transaction(() => runFlowSync(flow, run)).immediate();
        if (options?.durable) await database.syncCommitted();
        return result;
      },
      isUniqueViolation: (error) => (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE',
    });
  }
}
