import { ERROR_REGISTRY, type ErrorCode } from '../domain/errors.js';

/**
 * Completes the OpenAPI document generated from the routes' schemas with what a client
 * generator and a reader need and the validation schemas cannot say: an operationId and a
 * description for every operation, the bodies that are not JSON (multipart, a raw image, a tar)
 * and the answers that are not JSON (safetensors, an image, Prometheus text), examples of every
 * body and answer, error examples with the codes each status really carries, and no security
 * requirement on the public endpoints.
 */

type Json = Record<string, any>;

const BINARY = { type: 'string', format: 'binary' };
const SAFETENSORS = 'application/x-safetensors';

interface OperationDoc {
  readonly id: string;
  readonly description: string;
  /** Extra request body forms (beside JSON), by media type. */
  readonly bodies?: Record<string, Json>;
  /** Success answers to add or complete, by status and media type. */
  readonly answers?: Record<string, { description: string; content: Record<string, Json> }>;
  readonly public?: boolean;
  /** The example of its JSON body. */
  readonly example?: unknown;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/tiff'];
const TAR_BODY = {
  'application/x-tar': { schema: BINARY, example: '<a tar of <category>/<file> members>' },
  'application/gzip': { schema: BINARY, example: '<the same tar, gzipped>' },
};

/** Every operation, by `METHOD path` as the document names it. */
const OPERATIONS: Record<string, OperationDoc> = {
  'get /v1/me': { id: 'getMe', description: 'The key this request carries: its name, roles and what it may do. Any known key may ask.' },
  'get /v1/datasets': { id: 'listDatasets', description: 'Every dataset with its shape, sample count and revision, by name.' },
  'put /v1/datasets/{name}': {
    example: { width: 28, height: 28, channels: 1, testPercent: 10, categories: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
    id: 'putDataset',
    description:
      'Creates the dataset (201), or confirms it exists with the same shape (200); another shape or test share is 409. `categories` declares the class list: indices 0, 1, … in that order, and uploads into other categories are refused; on an existing dataset the list must begin with its categories and the rest is appended.',
  },
  'get /v1/datasets/{name}': { id: 'getDataset', description: 'The dataset: shape, sample count, revision, test share and its categories with index and count.' },
  'delete /v1/datasets/{name}': { id: 'deleteDataset', description: 'Removes the dataset, its samples and their pixels (admin). Its originals go with the next compaction.' },
  'get /v1/datasets/{name}/categories': { id: 'getCategories', description: 'The category map: each category\'s index, given at its first appearance (or declaration), never shifted or reused, with its live count.' },
  'get /v1/datasets/{name}/stats': { id: 'getDatasetStats', description: 'Live samples per category in the train and test splits, counted at one revision.' },
  'post /v1/datasets/{name}/samples': {
    id: 'uploadSample',
    example: { category: 'seven', data: 'iVBORw0KGgo…', filename: 'IMG_0001.png', tags: ['checked'], metadata: { camera: 'A' } },
    description:
      'Adds one sample: JSON `{category, data: base64, filename?, tags?, metadata?}`, a multipart form (`category`, one or more `file` parts, `tag` fields, a `metadata` JSON field), or a raw `image/*` body with `?category=` (and `?filename=`, `?tag=`). 201 with the sample; the same bytes again in the same category is 200 with the existing sample (`duplicate: true`), in another category 409. Several files: 201 `{samples: [...]}` with each file\'s own status.',
    bodies: {
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: ['category', 'file'],
          properties: {
            category: { type: 'string' },
            file: { type: 'array', items: BINARY, description: 'one or more images' },
            tag: { type: 'array', items: { type: 'string' }, description: 'tags of every file' },
            metadata: { type: 'string', description: 'a JSON object, for every file' },
          },
        },
        example: { category: 'seven', file: ['<seven.png>'], tag: ['checked'], metadata: '{"camera": "A"}' },
      },
      ...Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: BINARY, example: `<the ${type.slice(6).toUpperCase()} bytes>` }])),
    },
  },
  'post /v1/datasets/{name}/samples/bulk': {
    id: 'uploadBulk',
    description:
      'Many samples in one streamed tar of `<category>/<file>` members, each checked and stored as a single upload would be, committed in groups as the body arrives. A receipt per item, in input order; sending the same body again stores nothing twice.',
    bodies: TAR_BODY,
  },
  'post /v1/datasets/{name}/imports': {
    id: 'importTar',
    description: 'The all-or-nothing variant of a bulk upload: every new sample is committed in one transaction at the end; a broken stream stores nothing.',
    bodies: TAR_BODY,
  },
  'get /v1/datasets/{name}/samples': {
    id: 'listSamples',
    description: 'Live samples by ascending id, paged with an opaque cursor; filtered by category, split, filename part, tag, or a search `q` (id, SHA-256 prefix, filename part or tag).',
  },
  'get /v1/datasets/{name}/samples/{id}': { id: 'getSample', description: 'One live sample: its label, revision, SHA-256, split, filename, tags and metadata.' },
  'patch /v1/datasets/{name}/samples/{id}': {
    example: { category: 'my cat', tags: ['checked'], metadata: { camera: 'A' } },
    id: 'patchSample',
    description: 'Relabels a sample (raising the revision, unless it is its category) and changes its filename, tags or metadata (raising none).',
  },
  'delete /v1/datasets/{name}/samples/{id}': { id: 'deleteSample', description: 'Deletes a sample (admin). It is kept for batches pinned to older revisions until the purge.' },
  'get /v1/datasets/{name}/samples/{id}/content': {
    id: 'getSampleContent',
    description: 'The original bytes as uploaded, with their Content-Type; cacheable (the ETag is the SHA-256).',
    answers: { 200: { description: 'the original image', content: Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: BINARY }])) } },
  },
  'get /v1/datasets/{name}/samples/{id}/audit': { id: 'getSampleAudit', description: 'One sample\'s history: who added, relabelled, annotated or deleted it, and when.' },
  'post /v1/datasets/{name}/batches': {
    example: { size: 64, noise: 0.5, seed: 42, split: 'train', dtype: 'float32', labels: 'index', layout: 'nchw', labelDtype: 'int64' },
    id: 'getBatch',
    description:
      'A small batch drawn without replacement from the eligible samples: JSON by default, or a safetensors file (tensors `data` and `labels`, the ids, revision and category map in `__metadata__`) with `Accept: application/x-safetensors`. The same seed at the same revision gives the byte-identical batch.',
    answers: {
      200: {
        description: 'the batch',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['ids', 'labels', 'shape', 'dtype', 'revision', 'seed', 'categories', 'augment', 'data'],
              properties: {
                ids: { type: 'array', items: { type: 'integer' } },
                labels: { type: 'array', items: { anyOf: [{ type: 'integer' }, { type: 'array', items: { type: 'integer' } }] } },
                shape: { type: 'array', items: { type: 'integer' } },
                dtype: { type: 'string', enum: ['uint8', 'float32'] },
                labelDtype: { type: 'string', enum: ['int32', 'int64'] },
                layout: { type: 'string', enum: ['nhwc', 'nchw'] },
                revision: { type: 'integer' },
                seed: { type: 'integer' },
                categories: { type: 'object', additionalProperties: { type: 'integer' } },
                augment: { type: 'array', items: { type: 'object', properties: { rotation: { type: 'number' }, scale: { type: 'number' } } } },
                data: { type: 'array', items: {}, description: 'N×H×W×C (or N×C×H×W) pixel values' },
              },
            },
            example: { ids: [3, 1], labels: [1, 0], shape: [2, 1, 1, 1], dtype: 'uint8', labelDtype: 'int32', layout: 'nhwc', revision: 4, seed: 42, categories: { seven: 0, three: 1 }, augment: [{ rotation: 0, scale: 1 }, { rotation: 0, scale: 1 }], data: [[[[12]]], [[[200]]]] },
          },
          [SAFETENSORS]: { schema: BINARY, example: '<a safetensors file>' },
        },
      },
    },
  },
  'post /v1/datasets/{name}/orders': {
    example: { size: 100000, seed: 7, split: 'train', ranks: 2, rounding: 'drop', key: 'run-7' }, id: 'createOrder', description: 'Places a batch order of `size` samples (successive epochs when it exceeds the dataset), shared by `ranks` consumers; 202, or 200 for the same `key`.' },
  'get /v1/orders': { id: 'listOrders', description: 'The orders of this key (every order for an admin key), newest first.' },
  'get /v1/orders/{id}': { id: 'getOrder', description: 'An order: status, ranks, samples produced and delivered, each rank\'s progress.' },
  'patch /v1/orders/{id}': {
    example: { ttlSeconds: 86400 }, id: 'patchOrder', description: 'Sets the order\'s idle TTL; its expiry moves to that long from now.' },
  'delete /v1/orders/{id}': { id: 'cancelOrder', description: 'Cancels the order: pending production is skipped, its result queues removed.' },
  'post /v1/orders/{id}/reshape': {
    example: { ranks: 4, rounding: 'drop' }, id: 'reshapeOrder', description: 'Deals the samples not delivered yet over a new number of ranks (a new generation).' },
  'post /v1/orders/{id}/poll': {
    example: { rank: 1, cursor: 'start', max: 1024, waitMs: 2000 },
    id: 'pollOrder',
    description: 'Up to `max` samples of one rank, in the formats of a small batch (JSON, or safetensors with the headers Sensory-Remaining, Sensory-Done and Sensory-Cursor), with or without cursors.',
  },
  'post /v1/datasets/{name}/samples/actions': { id: 'applyBulkAction', description: '' },
  'get /v1/datasets/{name}/samples/actions': { id: 'listBulkActions', description: '' },
  'post /v1/datasets/{name}/samples/actions/{id}/undo': { id: 'undoBulkAction', description: '' },
  'get /v1/datasets/{name}/audit': { id: 'getDatasetAudit', description: '' },
  'post /v1/admin/compaction': { id: 'compact', description: 'Purges samples deleted longer ago than the retention and rewrites segments holding enough garbage, online (admin).' },
  'post /api/sensory/store': { id: 'legacyStore', description: 'Legacy dicebox API: stores a base64 PNG into dataset `<name>_<width>x<height>` (created with 3 channels when missing).' },
  'get /api/sensory/category': { id: 'legacyCategoryMap', description: 'Legacy dicebox API: the category map of SENSORY_LEGACY_DATASET.' },
  'post /api/sensory/request': { id: 'legacyRequest', description: 'Legacy dicebox API: a small batch of SENSORY_LEGACY_DATASET as JSON.' },
  'post /api/sensory/batch': { id: 'legacyBatch', description: 'Legacy dicebox API: places an order on SENSORY_LEGACY_DATASET.' },
  'post /api/sensory/poll': { id: 'legacyPoll', description: 'Legacy dicebox API: one sample of a legacy order, or nulls when none is ready.' },
  'get /api/version': { id: 'legacyVersion', description: 'Legacy: the service version and the dicebox API version it speaks.', public: true },
  'get /health/plain': {
    id: 'legacyHealth',
    description: 'Legacy health check: `true`.',
    public: true,
    answers: { 200: { description: 'true', content: { 'application/json': { schema: { type: 'boolean' }, example: true } } } },
  },
  'get /health/live': {
    id: 'healthLive',
    description: 'The process is up.',
    public: true,
    answers: { 200: { description: 'up', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string' } } }, example: { status: 'ok' } } } } },
  },
  'get /health/ready': {
    id: 'healthReady',
    description: 'Database, data dir and queue answer: 200, or 503 naming what is down (the reason is in the log).',
    public: true,
    answers: {
      200: {
        description: 'ready',
        content: {
          'application/json': {
            schema: { type: 'object', properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'down'] } }, down: { type: 'array', items: { type: 'string' } } } },
            example: { status: 'ok', checks: { database: 'ok', dataDir: 'ok', queue: 'ok' }, down: [] },
          },
        },
      },
      503: {
        description: 'a dependency is down',
        content: { 'application/json': { schema: { type: 'object' }, example: { status: 'unavailable', checks: { database: 'down', dataDir: 'ok', queue: 'ok' }, down: ['database'] } } },
      },
    },
  },
  'get /metrics': {
    id: 'metrics',
    description: 'Prometheus text exposition of the service\'s and the process\'s metrics.',
    public: true,
    answers: { 200: { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' }, example: '# HELP sensory_samples_stored_total …' } } } },
  },
  'get /openapi.json': {
    id: 'openApi',
    description: 'This document.',
    public: true,
    answers: { 200: { description: 'the OpenAPI 3 document', content: { 'application/json': { schema: { type: 'object' } } } } },
  },
};

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

/** The codes of the registry with this status, as named examples of an error answer. */
function errorExamples(status: number): Json | undefined {
  const codes = (Object.keys(ERROR_REGISTRY) as ErrorCode[]).filter((code) => ERROR_REGISTRY[code].status === status);
  if (codes.length === 0) return undefined;
  return Object.fromEntries(
    codes.map((code) => [
      code,
      {
        summary: ERROR_REGISTRY[code].summary,
        value: { error: { code, message: ERROR_REGISTRY[code].summary, ...(status === 400 ? { field: 'split' } : {}) } },
      },
    ]),
  );
}

/** A value that fits a schema, from its example, default, enum or type: an example where none was given. */
export function exampleOf(schema: Json | undefined, doc: Json, depth = 0): unknown {
  if (!schema || depth > 8) return null;
  if (schema.$ref) return exampleOf(doc.components?.schemas?.[String(schema.$ref).split('/').pop()!], doc, depth + 1);
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.anyOf)) return exampleOf(schema.anyOf[0], doc, depth + 1);
  if (Array.isArray(schema.oneOf)) return exampleOf(schema.oneOf[0], doc, depth + 1);
  switch (schema.type) {
    case 'object': {
      const out: Json = {};
      for (const [key, property] of Object.entries<Json>(schema.properties ?? {})) {
        if ((schema.required ?? []).includes(key) || depth < 2) out[key] = exampleOf(property, doc, depth + 1);
      }
      return out;
    }
    case 'array':
      return [exampleOf(schema.items, doc, depth + 1)];
    case 'integer':
      return Math.max(1, schema.minimum ?? 1);
    case 'number':
      return schema.minimum ?? 0.5;
    case 'boolean':
      return true;
    case 'string':
      return schema.format === 'binary' ? '<bytes>' : schema.format === 'date-time' ? '2026-01-05T10:00:00.000Z' : 'text';
    default:
      return null;
  }
}

function withExample(media: Json, doc: Json): void {
  if (media.example !== undefined || media.examples !== undefined) return;
  media.example = exampleOf(media.schema, doc);
}

export function completeOpenApi(doc: Json): Json {
  const seen = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const known = OPERATIONS[`${method} ${path}`];
      let id = operation.operationId ?? known?.id ?? `${method}${path.replace(/[{}]/g, '').replace(/(^|[/_.-])(\w)/g, (_m, _s, c: string) => c.toUpperCase())}`;
      while (seen.has(id)) id = `${id}2`;
      seen.add(id);
      operation.operationId = id;
      operation.description = operation.description || known?.description || operation.summary || id;
      if (known?.public || (!path.startsWith('/v1/') && !path.startsWith('/api/sensory/'))) operation.security = [];
      else if (path.startsWith('/api/sensory/')) operation.security = [{ apiKey: [] }];
      const jsonBody = operation.requestBody?.content?.['application/json'];
      if (jsonBody && known?.example !== undefined) jsonBody.example ??= known.example;
      if (known?.bodies) {
        operation.requestBody ??= { content: {} };
        Object.assign(operation.requestBody.content, known.bodies);
      }
      for (const media of Object.values<Json>(operation.requestBody?.content ?? {})) withExample(media, doc);
      operation.responses ??= {};
      for (const [status, answer] of Object.entries(known?.answers ?? {})) {
        const existing = operation.responses[status];
        operation.responses[status] = existing ? { ...existing, content: { ...(existing.content ?? {}), ...answer.content } } : answer;
      }
      for (const [status, response] of Object.entries<Json>(operation.responses)) {
        const code = Number(status);
        if (code >= 400) {
          const media = response.content?.['application/json'];
          const examples = errorExamples(code);
          if (media && examples && media.examples === undefined && media.example === undefined) media.examples = examples;
          continue;
        }
        response.content ??= { 'application/json': { schema: { type: 'object' } } };
        for (const media of Object.values<Json>(response.content)) withExample(media, doc);
      }
      if (!Object.keys(operation.responses).some((status) => Number(status) < 400)) {
        operation.responses[200] = { description: 'done', content: { 'application/json': { schema: { type: 'object' }, example: {} } } };
      }
    }
  }
  return doc;
}
