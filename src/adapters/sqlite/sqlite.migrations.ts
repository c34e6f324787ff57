/**
 * The SQLite schema as ordered migrations. Migration i (0-based) has run when
 * `PRAGMA user_version` > i. Never edit a migration that has shipped; append a new one.
 *
 * Revisions: `datasets.revision` is raised by one on every add, relabel and delete. A sample is
 * live at revision R when `added_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R)`; its label
 * at R is the `sample_labels` row with the largest `from_rev <= R`. `samples.category_idx` caches
 * the current label and `samples.label_rev` its `from_rev`, so only samples relabelled after R need
 * the history.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE datasets (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    width               INTEGER NOT NULL,
    height              INTEGER NOT NULL,
    channels            INTEGER NOT NULL,
    test_percent        INTEGER NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 0,
    next_pixel_slot     INTEGER NOT NULL DEFAULT 0,
    next_category_index INTEGER NOT NULL DEFAULT 0,
    live_count          INTEGER NOT NULL DEFAULT 0, -- live samples, kept with every add and delete
    created_at          TEXT    NOT NULL
  );

  CREATE TABLE categories (
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    created_rev INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, idx),
    UNIQUE (dataset_id, name)
  ) WITHOUT ROWID;

  CREATE TABLE samples (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sha256       TEXT    NOT NULL,
    media_type   TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    pixel_slot   INTEGER NOT NULL,
    split_bucket INTEGER NOT NULL,
    category_idx INTEGER NOT NULL, -- the current label
    label_rev    INTEGER NOT NULL, -- revision of the current label: at any R >= label_rev it is the label
    added_rev    INTEGER NOT NULL,
    deleted_rev  INTEGER,
    created_at   TEXT    NOT NULL,
    FOREIGN KEY (dataset_id, category_idx) REFERENCES categories(dataset_id, idx)
  );

  -- At most one live sample per SHA-256 in a dataset; also the duplicate lookup.
  CREATE UNIQUE INDEX samples_live_sha ON samples(dataset_id, sha256) WHERE deleted_rev IS NULL;
  -- Snapshot scans (eligibleSamples) and paging, in id order.
  CREATE INDEX samples_dataset_id ON samples(dataset_id, id);
  -- Category filter on live listings and live counts per category.
  CREATE INDEX samples_live_category ON samples(dataset_id, category_idx, id) WHERE deleted_rev IS NULL;

  CREATE TABLE sample_labels (
    sample_id    INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    from_rev     INTEGER NOT NULL,
    category_idx INTEGER NOT NULL,
    PRIMARY KEY (sample_id, from_rev)
  ) WITHOUT ROWID;
  `,
  `
  -- Batch orders. The spec is kept whole as JSON; counters and status are columns.
  -- No foreign key to datasets: deleting a dataset fails its orders, it does not erase them.
  CREATE TABLE orders (
    id           TEXT    PRIMARY KEY,
    dataset_id   INTEGER NOT NULL,
    spec         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    shards_total INTEGER NOT NULL,
    shards_done  INTEGER NOT NULL DEFAULT 0,
    produced     INTEGER NOT NULL DEFAULT 0,
    delivered    INTEGER NOT NULL DEFAULT 0,
    size         INTEGER NOT NULL,
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    error        TEXT
  );
  CREATE INDEX orders_created ON orders(created_at);

  CREATE TABLE order_shards_done (
    order_id TEXT    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    shard    INTEGER NOT NULL,
    PRIMARY KEY (order_id, shard)
  ) WITHOUT ROWID;

  -- Slot bitmaps in blocks of 65,536 slots: kind 0 = produced, 1 = delivered.
  CREATE TABLE order_slot_bits (
    order_id TEXT    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    kind     INTEGER NOT NULL,
    block    INTEGER NOT NULL,
    bits     BLOB    NOT NULL,
    PRIMARY KEY (order_id, kind, block)
  ) WITHOUT ROWID;

  -- Leases of polls on the slots they are sending.
  CREATE TABLE order_claims (
    order_id    TEXT    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    poll_id     TEXT    NOT NULL,
    from_slot   INTEGER NOT NULL,
    to_slot     INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
  );
  CREATE INDEX order_claims_slots ON order_claims(order_id, from_slot);
  `,
  `
  -- Orders by streams (ranks, generations, cursors): one small ledger row per stream replaces
  -- the slot bitmaps, shard marks and claims. Orders still active when this runs were placed
  -- under the old model and cannot continue: they are failed with an error saying so. Finished
  -- orders keep their counts, as a one-stream order.
  UPDATE orders SET status = 'failed',
    error = 'placed before an upgrade of the service changed how orders are delivered; place it again'
    WHERE status IN ('queued', 'running');
  DROP TABLE order_claims;
  DROP TABLE order_slot_bits;
  DROP TABLE order_shards_done;

  ALTER TABLE orders ADD COLUMN owner TEXT;      -- who placed it (a digest of the API key); NULL before
  ALTER TABLE orders ADD COLUMN order_key TEXT;  -- the placement key, unique per owner
  ALTER TABLE orders ADD COLUMN request TEXT;    -- the request as placed, canonical JSON
  ALTER TABLE orders ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE orders ADD COLUMN plan TEXT;       -- its generations (domain/order-streams.ts), JSON
  ALTER TABLE orders ADD COLUMN ttl_seconds INTEGER;
  UPDATE orders SET
    ttl_seconds = json_extract(spec, '$.ttlSeconds'),
    plan = json_object('size', size, 'nextSlot', size, 'generations', json_array(json_object(
      'ranks', 1, 'rounding', 'exact', 'length', size, 'deliveredBefore', 0, 'taken', size, 'padFrom', size, 'groups', json_array())));

  -- One row per (order, generation, stream): its ledger and production state
  -- (domain/stream-state.ts), JSON.
  CREATE TABLE order_streams (
    order_id   TEXT    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    stream     INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    PRIMARY KEY (order_id, generation, stream)
  ) WITHOUT ROWID;
  INSERT INTO order_streams (order_id, generation, stream, state)
    SELECT id, 0, 0, json_object('generation', 0, 'stream', 0, 'length', size, 'mode', 'shared', 'frontier', delivered,
      'leases', json_array(), 'returned', json_array(), 'acked', 0, 'produced', produced, 'run', 0,
      'parked', json('false'), 'producer', NULL, 'closed', json('false'))
    FROM orders;

  ALTER TABLE orders DROP COLUMN shards_total;
  ALTER TABLE orders DROP COLUMN shards_done;
  ALTER TABLE orders DROP COLUMN produced;
  ALTER TABLE orders DROP COLUMN delivered;
  CREATE UNIQUE INDEX orders_owner_key ON orders(owner, order_key) WHERE order_key IS NOT NULL;
  CREATE INDEX orders_owner_created ON orders(owner, created_at);
  `,
  // Dataset names are unique regardless of letter case. Where two names differing only in case
  // exist already, the later-created dataset is renamed <first 40 characters>-renamed-<id> (its
  // samples kept) before the index is built, so this migration cannot fail on such a pair.
  `
  UPDATE datasets SET name = substr(name, 1, 40) || '-renamed-' || id
  WHERE EXISTS (SELECT 1 FROM datasets d WHERE lower(d.name) = lower(datasets.name) AND d.id < datasets.id);
  CREATE UNIQUE INDEX datasets_name_folded ON datasets (lower(name));
  `,
  `
  -- Originals packed in segment files: where each one's record is (see segment.blob-store.ts).
  CREATE TABLE blob_index (
    sha256      TEXT    PRIMARY KEY,
    segment_id  INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    byte_length INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX blob_index_segment ON blob_index(segment_id, byte_offset);
  -- Whether any sample (of any dataset, deleted or not) still names a blob.
  CREATE INDEX samples_sha ON samples(sha256);
  -- When a sample was deleted: the purge removes tombstones older than the retention period.
  -- Tombstones from before this column count from the upgrade.
  ALTER TABLE samples ADD COLUMN deleted_at TEXT;
  UPDATE samples SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE deleted_rev IS NOT NULL;
  CREATE INDEX samples_tombstones ON samples(dataset_id, deleted_at) WHERE deleted_rev IS NOT NULL;
  -- Revisions below this one may miss purged samples: batches and orders there are refused.
  ALTER TABLE datasets ADD COLUMN purged_rev INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Export jobs: what each exports (spec, JSON), how far it is, its finished files (JSON), and
  -- the runner that holds it until lease_until (epoch ms); a runner that died loses it then.
  CREATE TABLE export_jobs (
    id          TEXT    PRIMARY KEY,
    dataset_id  INTEGER  NOT NULL,
    dataset_name TEXT   NOT NULL,
    spec        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    done        INTEGER  NOT NULL DEFAULT 0,
    files       TEXT    NOT NULL DEFAULT '[]',
    error       TEXT,
    runner      TEXT,
    lease_until INTEGER  NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX export_jobs_claimable ON export_jobs(status, created_at);
  CREATE INDEX export_jobs_dataset ON export_jobs(dataset_name, created_at);
`,
  `
  -- Webhooks, and their outbox: one row per delivery, written when the event happens and sent
  -- by a dispatcher (next_at: when the next attempt is due, epoch ms). One delivery per hook and
  -- event key, however often replicas report the event.
  CREATE TABLE webhooks (
    id         TEXT    PRIMARY KEY,
    url        TEXT    NOT NULL,
    events     TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    id           TEXT    PRIMARY KEY,
    hook_id      TEXT    NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event        TEXT    NOT NULL,
    event_key    TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER  NOT NULL,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   TEXT    NOT NULL,
    delivered_at TEXT,
    UNIQUE (hook_id, event_key)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_at);
  CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(hook_id, created_at);
  -- The revision each dataset was last notified at (dataset.revision events).
  CREATE TABLE webhook_revision_cursors (
    dataset_id INTEGER  PRIMARY KEY,
    revision   INTEGER  NOT NULL
  );
`,
  // Declared class lists: a dataset that declares its categories refuses uploads and relabels
  // into others (domain/category-list.ts).
  `
  ALTER TABLE datasets ADD COLUMN categories_declared INTEGER NOT NULL DEFAULT 0;
  `,
  // What a sample carries beside its label: the original filename, tags and a small JSON object
  // (domain/sample-annotations.ts). Not part of snapshots: changing them raises no revision.
  `
  ALTER TABLE samples ADD COLUMN filename TEXT;
  ALTER TABLE samples ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE samples ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
  `,
  // Bulk actions (with what undoing each needs) and the audit log: who added, relabelled, deleted,
  // annotated or restored which sample, when (the key's name and roles, never the key).
  `
  CREATE TABLE bulk_actions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    roles      TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    changed    INTEGER NOT NULL,
    undoes     INTEGER,
    undone_by  INTEGER,
    undo       TEXT    NOT NULL
  );
  CREATE INDEX bulk_actions_dataset ON bulk_actions(dataset_id, id);
  CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sample_id  INTEGER NOT NULL,  -- no foreign key: a purged sample keeps its history
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    roles      TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    bulk_id    INTEGER,
    detail     TEXT    NOT NULL
  );
  CREATE INDEX audit_log_dataset ON audit_log(dataset_id, id);
  CREATE INDEX audit_log_sample ON audit_log(dataset_id, sample_id, id);
  `,
  `
  -- Perceptual hashes (domain/perceptual-hash.ts) of the stored pixels: 16 hex digits, computed at
  -- ingest; NULL until the serve process's background pass has computed it for older samples.
  ALTER TABLE samples ADD COLUMN phash TEXT;
  -- What the background pass still has to do, by id: empty once every sample is hashed.
  CREATE INDEX samples_phash_missing ON samples(id) WHERE phash IS NULL;
  `,
  // What a trainer reported of each sample (loss, class probabilities, predicted class), the
  // latest report per sample (domain/mislabel-ranking.ts ranks them into the review queue), and
  // what a person decided about it since: a new report clears the decision.
  `
  CREATE TABLE sample_feedback (
    dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sample_id   INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    loss        REAL,
    probs       TEXT,     -- JSON array, one probability per category index
    predicted   INTEGER,
    revision    INTEGER NOT NULL,  -- the revision the trainer's samples were drawn at
    received_at TEXT    NOT NULL,
    decision    TEXT,     -- confirm | relabel | delete, until the next report
    decided_at  TEXT,
    PRIMARY KEY (dataset_id, sample_id)
  );
  `,
];
