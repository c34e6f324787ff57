/**
 * The PostgreSQL schema as ordered migrations: migration i (0-based) is version i + 1, recorded in
 * `sensory_schema_migrations` when applied. Never edit a migration that has shipped; append a new one.
 *
 * The tables mirror the SQLite ones (see sqlite.migrations.ts for revisions, tombstones, labels
 * and slot bitmaps): `bigint` ids and counters (read back as numbers, ids stay below 2^53),
 * `bytea` bitmaps, and timestamps as ISO-8601 text written by the service, so records read back
 * exactly as on SQLite.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE datasets (
    id                  bigserial PRIMARY KEY,
    name                text      NOT NULL UNIQUE,
    width               integer   NOT NULL,
    height              integer   NOT NULL,
    channels            integer   NOT NULL,
    test_percent        integer   NOT NULL,
    revision            bigint    NOT NULL DEFAULT 0,
    next_pixel_slot     bigint    NOT NULL DEFAULT 0,
    next_category_index integer   NOT NULL DEFAULT 0,
    live_count          bigint    NOT NULL DEFAULT 0,
    created_at          text      NOT NULL
  );

  CREATE TABLE categories (
    dataset_id  bigint  NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    idx         integer NOT NULL,
    name        text    NOT NULL,
    created_rev bigint  NOT NULL,
    PRIMARY KEY (dataset_id, idx),
    UNIQUE (dataset_id, name)
  );

  CREATE TABLE samples (
    id           bigserial PRIMARY KEY,
    dataset_id   bigint    NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sha256       text      NOT NULL,
    media_type   text      NOT NULL,
    bytes        bigint    NOT NULL,
    pixel_slot   bigint    NOT NULL,
    split_bucket integer   NOT NULL,
    category_idx integer   NOT NULL, -- the current label
    label_rev    bigint    NOT NULL, -- revision of the current label: at any R >= label_rev it is the label
    added_rev    bigint    NOT NULL,
    deleted_rev  bigint,
    created_at   text      NOT NULL,
    FOREIGN KEY (dataset_id, category_idx) REFERENCES categories(dataset_id, idx)
  );

  -- At most one live sample per SHA-256 in a dataset; also the duplicate lookup.
  CREATE UNIQUE INDEX samples_live_sha ON samples(dataset_id, sha256) WHERE deleted_rev IS NULL;
  -- Snapshot scans (eligibleSamples) and paging, in id order.
  CREATE INDEX samples_dataset_id ON samples(dataset_id, id);
  -- Category filter on live listings and live counts per category.
  CREATE INDEX samples_live_category ON samples(dataset_id, category_idx, id) WHERE deleted_rev IS NULL;

  CREATE TABLE sample_labels (
    sample_id    bigint  NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    from_rev     bigint  NOT NULL,
    category_idx integer NOT NULL,
    PRIMARY KEY (sample_id, from_rev)
  );
  `,
  `
  -- Batch orders. The spec is kept whole as JSON text; counters and status are columns.
  -- No foreign key to datasets: deleting a dataset fails its orders, it does not erase them.
  CREATE TABLE orders (
    id           text    PRIMARY KEY,
    dataset_id   bigint  NOT NULL,
    spec         text    NOT NULL,
    status       text    NOT NULL,
    shards_total integer NOT NULL,
    shards_done  integer NOT NULL DEFAULT 0,
    produced     bigint  NOT NULL DEFAULT 0,
    delivered    bigint  NOT NULL DEFAULT 0,
    size         bigint  NOT NULL,
    created_at   text    NOT NULL,
    expires_at   text    NOT NULL,
    error        text
  );
  CREATE INDEX orders_created ON orders(created_at COLLATE "C");

  CREATE TABLE order_shards_done (
    order_id text    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    shard    integer NOT NULL,
    PRIMARY KEY (order_id, shard)
  );

  -- Slot bitmaps in blocks of 65,536 slots: kind 0 = produced, 1 = delivered.
  CREATE TABLE order_slot_bits (
    order_id text     NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    kind     smallint NOT NULL,
    block    integer  NOT NULL,
    bits     bytea    NOT NULL,
    PRIMARY KEY (order_id, kind, block)
  );

  -- Leases of polls on the slots they are sending (lease_until in epoch milliseconds).
  CREATE TABLE order_claims (
    order_id    text   NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    poll_id     text   NOT NULL,
    from_slot   bigint NOT NULL,
    to_slot     bigint NOT NULL,
    lease_until bigint NOT NULL
  );
  CREATE INDEX order_claims_slots ON order_claims(order_id, from_slot);
  `,
  `
  -- Orders by streams (ranks, generations, cursors): one small ledger row per stream replaces
  -- the slot bitmaps, shard marks and claims (see sqlite.migrations.ts). Orders still active when
  -- this runs are failed with an error saying so; finished ones keep their counts.
  UPDATE orders SET status = 'failed',
    error = 'placed before an upgrade of the service changed how orders are delivered; place it again'
    WHERE status IN ('queued', 'running');
  DROP TABLE order_claims;
  DROP TABLE order_slot_bits;
  DROP TABLE order_shards_done;

  ALTER TABLE orders ADD COLUMN owner text;
  ALTER TABLE orders ADD COLUMN order_key text;
  ALTER TABLE orders ADD COLUMN request text;
  ALTER TABLE orders ADD COLUMN generation integer NOT NULL DEFAULT 0;
  ALTER TABLE orders ADD COLUMN plan text;
  ALTER TABLE orders ADD COLUMN ttl_seconds integer;
  UPDATE orders SET
    ttl_seconds = (spec::json ->> 'ttlSeconds')::integer,
    plan = json_build_object('size', size, 'nextSlot', size, 'generations', json_build_array(json_build_object(
      'ranks', 1, 'rounding', 'exact', 'length', size, 'deliveredBefore', 0, 'taken', size, 'padFrom', size, 'groups', json_build_array())))::text;

  CREATE TABLE order_streams (
    order_id   text    NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    generation integer NOT NULL,
    stream     integer NOT NULL,
    state      text    NOT NULL,
    PRIMARY KEY (order_id, generation, stream)
  );
  INSERT INTO order_streams (order_id, generation, stream, state)
    SELECT id, 0, 0, json_build_object('generation', 0, 'stream', 0, 'length', size, 'mode', 'shared', 'frontier', delivered,
      'leases', json_build_array(), 'returned', json_build_array(), 'acked', 0, 'produced', produced, 'run', 0,
      'parked', false, 'producer', NULL, 'closed', false)::text
    FROM orders;

  ALTER TABLE orders DROP COLUMN shards_total, DROP COLUMN shards_done, DROP COLUMN produced, DROP COLUMN delivered;
  CREATE UNIQUE INDEX orders_owner_key ON orders(owner, order_key) WHERE order_key IS NOT NULL;
  CREATE INDEX orders_owner_created ON orders(owner, created_at COLLATE "C");
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
    sha256      text    PRIMARY KEY,
    segment_id  bigint  NOT NULL,
    byte_offset bigint  NOT NULL,
    byte_length bigint  NOT NULL
  );
  CREATE INDEX blob_index_segment ON blob_index(segment_id, byte_offset);
  -- Whether any sample (of any dataset, deleted or not) still names a blob.
  CREATE INDEX samples_sha ON samples(sha256);
  -- When a sample was deleted: the purge removes tombstones older than the retention period.
  -- Tombstones from before this column count from the upgrade.
  ALTER TABLE samples ADD COLUMN deleted_at text;
  UPDATE samples SET deleted_at = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') WHERE deleted_rev IS NOT NULL;
  CREATE INDEX samples_tombstones ON samples(dataset_id, deleted_at) WHERE deleted_rev IS NOT NULL;
  -- Revisions below this one may miss purged samples: batches and orders there are refused.
  ALTER TABLE datasets ADD COLUMN purged_rev bigint NOT NULL DEFAULT 0;
  `,
  `
  -- Export jobs: what each exports (spec, JSON), how far it is, its finished files (JSON), and
  -- the runner that holds it until lease_until (epoch ms); a runner that died loses it then.
  CREATE TABLE export_jobs (
    id          text    PRIMARY KEY,
    dataset_id  bigint  NOT NULL,
    dataset_name text   NOT NULL,
    spec        text    NOT NULL,
    status      text    NOT NULL,
    done        bigint  NOT NULL DEFAULT 0,
    files       text    NOT NULL DEFAULT '[]',
    error       text,
    runner      text,
    lease_until bigint  NOT NULL DEFAULT 0,
    attempts    integer NOT NULL DEFAULT 0,
    created_at  text    NOT NULL,
    finished_at text
  );
  CREATE INDEX export_jobs_claimable ON export_jobs(status, created_at);
  CREATE INDEX export_jobs_dataset ON export_jobs(dataset_name, created_at);
`,
  `
  -- Webhooks, and their outbox: one row per delivery, written when the event happens and sent
  -- by a dispatcher (next_at: when the next attempt is due, epoch ms). One delivery per hook and
  -- event key, however often replicas report the event.
  CREATE TABLE webhooks (
    id         text    PRIMARY KEY,
    url        text    NOT NULL,
    events     text    NOT NULL,
    secret     text    NOT NULL,
    created_at text    NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    id           text    PRIMARY KEY,
    hook_id      text    NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event        text    NOT NULL,
    event_key    text    NOT NULL,
    body         text    NOT NULL,
    status       text    NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_at      bigint  NOT NULL,
    last_status  integer,
    last_error   text,
    created_at   text    NOT NULL,
    delivered_at text,
    UNIQUE (hook_id, event_key)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_at);
  CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(hook_id, created_at);
  -- The revision each dataset was last notified at (dataset.revision events).
  CREATE TABLE webhook_revision_cursors (
    dataset_id bigint  PRIMARY KEY,
    revision   bigint  NOT NULL
  );
`,
  // Declared class lists: a dataset that declares its categories refuses uploads and relabels
  // into others (domain/category-list.ts).
  `
  ALTER TABLE datasets ADD COLUMN categories_declared boolean NOT NULL DEFAULT false;
  `,
  // What a sample carries beside its label: the original filename, tags and a small JSON object
  // (domain/sample-annotations.ts). Not part of snapshots: changing them raises no revision.
  `
  ALTER TABLE samples ADD COLUMN filename text;
  ALTER TABLE samples ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
  ALTER TABLE samples ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
  `,
  // Bulk actions (with what undoing each needs) and the audit log: who added, relabelled, deleted,
  // annotated or restored which sample, when (the key's name and roles, never the key).
  `
  CREATE TABLE bulk_actions (
    id         bigserial PRIMARY KEY,
    dataset_id bigint  NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    kind       text    NOT NULL,
    actor      text    NOT NULL,
    roles      text    NOT NULL,
    at         text    NOT NULL,
    revision   bigint  NOT NULL,
    changed    integer NOT NULL,
    undoes     bigint,
    undone_by  bigint,
    undo       jsonb   NOT NULL
  );
  CREATE INDEX bulk_actions_dataset ON bulk_actions(dataset_id, id);
  CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    dataset_id bigint  NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sample_id  bigint  NOT NULL,  -- no foreign key: a purged sample keeps its history
    action     text    NOT NULL,
    actor      text    NOT NULL,
    roles      text    NOT NULL,
    at         text    NOT NULL,
    revision   bigint  NOT NULL,
    bulk_id    bigint,
    detail     jsonb   NOT NULL
  );
  CREATE INDEX audit_log_dataset ON audit_log(dataset_id, id);
  CREATE INDEX audit_log_sample ON audit_log(dataset_id, sample_id, id);
  `,
  `
  -- Perceptual hashes (domain/perceptual-hash.ts) of the stored pixels: 16 hex digits, computed at
  -- ingest; NULL until the serve process's background pass has computed it for older samples.
  ALTER TABLE samples ADD COLUMN phash text;
  -- What the background pass still has to do, by id: empty once every sample is hashed.
  CREATE INDEX samples_phash_missing ON samples(id) WHERE phash IS NULL;
  `,
  // What a trainer reported of each sample (loss, class probabilities, predicted class), the
  // latest report per sample (domain/mislabel-ranking.ts ranks them into the review queue), and
  // what a person decided about it since: a new report clears the decision.
  `
  CREATE TABLE sample_feedback (
    dataset_id  bigint  NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sample_id   bigint  NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    loss        double precision,
    probs       text,     -- JSON array, one probability per category index
    predicted   integer,
    revision    bigint  NOT NULL,  -- the revision the trainer's samples were drawn at
    received_at text    NOT NULL,
    decision    text,     -- confirm | relabel | delete, until the next report
    decided_at  text,
    PRIMARY KEY (dataset_id, sample_id)
  );
  `,
  // The group commit of uploads as one call (postgres.metadata-store.ts addSamples): one statement
  // instead of BEGIN, the lock, the read, the inserts and COMMIT, each a round trip that costs
  // the server and the service more than the rows it carries. It decides as the transaction did:
  // the dataset row locked first, then (each statement of a plpgsql function taking a snapshot of
  // its own) the live samples, categories and blobs read as committed by whoever held the lock.
  // One row per item, in order: 'added' (id, revision, category index), 'duplicate' or
  // 'conflict' (the live sample as JSON, or same_as: the item of this call that added it),
  // 'undeclared', 'blob-missing'. A missing dataset raises SQLSTATE P0002.
  `
  CREATE FUNCTION sensory_add_samples(
    p_dataset bigint, p_created text, p_sha text[], p_category text[], p_media text[], p_bytes bigint[],
    p_slot bigint[], p_bucket integer[], p_filename text[], p_tags text[], p_metadata text[],
    p_actor text[], p_roles text[], p_phash text[],
    p_blob_segment bigint[], p_blob_offset bigint[], p_blob_length bigint[], p_require_indexed boolean[])
  RETURNS TABLE (kind text, id bigint, revision bigint, category_idx integer, existing json, same_as integer, before_rev bigint, after_rev bigint)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    n integer := coalesce(array_length(p_sha, 1), 0);
    v_rev bigint;
    v_before bigint;
    v_next integer;
    v_declared boolean;
    v_live jsonb;
    v_known jsonb;
    v_indexed jsonb := '{}';
    v_earlier integer[];
    v_sha text;
    v_category text;
    v_idx integer;
    v_first integer;
    v_ids bigint[];
    o_kind text[] := '{}';
    o_pos integer[] := '{}';
    o_rev bigint[] := '{}';
    o_idx integer[] := '{}';
    o_existing json[] := '{}';
    o_same integer[] := '{}';
    i_item integer[] := '{}';
    i_rev bigint[] := '{}';
    i_idx integer[] := '{}';
    c_idx integer[] := '{}';
    c_name text[] := '{}';
    c_rev bigint[] := '{}';
    b_item integer[] := '{}';
  BEGIN
    SELECT d.revision, d.next_category_index, d.categories_declared INTO v_rev, v_next, v_declared
      FROM datasets d WHERE d.id = p_dataset FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'No dataset with id %.', p_dataset USING ERRCODE = 'P0002';
    END IF;
    v_before := v_rev;
    IF n = 0 THEN
      RETURN;
    END IF;

    -- What the decisions need, in one statement (its snapshot taken once the lock is held): the
    -- live samples with these bytes, the indices of these categories, and for each item the item
    -- before it with the same bytes (NULL for the first), along which the item of this call that
    -- added those bytes, if one did, is found.
    SELECT
      (SELECT coalesce(jsonb_object_agg(l.sha256, to_jsonb(l)), '{}') FROM (
         SELECT s.id, s.dataset_id AS "datasetId", s.sha256, c.name AS category, s.category_idx AS "categoryIndex",
                s.added_rev AS revision, s.created_at AS "createdAt", s.media_type AS "mediaType", s.bytes,
                s.pixel_slot AS "pixelSlot", s.split_bucket AS "splitBucket", s.filename, s.tags, s.metadata
         FROM samples s JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx
         WHERE s.dataset_id = p_dataset AND s.sha256 = ANY(p_sha) AND s.deleted_rev IS NULL) l),
      (SELECT coalesce(jsonb_object_agg(c.name, c.idx), '{}') FROM categories c WHERE c.dataset_id = p_dataset AND c.name = ANY(p_category)),
      (SELECT array_agg(x.prev ORDER BY x.k)
         FROM (SELECT k, lag(k) OVER (PARTITION BY p_sha[k] ORDER BY k) AS prev FROM generate_subscripts(p_sha, 1) AS k) x)
    INTO v_live, v_known, v_earlier;
    -- Blobs a compaction may have dropped meanwhile: FOR KEY SHARE holds their index rows until
    -- this commit, so dropUnreferencedBlobs either sees these samples or finds its rows held.
    IF true = ANY(p_require_indexed) THEN
      SELECT coalesce(jsonb_object_agg(b.sha256, true), '{}') INTO v_indexed FROM (
        SELECT x.sha256 FROM blob_index x
        WHERE x.sha256 = ANY(ARRAY(SELECT p_sha[k] FROM generate_subscripts(p_sha, 1) AS k
                                   WHERE p_require_indexed[k] AND p_blob_segment[k] IS NULL))
        FOR KEY SHARE) b;
    END IF;

    FOR item IN 1..n LOOP
      v_sha := p_sha[item];
      v_category := p_category[item];
      v_first := v_earlier[item];
      WHILE v_first IS NOT NULL AND o_kind[v_first] <> 'added' LOOP
        v_first := v_earlier[v_first];
      END LOOP;
      IF v_live ? v_sha THEN
        o_kind := array_append(o_kind, CASE WHEN v_live -> v_sha ->> 'category' = v_category THEN 'duplicate' ELSE 'conflict' END);
        o_existing := array_append(o_existing, (v_live -> v_sha)::json);
        o_same := array_append(o_same, NULL::integer);
      ELSIF v_first IS NOT NULL THEN
        o_kind := array_append(o_kind, CASE WHEN p_category[v_first] = v_category THEN 'duplicate' ELSE 'conflict' END);
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, v_first);
      ELSIF v_declared AND NOT v_known ? v_category THEN
        o_kind := array_append(o_kind, 'undeclared');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
      ELSIF p_blob_segment[item] IS NULL AND p_require_indexed[item] AND NOT v_indexed ? v_sha THEN
        o_kind := array_append(o_kind, 'blob-missing');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
      ELSE
        IF p_blob_segment[item] IS NOT NULL THEN
          b_item := array_append(b_item, item);
        END IF;
        v_rev := v_rev + 1;
        IF v_known ? v_category THEN
          v_idx := (v_known ->> v_category)::integer;
        ELSE
          v_idx := v_next;
          v_next := v_next + 1;
          v_known := v_known || jsonb_build_object(v_category, v_idx);
          c_idx := array_append(c_idx, v_idx);
          c_name := array_append(c_name, v_category);
          c_rev := array_append(c_rev, v_rev);
        END IF;
        i_item := array_append(i_item, item);
        i_rev := array_append(i_rev, v_rev);
        i_idx := array_append(i_idx, v_idx);
        o_kind := array_append(o_kind, 'added');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
        o_pos := array_append(o_pos, array_length(i_item, 1));
        o_rev := array_append(o_rev, v_rev);
        o_idx := array_append(o_idx, v_idx);
        CONTINUE;
      END IF;
      o_pos := array_append(o_pos, NULL::integer);
      o_rev := array_append(o_rev, NULL::bigint);
      o_idx := array_append(o_idx, NULL::integer);
    END LOOP;

    IF coalesce(array_length(i_item, 1), 0) > 0 THEN
      IF coalesce(array_length(c_idx, 1), 0) > 0 THEN
        INSERT INTO categories (dataset_id, idx, name, created_rev) SELECT p_dataset, * FROM unnest(c_idx, c_name, c_rev);
      END IF;
      WITH added AS (
        INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, label_rev, added_rev, created_at, filename, tags, metadata, phash)
        SELECT p_dataset, p_sha[u.k], p_media[u.k], p_bytes[u.k], p_slot[u.k], p_bucket[u.k], u.idx, u.rev, u.rev, p_created,
               p_filename[u.k], p_tags[u.k]::jsonb, p_metadata[u.k]::jsonb, p_phash[u.k]
        FROM unnest(i_item, i_rev, i_idx) AS u(k, rev, idx)
        ORDER BY u.rev
        RETURNING samples.id, samples.added_rev, samples.category_idx
      ), labelled AS (
        INSERT INTO sample_labels (sample_id, from_rev, category_idx) SELECT a.id, a.added_rev, a.category_idx FROM added a
      ), audited AS (
        INSERT INTO audit_log (dataset_id, sample_id, action, actor, roles, at, revision, detail)
        SELECT p_dataset, a.id, 'add', p_actor[u.k], p_roles[u.k], p_created, a.added_rev, jsonb_build_object('category', p_category[u.k])
        FROM added a JOIN unnest(i_item, i_rev) AS u(k, rev) ON u.rev = a.added_rev
      ), counted AS (
        UPDATE datasets SET revision = v_rev, live_count = live_count + array_length(i_item, 1), next_category_index = v_next
        WHERE datasets.id = p_dataset
      ), indexed AS (
        INSERT INTO blob_index (sha256, segment_id, byte_offset, byte_length)
        SELECT p_sha[k], p_blob_segment[k], p_blob_offset[k], p_blob_length[k] FROM unnest(b_item) AS k
        ON CONFLICT (sha256) DO NOTHING
      )
      SELECT array_agg(a.id ORDER BY a.added_rev) INTO v_ids FROM added a;
    END IF;

    RETURN QUERY
      SELECT o.kind, v_ids[o.pos], o.rev, o.idx, o.existing, o.same, v_before, v_rev
      FROM unnest(o_kind, o_pos, o_rev, o_idx, o_existing, o_same) WITH ORDINALITY AS o(kind, pos, rev, idx, existing, same, ord)
      ORDER BY o.ord;
  END
  $fn$;
  `,
  // The upload path's plans, made once per connection and kept. By default a statement with
  // parameters is planned anew on every call as long as its generic plan costs more than the
  // plans made for the values at hand, which is always the case with an array parameter (a
  // generic plan assumes 10 elements, an upload has 1–8): planning the lookups of live samples
  // cost the server more than running them (~0.45 ms a call on the 2-core machine). Both functions
  // below keep their plans (plan_cache_mode = force_generic_plan) until ANALYZE or a schema change
  // replaces them, so a plan must not depend on how large the tables were when it was made: made
  // on a small or never-analysed table, where every estimate is a row or two, a lookup of
  // (dataset_id, sha256) can take any index on dataset_id (or walk the categories and each one's
  // samples) and filter the SHA-256s, and would go on scanning the whole dataset once it is
  // large. So the lookups leave the planner one way: the samples with these SHA-256s are read
  // first in a subquery that OFFSET 0 fences (no other condition is pushed into it, so
  // samples_sha is the one index that serves it), the dataset and tombstone conditions apply to
  // what it found, and sequential scans are off. Each SHA-256 is one probe of its index (the blob
  // index's key likewise) at any size, under any statistics. sensory_add_samples decides as
  // before (see the migration that made it); sensory_find_live is the lookup every upload makes
  // before it is decoded (postgres.sample-ingest.ts): the live samples of a dataset with these
  // SHA-256s as JSON records, and the SHA-256s the blob index holds.
  `
  CREATE OR REPLACE FUNCTION sensory_add_samples(
    p_dataset bigint, p_created text, p_sha text[], p_category text[], p_media text[], p_bytes bigint[],
    p_slot bigint[], p_bucket integer[], p_filename text[], p_tags text[], p_metadata text[],
    p_actor text[], p_roles text[], p_phash text[],
    p_blob_segment bigint[], p_blob_offset bigint[], p_blob_length bigint[], p_require_indexed boolean[])
  RETURNS TABLE (kind text, id bigint, revision bigint, category_idx integer, existing json, same_as integer, before_rev bigint, after_rev bigint)
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
  DECLARE
    n integer := coalesce(array_length(p_sha, 1), 0);
    v_rev bigint;
    v_before bigint;
    v_next integer;
    v_declared boolean;
    v_live jsonb;
    v_known jsonb;
    v_indexed jsonb := '{}';
    v_earlier integer[];
    v_sha text;
    v_category text;
    v_idx integer;
    v_first integer;
    v_ids bigint[];
    o_kind text[] := '{}';
    o_pos integer[] := '{}';
    o_rev bigint[] := '{}';
    o_idx integer[] := '{}';
    o_existing json[] := '{}';
    o_same integer[] := '{}';
    i_item integer[] := '{}';
    i_rev bigint[] := '{}';
    i_idx integer[] := '{}';
    c_idx integer[] := '{}';
    c_name text[] := '{}';
    c_rev bigint[] := '{}';
    b_item integer[] := '{}';
  BEGIN
    SELECT d.revision, d.next_category_index, d.categories_declared INTO v_rev, v_next, v_declared
      FROM datasets d WHERE d.id = p_dataset FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'No dataset with id %.', p_dataset USING ERRCODE = 'P0002';
    END IF;
    v_before := v_rev;
    IF n = 0 THEN
      RETURN;
    END IF;

    -- What the decisions need, in one statement (its snapshot taken once the lock is held): the
    -- live samples with these bytes, the indices of these categories, and for each item the item
    -- before it with the same bytes (NULL for the first), along which the item of this call that
    -- added those bytes, if one did, is found.
    SELECT
      (SELECT coalesce(jsonb_object_agg(l.sha256, to_jsonb(l)), '{}') FROM (
         SELECT s.id, s.dataset_id AS "datasetId", s.sha256, c.name AS category, s.category_idx AS "categoryIndex",
                s.added_rev AS revision, s.created_at AS "createdAt", s.media_type AS "mediaType", s.bytes,
                s.pixel_slot AS "pixelSlot", s.split_bucket AS "splitBucket", s.filename, s.tags, s.metadata
         FROM (SELECT * FROM samples WHERE samples.sha256 = ANY(p_sha) OFFSET 0) s
           JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx
         WHERE s.dataset_id = p_dataset AND s.deleted_rev IS NULL) l),
      (SELECT coalesce(jsonb_object_agg(c.name, c.idx), '{}') FROM categories c WHERE c.dataset_id = p_dataset AND c.name = ANY(p_category)),
      (SELECT array_agg(x.prev ORDER BY x.k)
         FROM (SELECT k, lag(k) OVER (PARTITION BY p_sha[k] ORDER BY k) AS prev FROM generate_subscripts(p_sha, 1) AS k) x)
    INTO v_live, v_known, v_earlier;
    -- Blobs a compaction may have dropped meanwhile: FOR KEY SHARE holds their index rows until
    -- this commit, so dropUnreferencedBlobs either sees these samples or finds its rows held.
    IF true = ANY(p_require_indexed) THEN
      SELECT coalesce(jsonb_object_agg(b.sha256, true), '{}') INTO v_indexed FROM (
        SELECT x.sha256 FROM blob_index x
        WHERE x.sha256 = ANY(ARRAY(SELECT p_sha[k] FROM generate_subscripts(p_sha, 1) AS k
                                   WHERE p_require_indexed[k] AND p_blob_segment[k] IS NULL))
        FOR KEY SHARE) b;
    END IF;

    FOR item IN 1..n LOOP
      v_sha := p_sha[item];
      v_category := p_category[item];
      v_first := v_earlier[item];
      WHILE v_first IS NOT NULL AND o_kind[v_first] <> 'added' LOOP
        v_first := v_earlier[v_first];
      END LOOP;
      IF v_live ? v_sha THEN
        o_kind := array_append(o_kind, CASE WHEN v_live -> v_sha ->> 'category' = v_category THEN 'duplicate' ELSE 'conflict' END);
        o_existing := array_append(o_existing, (v_live -> v_sha)::json);
        o_same := array_append(o_same, NULL::integer);
      ELSIF v_first IS NOT NULL THEN
        o_kind := array_append(o_kind, CASE WHEN p_category[v_first] = v_category THEN 'duplicate' ELSE 'conflict' END);
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, v_first);
      ELSIF v_declared AND NOT v_known ? v_category THEN
        o_kind := array_append(o_kind, 'undeclared');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
      ELSIF p_blob_segment[item] IS NULL AND p_require_indexed[item] AND NOT v_indexed ? v_sha THEN
        o_kind := array_append(o_kind, 'blob-missing');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
      ELSE
        IF p_blob_segment[item] IS NOT NULL THEN
          b_item := array_append(b_item, item);
        END IF;
        v_rev := v_rev + 1;
        IF v_known ? v_category THEN
          v_idx := (v_known ->> v_category)::integer;
        ELSE
          v_idx := v_next;
          v_next := v_next + 1;
          v_known := v_known || jsonb_build_object(v_category, v_idx);
          c_idx := array_append(c_idx, v_idx);
          c_name := array_append(c_name, v_category);
          c_rev := array_append(c_rev, v_rev);
        END IF;
        i_item := array_append(i_item, item);
        i_rev := array_append(i_rev, v_rev);
        i_idx := array_append(i_idx, v_idx);
        o_kind := array_append(o_kind, 'added');
        o_existing := array_append(o_existing, NULL::json);
        o_same := array_append(o_same, NULL::integer);
        o_pos := array_append(o_pos, array_length(i_item, 1));
        o_rev := array_append(o_rev, v_rev);
        o_idx := array_append(o_idx, v_idx);
        CONTINUE;
      END IF;
      o_pos := array_append(o_pos, NULL::integer);
      o_rev := array_append(o_rev, NULL::bigint);
      o_idx := array_append(o_idx, NULL::integer);
    END LOOP;

    IF coalesce(array_length(i_item, 1), 0) > 0 THEN
      IF coalesce(array_length(c_idx, 1), 0) > 0 THEN
        INSERT INTO categories (dataset_id, idx, name, created_rev) SELECT p_dataset, * FROM unnest(c_idx, c_name, c_rev);
      END IF;
      WITH added AS (
        INSERT INTO samples (dataset_id, sha256, media_type, bytes, pixel_slot, split_bucket, category_idx, label_rev, added_rev, created_at, filename, tags, metadata, phash)
        SELECT p_dataset, p_sha[u.k], p_media[u.k], p_bytes[u.k], p_slot[u.k], p_bucket[u.k], u.idx, u.rev, u.rev, p_created,
               p_filename[u.k], p_tags[u.k]::jsonb, p_metadata[u.k]::jsonb, p_phash[u.k]
        FROM unnest(i_item, i_rev, i_idx) AS u(k, rev, idx)
        ORDER BY u.rev
        RETURNING samples.id, samples.added_rev, samples.category_idx
      ), labelled AS (
        INSERT INTO sample_labels (sample_id, from_rev, category_idx) SELECT a.id, a.added_rev, a.category_idx FROM added a
      ), audited AS (
        INSERT INTO audit_log (dataset_id, sample_id, action, actor, roles, at, revision, detail)
        SELECT p_dataset, a.id, 'add', p_actor[u.k], p_roles[u.k], p_created, a.added_rev, jsonb_build_object('category', p_category[u.k])
        FROM added a JOIN unnest(i_item, i_rev) AS u(k, rev) ON u.rev = a.added_rev
      ), counted AS (
        UPDATE datasets SET revision = v_rev, live_count = live_count + array_length(i_item, 1), next_category_index = v_next
        WHERE datasets.id = p_dataset
      ), indexed AS (
        INSERT INTO blob_index (sha256, segment_id, byte_offset, byte_length)
        SELECT p_sha[k], p_blob_segment[k], p_blob_offset[k], p_blob_length[k] FROM unnest(b_item) AS k
        ON CONFLICT (sha256) DO NOTHING
      )
      SELECT array_agg(a.id ORDER BY a.added_rev) INTO v_ids FROM added a;
    END IF;

    RETURN QUERY
      SELECT o.kind, v_ids[o.pos], o.rev, o.idx, o.existing, o.same, v_before, v_rev
      FROM unnest(o_kind, o_pos, o_rev, o_idx, o_existing, o_same) WITH ORDINALITY AS o(kind, pos, rev, idx, existing, same, ord)
      ORDER BY o.ord;
  END
  $fn$;

  CREATE FUNCTION sensory_find_live(p_dataset bigint, p_sha text[])
  RETURNS TABLE (live json, indexed text[])
  LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
  BEGIN
    RETURN QUERY SELECT
      (SELECT json_agg(row_to_json(l)) FROM (
         SELECT s.id, s.dataset_id AS "datasetId", s.sha256, c.name AS category, s.category_idx AS "categoryIndex",
                s.added_rev AS revision, s.created_at AS "createdAt", s.media_type AS "mediaType", s.bytes,
                s.pixel_slot AS "pixelSlot", s.split_bucket AS "splitBucket", s.filename, s.tags, s.metadata
         FROM (SELECT * FROM samples WHERE samples.sha256 = ANY(p_sha) OFFSET 0) s
           JOIN categories c ON c.dataset_id = s.dataset_id AND c.idx = s.category_idx
         WHERE s.dataset_id = p_dataset AND s.deleted_rev IS NULL) l),
      ARRAY(SELECT b.sha256 FROM blob_index b WHERE b.sha256 = ANY(p_sha));
  END
  $fn$;
  `,
];

/**
 * Key of the transaction-level advisory lock held while migrating: replicas starting at once
 * apply the migrations one after the other, each exactly once. ("sens" in ASCII.)
 */
export const MIGRATION_LOCK_KEY = 0x73656e73;

/** Creates the version table if needed; runs inside the migration transaction, under the lock. */
export const MIGRATIONS_TABLE_SQL = `
  CREATE TABLE IF NOT EXISTS sensory_schema_migrations (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;
