import { Type, type Static } from '@sinclair/typebox';
import { MAX_SIDE, MAX_TEST_PERCENT } from '../domain/dataset-shape.js';
import { ERROR_REGISTRY } from '../domain/errors.js';
import { MAX_SEED } from '../domain/random.js';
import { DEFAULT_DUPLICATE_DISTANCE, MAX_DUPLICATE_DISTANCE, MAX_GROUP_PAGE } from '../services/near-duplicate.service.js';
import { MAX_CHANGE_PAGE } from '../services/revision-diff.service.js';
import { MAX_PAGE } from '../services/sample.service.js';

/** The schemas routes validate with; the OpenAPI description is generated from the same objects. */

/**
 * A string that is one of `values`: a JSON Schema `enum` (not an anyOf of constants), so that the
 * OpenAPI document lists the values as an enum and a wrong value is answered with the list.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** A whole number that is one of `values`, likewise an `enum`. */
export function IntegerEnum<const T extends readonly number[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'integer', enum: [...values], ...options });
}

const SPLIT = ['train', 'test', 'all'] as const;

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: StringEnum(Object.keys(ERROR_REGISTRY) as (keyof typeof ERROR_REGISTRY)[], { description: 'stable, for programs: see docs/errors.md' }),
      message: Type.String({ description: 'for people: names the field, what was sent and what is allowed' }),
      field: Type.Optional(Type.String({ description: 'the request field the error is about, e.g. split, categories[2], cursor' })),
      requestId: Type.Optional(Type.String({ description: '500 only: the id to look up in the logs' })),
      sampleId: Type.Optional(Type.Integer({ description: 'a 409 about a sample already there (category conflict, near-duplicate): its id' })),
    }),
  },
  { $id: 'ErrorBody', description: 'Every error: a SENSORY_ERR_* code and a message for people.' },
);

export const MeView = Type.Object(
  {
    name: Type.String({ description: 'the key\'s name (name@key in SENSORY_API_KEYS), or "key N" by its position; never the key' }),
    roles: Type.Array(StringEnum(['read', 'write', 'admin'] as const), { description: 'the roles given to the key' }),
    can: Type.Object(
      {
        read: Type.Boolean({ description: 'list, browse, fetch batches, place and poll orders' }),
        write: Type.Boolean({ description: 'create datasets, upload, relabel, tag, bulk actions other than delete' }),
        admin: Type.Boolean({ description: 'everything: deletes, bulk deletes, the admin purge' }),
      },
      { description: 'what the key may do (admin implies every role; read and write do not imply each other)' },
    ),
  },
  { description: 'The key this request was made with' },
);

export const DatasetParams = Type.Object({ name: Type.String({ description: 'dataset name' }) });
export const SampleParams = Type.Object({
  name: Type.String({ description: 'dataset name' }),
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'sample id' }),
});

export const DatasetBody = Type.Object(
  {
    width: Type.Integer({ minimum: 1, maximum: MAX_SIDE }),
    height: Type.Integer({ minimum: 1, maximum: MAX_SIDE }),
    channels: IntegerEnum([1, 3] as const),
    testPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TEST_PERCENT, default: 0 })),
    categories: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        maxItems: 10_000,
        description:
          'the class list, declared: indices 0, 1, … in this order; then uploads and relabels into other categories are refused (422). On an existing dataset the list must begin with its categories in index order (409 otherwise); names after them are appended',
      }),
    ),
  },
  { additionalProperties: false },
);
export type DatasetBody = Static<typeof DatasetBody>;

const CategoryView = Type.Object({ name: Type.String(), index: Type.Integer(), count: Type.Integer() });

export const DatasetView = Type.Object({
  name: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  channels: Type.Integer(),
  testPercent: Type.Integer(),
  revision: Type.Integer(),
  sampleCount: Type.Integer(),
  createdAt: Type.String(),
  categoriesDeclared: Type.Boolean({ description: 'the dataset declares its categories: uploads and relabels into others are refused' }),
  categories: Type.Optional(Type.Array(CategoryView)),
});

export const DatasetList = Type.Object({ datasets: Type.Array(DatasetView) });

export const DatasetStats = Type.Object({
  dataset: Type.String(),
  revision: Type.Integer({ description: 'the revision the counts are taken at' }),
  testPercent: Type.Integer(),
  train: Type.Integer(),
  test: Type.Integer(),
  categories: Type.Array(
    Type.Object({ name: Type.String(), index: Type.Integer(), train: Type.Integer(), test: Type.Integer() }),
    { description: 'every category the dataset has had, by index, with its live samples in each split' },
  ),
});

export const CategoriesView = Type.Object({
  categories: Type.Array(CategoryView),
  map: Type.Record(Type.String(), Type.Integer()),
});

export const SampleView = Type.Object({
  id: Type.Integer(),
  dataset: Type.String(),
  category: Type.String(),
  categoryIndex: Type.Integer(),
  sha256: Type.String(),
  revision: Type.Integer({ description: 'the dataset revision at which the sample was added' }),
  createdAt: Type.String(),
  mediaType: Type.String(),
  bytes: Type.Integer(),
  split: StringEnum(['train', 'test'] as const),
  filename: Type.Optional(Type.String({ description: 'the original file name, when the upload gave one' })),
  tags: Type.Array(Type.String(), { description: 'short names to filter by (?tag=)' }),
  metadata: Type.Record(Type.String(), Type.Unknown(), { description: 'a small JSON object (at most SENSORY_MAX_SAMPLE_METADATA_BYTES as JSON)' }),
  duplicate: Type.Optional(Type.Boolean({ description: 'the same bytes were already this sample: nothing was stored (annotations sent with them are not applied)' })),
});

const TAGS = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32, description });
const METADATA = Type.Record(Type.String(), Type.Unknown(), { description: 'a JSON object, at most SENSORY_MAX_SAMPLE_METADATA_BYTES (default 4096) as JSON' });
const FILENAME = Type.String({ minLength: 1, maxLength: 1024, description: 'the original file name (folders are dropped; at most 255 characters kept)' });

export const UploadResults = Type.Object({
  samples: Type.Array(
    Type.Object({
      filename: Type.String(),
      status: Type.Integer({ description: 'the status this file alone would have had: 201, 200 (duplicate), 409, 413, 415, 400' }),
      sample: Type.Optional(SampleView),
      error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    }),
  ),
});

export const SampleJsonBody = Type.Object(
  {
    category: Type.String(),
    data: Type.String({ description: 'the image bytes, base64' }),
    filename: Type.Optional(FILENAME),
    tags: Type.Optional(TAGS('tags of the new sample')),
    metadata: Type.Optional(METADATA),
  },
  { additionalProperties: false },
);
export type SampleJsonBody = Static<typeof SampleJsonBody>;

export const SampleUploadQuery = Type.Object({
  category: Type.Optional(Type.String({ description: 'with a raw image/* body' })),
  filename: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'with a raw image/* body: the original file name' })),
  tag: Type.Optional(TAGS('with a raw image/* body: a tag of the new sample (repeat ?tag= for several)')),
  rejectNearDuplicate: Type.Optional(
    Type.Integer({ minimum: 0, maximum: MAX_DUPLICATE_DISTANCE, description: 'refuse the upload (409 SENSORY_ERR_NEAR_DUPLICATE, with sampleId) when a live sample\'s perceptual hash is within this many bits' }),
  ),
});
export type SampleUploadQuery = Static<typeof SampleUploadQuery>;

export const SampleListQuery = Type.Object(
  {
    category: Type.Optional(Type.String()),
    split: Type.Optional(StringEnum(SPLIT)),
    filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'samples whose filename contains this (letter case ignored)' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'samples carrying this tag' })),
    q: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'search: the sample id (a whole number), a SHA-256 prefix (4+ hex digits), part of the filename, or a tag' }),
    ),
    sort: Type.Optional(
      StringEnum(['oldest', 'newest', 'category', 'filename'] as const, {
        description:
          'oldest first (ascending ids, the default), newest first (descending ids), by category name, or by filename (samples without one last); ties by ascending id; names compare by code point. A cursor pages in the sort it came from',
      }),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 4096 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
  },
  { additionalProperties: false },
);
export type SampleListQuery = Static<typeof SampleListQuery>;

export const SamplePage = Type.Object({
  samples: Type.Array(SampleView),
  nextCursor: Type.Optional(Type.String()),
});

export const RelabelBody = Type.Object(
  {
    category: Type.Optional(Type.String({ description: 'relabel: raises the revision (unless it is the category the sample has)' })),
    filename: Type.Optional(FILENAME),
    tags: Type.Optional(TAGS('replace the tags')),
    metadata: Type.Optional(METADATA),
  },
  { additionalProperties: false, minProperties: 1, description: 'at least one field; tags, filename and metadata raise no revision' },
);
export type RelabelBody = Static<typeof RelabelBody>;

export const ImportSummary = Type.Object({
  imported: Type.Integer(),
  duplicates: Type.Integer(),
  rejected: Type.Array(Type.Object({ path: Type.String(), error: Type.Object({ code: Type.String(), message: Type.String() }) })),
});

export const BulkReceipt = Type.Object({
  path: Type.String({ description: 'the member as the archive names it (without a leading ./)' }),
  status: StringEnum(['stored', 'duplicate', 'rejected'] as const),
  sampleId: Type.Optional(Type.Integer({ description: 'stored or duplicate: the sample' })),
  category: Type.Optional(Type.String()),
  sha256: Type.Optional(Type.String()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() }, { description: 'rejected: why, as a single upload of the item would have been answered' })),
});

export const BulkResult = Type.Object({
  items: Type.Integer({ description: 'members that were items (folders are not)' }),
  stored: Type.Integer(),
  duplicates: Type.Integer(),
  rejected: Type.Integer(),
  revision: Type.Integer({ description: "the dataset's revision after the last commit" }),
  receipts: Type.Array(BulkReceipt, { description: 'one per item, in input order' }),
});

export const CompactionBody = Type.Object(
  {
    retentionSeconds: Type.Optional(Type.Integer({ minimum: 0, description: 'purge samples deleted at least this long ago (default SENSORY_PURGE_RETENTION_SECONDS)' })),
    minGarbageShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'rewrite a segment once this share of its bytes is garbage (default 0.3)' })),
  },
  { additionalProperties: false },
);

export const CompactionResult = Type.Object({
  cutoff: Type.String({ description: 'samples deleted before this time were purged' }),
  purged: Type.Array(Type.Object({ dataset: Type.String(), samples: Type.Integer(), purgedRevision: Type.Integer({ description: 'batches and orders below this revision are refused from now on' }) })),
  ordersFailed: Type.Array(Type.Object({ id: Type.String(), dataset: Type.String(), revision: Type.Integer() }), { description: 'live orders pinned to a revision that held purged samples' }),
  legacyOriginalsMoved: Type.Integer({ description: 'originals moved from the one-file-per-original layout of earlier releases into segments' }),
  blobsDropped: Type.Integer({ description: 'originals no sample names any more' }),
  segments: Type.Optional(
    Type.Object({ segmentsBefore: Type.Integer(), segmentsAfter: Type.Integer(), bytesBefore: Type.Integer(), bytesAfter: Type.Integer(), blobsMoved: Type.Integer() }),
  ),
  seconds: Type.Number(),
});

export const BatchBody = Type.Object(
  {
    size: Type.Integer({ minimum: 1, description: 'samples in the batch; at most SENSORY_MAX_BATCH_SAMPLES (413 above)' }),
    noise: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'probability of each augmentation' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEED, description: 'same seed, same revision → byte-identical batch' })),
    split: Type.Optional(StringEnum(SPLIT, { default: 'all' })),
    categories: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 10_000 })),
    revision: Type.Optional(Type.Integer({ minimum: 0 })),
    dtype: Type.Optional(StringEnum(['uint8', 'float32'] as const, { default: 'uint8' })),
    labels: Type.Optional(StringEnum(['index', 'onehot'] as const, { default: 'index' })),
    labelDtype: Type.Optional(
      // No schema default: given with labels: onehot, it is refused, so it must stay absent when not given.
      StringEnum(['int32', 'int64'] as const, { description: 'integer type of index labels: int32 (the default, safetensors I32) or int64 (I64); not with labels: onehot' }),
    ),
    layout: Type.Optional(
      StringEnum(['nhwc', 'nchw'] as const, { default: 'nhwc', description: 'axis order of data: N×H×W×C, or channels first N×C×H×W' }),
    ),
    balance: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
export type BatchBody = Static<typeof BatchBody>;

export const LegacyHeaders = Type.Object({
  'api-access-key': Type.Optional(Type.String()),
  'api-version': Type.Optional(Type.String()),
});

export const LegacyStoreBody = Type.Object({
  name: Type.String(),
  width: Type.Integer({ minimum: 1, maximum: MAX_SIDE }),
  height: Type.Integer({ minimum: 1, maximum: MAX_SIDE }),
  category: Type.String(),
  data: Type.String({ description: 'base64 PNG' }),
});
export type LegacyStoreBody = Static<typeof LegacyStoreBody>;

export const LegacyRequestBody = Type.Object({
  batch_size: Type.Integer({ minimum: 1 }),
  noise: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
});
export type LegacyRequestBody = Static<typeof LegacyRequestBody>;

/**
 * Error responses a route documents, by status. Errors are always JSON, whatever the route
 * produces on success (an image, safetensors), so the content type is stated.
 */
export function errorResponses(...statuses: number[]): Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorBody } } }> {
  return Object.fromEntries(
    statuses.map((status) => [status, { description: ErrorBody.description ?? 'error', content: { 'application/json': { schema: ErrorBody } } }]),
  );
}

export const ORDER_KEY_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';
const rounding = (options: { default?: 'exact' } = {}) =>
  StringEnum(['exact', 'drop', 'repeat'] as const, {
    description: 'how samples that do not divide evenly over the ranks are dealt: exact (refused), drop (the last ones are left out), repeat (the first ones are repeated)',
    ...options,
  });
/** The ranks an order may have; SENSORY_MAX_ORDER_RANKS (at most this) is checked by the service. */
const MAX_RANKS = 4096;

export const OrderBody = Type.Object(
  {
    ...BatchBody.properties,
    size: Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'samples in the order; may exceed the dataset (successive epochs); at most SENSORY_MAX_ORDER_SAMPLES (413 above)' }),
    shardSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'positions a worker produces per task; default SENSORY_SHARD_SIZE; ranks × ⌈samples per rank / shardSize⌉ is at most SENSORY_MAX_ORDER_SHARDS (413 above)' })),
    ranks: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RANKS, default: 1, description: 'ranks (data-parallel consumers) sharing the order, each polling its own equal part; at most SENSORY_MAX_ORDER_RANKS and size' })),
    rounding: Type.Optional(rounding({ default: 'exact' })),
    key: Type.Optional(Type.String({ pattern: ORDER_KEY_PATTERN, 'x-allowed': '1–128 characters of A-Z a-z 0-9 . _ : -', description: 'idempotency key: the same key with the same request from the same API key returns the same order (200); with another request 409' })),
  },
  { additionalProperties: false },
);
export type OrderBody = Static<typeof OrderBody>;

export const OrderParams = Type.Object({ id: Type.String({ maxLength: 64, description: 'order id' }) });

export const OrderCreated = Type.Object({
  id: Type.String(),
  status: Type.String(),
  size: Type.Integer(),
  shards: Type.Integer(),
  revision: Type.Integer(),
});

const PollModeView = StringEnum(['none', 'shared', 'cursor'] as const, {
  description: 'how the rank is polled: not yet, without cursors (shared), or with cursors',
});

export const OrderView = Type.Object({
  id: Type.String(),
  dataset: Type.String(),
  status: StringEnum(['queued', 'running', 'complete', 'failed', 'cancelled', 'expired'] as const),
  size: Type.Integer({ description: 'the size asked for' }),
  slots: Type.Integer({ description: 'samples the order delivers in all: size rounded for its ranks, reshapes included' }),
  ranks: Type.Integer({ description: 'ranks of the current generation' }),
  generation: Type.Integer({ description: '0, raised by every reshape' }),
  rounding: rounding(),
  shards: Type.Object({ total: Type.Integer(), done: Type.Integer() }),
  samples: Type.Object({ produced: Type.Integer(), delivered: Type.Integer() }),
  streams: Type.Array(
    Type.Object({
      rank: Type.Integer(),
      mode: PollModeView,
      length: Type.Integer({ description: 'samples of this rank in the current generation' }),
      produced: Type.Integer(),
      delivered: Type.Integer({ description: 'sent whole (shared mode) or acknowledged (cursor mode)' }),
      acknowledged: Type.Optional(Type.Integer({ description: 'cursor mode: every sample before this position was acknowledged' })),
    }),
    { description: 'each rank of the current generation' },
  ),
  revision: Type.Integer(),
  seed: Type.Integer(),
  key: Type.Optional(Type.String()),
  ttlSeconds: Type.Integer({ description: 'the order expires when nothing was delivered for this long' }),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  error: Type.Optional(Type.String()),
});

export const OrderList = Type.Object({ orders: Type.Array(OrderView) });
export const OrderListQuery = Type.Object({ active: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false });

const CURSOR = { maxLength: 200, description: 'a cursor of an earlier answer of this rank, unchanged' };

export const PollBody = Type.Object(
  {
    max: Type.Optional(Type.Integer({ minimum: 0, maximum: 4096, default: 4096, description: 'samples at most; 0 only with a cursor (a final acknowledgement)' })),
    waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 20_000, default: 0 })),
    rank: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RANKS - 1, default: 0, description: 'the rank polled (0 … ranks − 1 of the current generation)' })),
    cursor: Type.Optional(Type.String({ ...CURSOR, description: 'cursor mode: "start" (from what the rank acknowledged), or the cursor of the last answer received' })),
    ack: Type.Optional(Type.String({ ...CURSOR, description: 'cursor mode: acknowledges every sample before this cursor (at most the poll\'s cursor): only acknowledged samples count as delivered' })),
    resume: Type.Optional(Type.Boolean({ description: 'cursor mode: a cursor behind what the rank acknowledged takes back everything after it (restoring a checkpoint)' })),
  },
  { additionalProperties: false },
);
export type PollBody = Static<typeof PollBody>;

/** The JSON answer of a poll (safetensors carries the same fields as __metadata__ strings). */
export const PollAnswer = Type.Object({
  ids: Type.Array(Type.Integer()),
  labels: Type.Array(Type.Union([Type.Integer(), Type.Array(Type.Integer())])),
  shape: Type.Array(Type.Integer()),
  dtype: Type.String(),
  revision: Type.Integer(),
  seed: Type.Integer(),
  categories: Type.Record(Type.String(), Type.Integer()),
  augment: Type.Array(Type.Object({ rotation: Type.Number(), scale: Type.Number() })),
  slots: Type.Array(Type.Integer(), { description: 'the order\'s slots these samples fill, each delivered once' }),
  epochs: Type.Array(Type.Integer(), { description: 'the epoch of each sample' }),
  rank: Type.Integer(),
  generation: Type.Integer(),
  cursor: Type.Optional(Type.String({ description: 'cursor mode: send it as cursor (and ack) in the next poll' })),
  remaining: Type.Integer({ description: 'samples of this rank still to come after these' }),
  done: Type.Boolean({ description: 'no more samples will come for this rank' }),
  status: Type.String({ description: 'the order\'s status once this answer is sent' }),
  data: Type.Array(Type.Unknown(), { description: 'N×H×W×C pixel values' }),
});

export const ReshapeBody = Type.Object(
  {
    ranks: Type.Integer({ minimum: 1, maximum: MAX_RANKS, description: 'ranks to deal the undelivered samples over' }),
    rounding: Type.Optional(rounding({ default: 'exact' })),
  },
  { additionalProperties: false },
);
export type ReshapeBody = Static<typeof ReshapeBody>;

export const OrderPatchBody = Type.Object(
  { ttlSeconds: Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, description: 'the order\'s idle TTL, at most SENSORY_ORDER_MAX_TTL_SECONDS; its expiry moves to this long from now' }) },
  { additionalProperties: false },
);
export type OrderPatchBody = Static<typeof OrderPatchBody>;

export const LegacyBatchBody = LegacyRequestBody;
export const LegacyPollBody = Type.Object({ batch_id: Type.String({ maxLength: 64 }) });
export type LegacyPollBody = Static<typeof LegacyPollBody>;
export * from './export.schemas.js';
export * from './webhook.schemas.js';

const ActorView = Type.Object(
  { name: Type.String({ description: 'the key\'s name, never the key' }), roles: Type.Array(Type.String()) },
  { description: 'who made the change' },
);

export const BulkActionBody = Type.Object(
  {
    action: StringEnum(['relabel', 'delete', 'tag', 'untag'] as const, {
      description:
        'relabel (category), delete (admin), tag or untag (tags). There is no move between train and test: the split is a stable hash of the bytes (see testPercent), the same for the image wherever it is uploaded',
    }),
    ids: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 100_000, description: 'the samples to change; or filter' })),
    filter: Type.Optional(
      Type.Object(
        {
          category: Type.Optional(Type.String()),
          split: Type.Optional(StringEnum(SPLIT)),
          tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
        },
        { additionalProperties: false, description: 'every live sample the listing with these parameters gives (at most 100,000); or ids' },
      ),
    ),
    category: Type.Optional(Type.String({ description: 'relabel: the category to move the samples to' })),
    tags: Type.Optional(TAGS('tag, untag: the tags to add or take away')),
  },
  { additionalProperties: false },
);
export type BulkActionBody = Static<typeof BulkActionBody>;

export const BulkActionView = Type.Object({
  id: Type.Integer({ description: 'undo it with POST …/samples/actions/{id}/undo while it is the last one' }),
  action: StringEnum(['relabel', 'delete', 'tag', 'untag', 'undo'] as const),
  actor: ActorView,
  at: Type.String(),
  revision: Type.Integer({ description: 'the dataset revision after the action (relabels and deletes raise it by one in all)' }),
  changed: Type.Integer({ description: 'samples changed' }),
  undoes: Type.Optional(Type.Integer({ description: 'an undo: the action it undid' })),
  undoneBy: Type.Optional(Type.Integer({ description: 'the undo that undid this action' })),
});

export const BulkActionResult = Type.Object({
  action: BulkActionView,
  results: Type.Array(
    Type.Object({
      id: Type.Integer({ description: 'the sample asked for' }),
      status: StringEnum(['changed', 'unchanged', 'not_found', 'restored', 'skipped'] as const, {
        description: 'changed; unchanged (already so); not_found (no live sample of that id); an undo: restored (a deleted sample back, as newId) or skipped (changed since, or purged: see reason)',
      }),
      newId: Type.Optional(Type.Integer()),
      reason: Type.Optional(Type.String()),
    }),
    { description: 'one per distinct sample, in the order asked' },
  ),
});

export const BulkActionList = Type.Object({ actions: Type.Array(BulkActionView, { description: 'newest first' }) });
export const BulkActionParams = Type.Object({ name: Type.String({ description: 'dataset name' }), id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'bulk action id' }) });
export const BulkActionListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) }, { additionalProperties: false });

export const AuditQuery = Type.Object(
  { cursor: Type.Optional(Type.String({ maxLength: 200 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditPage = Type.Object({
  entries: Type.Array(
    Type.Object({
      id: Type.Integer(),
      sampleId: Type.Integer(),
      action: StringEnum(['add', 'relabel', 'delete', 'annotate', 'restore'] as const),
      actor: ActorView,
      at: Type.String(),
      revision: Type.Integer({ description: 'the dataset revision after the change (annotations raise none)' }),
      bulkId: Type.Optional(Type.Integer({ description: 'the bulk action the change was part of' })),
      detail: Type.Record(Type.String(), Type.Unknown(), { description: 'add, delete: {category}; relabel: {from, to}; annotate: the fields set; restore: {from: the deleted sample\'s id, category}' }),
    }),
    { description: 'newest first' },
  ),
  nextCursor: Type.Optional(Type.String({ description: 'pass as cursor for the next (older) page' })),
});

const GROUP_DISTANCE = { minimum: 0, maximum: MAX_DUPLICATE_DISTANCE, default: DEFAULT_DUPLICATE_DISTANCE };

export const DuplicateQuery = Type.Object(
  {
    distance: Type.Optional(Type.Integer({ ...GROUP_DISTANCE, description: 'bits (of 64) two perceptual hashes may differ by and still be near-duplicates; groups are chains of such pairs' })),
    revision: Type.Optional(Type.Integer({ minimum: 0, description: 'the revision to look at, e.g. the one a model was trained at (default: the current one)' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_GROUP_PAGE, default: 100, description: 'groups per page' })),
  },
  { additionalProperties: false },
);
export type DuplicateQuery = Static<typeof DuplicateQuery>;

const GroupMemberView = Type.Object({
  id: Type.Integer(),
  category: Type.String(),
  split: StringEnum(['train', 'test'] as const),
  hash: Type.String({ description: 'the perceptual hash of its stored pixels, 16 hex digits' }),
  distance: Type.Integer({ description: 'bits from the group\'s first member' }),
});

const DuplicateGroupView = Type.Object({
  members: Type.Array(GroupMemberView, { description: 'by ascending id' }),
  identical: Type.Optional(Type.Boolean({ description: 'every member\'s stored pixels are byte-identical (same SHA-256): exact duplicates; absent above 64 members' })),
  straddlesSplit: Type.Boolean({ description: 'members in both the train and the test split' }),
  categories: Type.Optional(Type.Array(Type.String(), { description: 'present when the members carry different categories' })),
});

const GROUP_REPORT = {
  dataset: Type.String(),
  revision: Type.Integer({ description: 'the revision the groups are taken at' }),
  distance: Type.Integer(),
  hashed: Type.Integer({ description: 'live samples with a perceptual hash' }),
  unhashed: Type.Integer({ description: 'live samples whose hash the background pass has not computed yet (left out)' }),
  groups: Type.Array(DuplicateGroupView, { description: 'by the smallest id of each group' }),
  nextCursor: Type.Optional(Type.String()),
};

const GroupCount = Type.Object({ groups: Type.Integer(), samples: Type.Integer() });

export const DuplicateReportView = Type.Object({ ...GROUP_REPORT, totals: GroupCount });
export const LeakageReportView = Type.Object({
  ...GROUP_REPORT,
  splitLeaks: Type.Object(GroupCount.properties, { description: 'groups with members in both splits' }),
  labelConflicts: Type.Object(GroupCount.properties, { description: 'groups whose members carry different categories' }),
});

export const DiffQuery = Type.Object(
  {
    from: Type.Integer({ minimum: 0, description: 'the older revision' }),
    to: Type.Integer({ minimum: 0, description: 'the newer revision (at most the current one)' }),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CHANGE_PAGE, default: 100, description: 'changed samples per page' })),
  },
  { additionalProperties: false },
);
export type DiffQuery = Static<typeof DiffQuery>;

export const RevisionDiffView = Type.Object({
  dataset: Type.String(),
  from: Type.Integer(),
  to: Type.Integer(),
  totals: Type.Object({ added: Type.Integer(), deleted: Type.Integer(), relabelled: Type.Integer() }),
  categories: Type.Array(
    Type.Object({ name: Type.String(), index: Type.Integer(), added: Type.Integer(), deleted: Type.Integer(), relabelledIn: Type.Integer(), relabelledOut: Type.Integer() }),
    { description: 'categories with any change, by index' },
  ),
  relabels: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), count: Type.Integer() }), { description: 'relabels by pair, most frequent first' }),
  changes: Type.Array(
    Type.Object({
      id: Type.Integer(),
      change: StringEnum(['added', 'deleted', 'relabelled'] as const),
      category: Type.Optional(Type.String({ description: 'added: its category at to; deleted: at from' })),
      from: Type.Optional(Type.String({ description: 'relabelled: its category at from' })),
      to: Type.Optional(Type.String({ description: 'relabelled: its category at to' })),
    }),
    { description: 'this page of changed samples, by ascending id' },
  ),
  nextCursor: Type.Optional(Type.String()),
});

// Label review fed by the trainer.

export const FeedbackBody = Type.Object(
  {
    revision: Type.Optional(Type.Integer({ minimum: 0, description: 'the revision the trainer\'s samples were drawn at (default: the current one)' })),
    items: Type.Array(
      Type.Object(
        {
          id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'sample id' }),
          loss: Type.Optional(Type.Number({ minimum: 0, description: 'the sample\'s loss under its label' })),
          probs: Type.Optional(Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { description: 'one probability per category index (all the dataset\'s categories), summing to 1 (± 0.01)' })),
          predicted: Type.Optional(Type.Integer({ minimum: 0, description: 'the predicted category index' })),
        },
        { additionalProperties: false, description: 'at least one of loss, probs, predicted' },
      ),
      { minItems: 1, description: 'one per sample, each id once; at most SENSORY_MAX_FEEDBACK_ITEMS (413 past it)' },
    ),
  },
  { additionalProperties: false },
);
export type FeedbackBody = Static<typeof FeedbackBody>;

export const FeedbackResult = Type.Object({
  dataset: Type.String(),
  revision: Type.Integer({ description: 'the revision the reports were recorded at' }),
  stored: Type.Integer({ description: 'reports stored (each replaces the sample\'s previous one and takes it back into review)' }),
  results: Type.Array(
    Type.Object({ id: Type.Integer(), status: StringEnum(['stored', 'not_found'] as const, { description: 'not_found: no live sample of that id in the dataset (nothing stored for it)' }) }),
    { description: 'one per item, in the order sent' },
  ),
});

export const ReviewQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20, description: 'samples per page' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);
export type ReviewQuery = Static<typeof ReviewQuery>;

const ReviewReasonView = Type.Object({
  kind: StringEnum(['high_loss', 'confident_disagreement', 'predicted_other', 'duplicate_conflict'] as const, {
    description:
      'high_loss: the loss is z robust deviations above the dataset\'s median loss (higher than percentile % of them); confident_disagreement: the model gives suggested suggestedProbability and the label labelProbability; predicted_other: the predicted class is not the label; duplicate_conflict: others of the groupSize near-duplicates carry another label',
  }),
  loss: Type.Optional(Type.Number()),
  z: Type.Optional(Type.Number()),
  percentile: Type.Optional(Type.Number()),
  labelProbability: Type.Optional(Type.Number()),
  suggestedProbability: Type.Optional(Type.Number()),
  groupSize: Type.Optional(Type.Integer()),
  others: Type.Optional(Type.Integer()),
  suggested: Type.Optional(Type.String()),
});

export const ReviewPageView = Type.Object({
  dataset: Type.String(),
  revision: Type.Integer(),
  total: Type.Integer({ description: 'samples in the queue' }),
  items: Type.Array(
    Type.Object({
      id: Type.Integer(),
      category: Type.String({ description: 'its current label' }),
      score: Type.Number({ description: 'the sum of its reasons\' scores (each 0 to 1); the queue is by score, highest first' }),
      reasons: Type.Array(ReviewReasonView),
      suggested: Type.Optional(Type.String({ description: 'the class the reasons point at' })),
      loss: Type.Optional(Type.Number()),
      feedbackRevision: Type.Optional(Type.Integer({ description: 'the revision its last report was about' })),
      receivedAt: Type.Optional(Type.String()),
    }),
  ),
  nextCursor: Type.Optional(Type.String()),
});

export const ReviewDecisionBody = Type.Object(
  {
    decision: StringEnum(['confirm', 'relabel', 'delete'] as const, {
      description: 'confirm: the label is right (out of the queue until the next report); relabel: to category, or to the suggested class; delete (admin)',
    }),
    category: Type.Optional(Type.String({ description: 'relabel: the new label (default: the suggested class)' })),
  },
  { additionalProperties: false },
);
export type ReviewDecisionBody = Static<typeof ReviewDecisionBody>;

export const ReviewDecisionResult = Type.Object({
  id: Type.Integer(),
  decision: StringEnum(['confirm', 'relabel', 'delete'] as const),
  sample: SampleView,
});
