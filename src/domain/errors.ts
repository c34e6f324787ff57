/**
 * The one error registry. Services throw `SensoryError`s by code; the HTTP edge maps them to a
 * status and the `{error: {code, message}}` shape in exactly one place. docs/errors.md and the
 * OpenAPI description are checked against this table by a test.
 */
export const ERROR_REGISTRY = {
  SENSORY_ERR_BAD_REQUEST: { status: 400, summary: 'The request is malformed (a field, the URL, or the HTTP itself) or an API key was sent in the URL.' },
  SENSORY_ERR_INVALID_NAME: { status: 400, summary: 'A dataset name is not 1–64 characters of A–Z a–z 0–9 . _ - starting with a letter or digit, or a category name breaks the category rule (README, Categories).' },
  SENSORY_ERR_LEGACY_VERSION: { status: 400, summary: 'The legacy API-VERSION header is missing or differs from SENSORY_API_VERSION.' },
  SENSORY_ERR_BAD_CURSOR: { status: 400, summary: 'A cursor or ack of an order poll is not a token of this service, or ack is past the cursor.' },
  SENSORY_ERR_UNAUTHORIZED: { status: 401, summary: 'No API key, or an unknown one.' },
  SENSORY_ERR_FORBIDDEN: { status: 403, summary: 'The API key lacks the role this call needs (legacy calls: no or unknown key).' },
  SENSORY_ERR_NOT_ORDER_OWNER: { status: 403, summary: 'The order was placed with another API key: only that key or an admin key may poll, cancel, reshape or extend it.' },
  SENSORY_ERR_NOT_FOUND: { status: 404, summary: 'No such route (or no such method on it).' },
  SENSORY_ERR_DATASET_NOT_FOUND: { status: 404, summary: 'No dataset of that name.' },
  SENSORY_ERR_SAMPLE_NOT_FOUND: { status: 404, summary: 'No live sample with that id in the dataset.' },
  SENSORY_ERR_BULK_ACTION_NOT_FOUND: { status: 404, summary: 'No bulk action with that id in the dataset.' },
  SENSORY_ERR_ORDER_NOT_FOUND: { status: 404, summary: 'No order with that id.' },
  SENSORY_ERR_EXPORT_NOT_FOUND: { status: 404, summary: 'No export job with that id.' },
  SENSORY_ERR_EXPORT_FILE_NOT_FOUND: { status: 404, summary: 'The export job has no file with that number (or its file was removed).' },
  SENSORY_ERR_WEBHOOK_NOT_FOUND: { status: 404, summary: 'No webhook with that id.' },
  SENSORY_ERR_LEGACY_DATASET_UNSET: { status: 404, summary: 'SENSORY_LEGACY_DATASET is unset or names a dataset that does not exist.' },
  SENSORY_ERR_REQUEST_TIMEOUT: { status: 408, summary: 'The headers (SENSORY_HEADERS_TIMEOUT_MS) or the whole request (SENSORY_REQUEST_TIMEOUT_MS) did not arrive in time; the connection is closed.' },
  SENSORY_ERR_DATASET_SHAPE_CONFLICT: { status: 409, summary: 'The dataset exists with another shape or test share.' },
  SENSORY_ERR_DATASET_NAME_CONFLICT: { status: 409, summary: 'A dataset whose name differs only in letter case exists; the message names it.' },
  SENSORY_ERR_COMPACTION_RUNNING: { status: 409, summary: 'A purge and compaction is already running in this process.' },
  SENSORY_ERR_CATEGORY_LIST_CONFLICT: { status: 409, summary: 'A declared category list does not begin with the categories the dataset has, in index order: indices never move, new names go at the end.' },
  SENSORY_ERR_CATEGORY_CONFLICT: { status: 409, summary: 'The same bytes are already stored in this dataset under another category.' },
  SENSORY_ERR_UNDO_CONFLICT: { status: 409, summary: 'Only the last bulk action of a dataset can be undone, once: a later action exists, or it was undone already.' },
  SENSORY_ERR_NEAR_DUPLICATE: { status: 409, summary: 'The upload asked to be refused as a near-duplicate (rejectNearDuplicate) and a live sample\'s perceptual hash is within that distance; sampleId names it.' },
  SENSORY_ERR_ORDER_KEY_CONFLICT: { status: 409, summary: 'The order key already names an order of this API key with another request.' },
  SENSORY_ERR_ORDER_FINISHED: { status: 409, summary: 'The order is no longer active (complete, cancelled, expired or failed): it cannot be reshaped or extended.' },
  SENSORY_ERR_ORDER_BUSY: { status: 409, summary: 'Polls without a cursor are sending samples of the order: reshape it once they finish.' },
  SENSORY_ERR_RANK_OUT_OF_RANGE: { status: 409, summary: 'The rank polled does not exist in the order\'s current generation (it has fewer ranks, or was reshaped).' },
  SENSORY_ERR_POLL_MODE_CONFLICT: { status: 409, summary: 'The rank is polled in the other mode: with cursors, or without.' },
  SENSORY_ERR_CURSOR_CONFLICT: { status: 409, summary: 'The cursor belongs to another order, generation or rank, or is behind what the rank acknowledged (send resume: true to go back to it).' },
  SENSORY_ERR_EXPORT_FILE_NOT_READY: { status: 409, summary: 'The export job has not finished writing that file yet; ask again once GET /v1/exports/{id} lists it.' },
  SENSORY_ERR_EXPORT_RUNNING: { status: 409, summary: 'The export job is running: it can be removed once it has ended.' },
  SENSORY_ERR_SAMPLE_TOO_LARGE: { status: 413, summary: 'A sample is larger than SENSORY_MAX_SAMPLE_BYTES.' },
  SENSORY_ERR_BODY_TOO_LARGE: { status: 413, summary: 'The request body is larger than this endpoint accepts.' },
  SENSORY_ERR_IMAGE_TOO_LARGE: { status: 413, summary: 'The image has more pixels than SENSORY_MAX_IMAGE_PIXELS, or more frames than SENSORY_MAX_IMAGE_FRAMES (checked from its header, before decoding).' },
  SENSORY_ERR_BATCH_TOO_LARGE: { status: 413, summary: 'A small batch asks for more than SENSORY_MAX_BATCH_SAMPLES samples, or its answer would pass SENSORY_MAX_BATCH_BYTES; place a batch order instead.' },
  SENSORY_ERR_ORDER_TOO_LARGE: { status: 413, summary: 'An order asks for more samples than SENSORY_MAX_ORDER_SAMPLES, or more shards than SENSORY_MAX_ORDER_SHARDS.' },
  SENSORY_ERR_RECORD_TOO_LARGE: { status: 413, summary: 'A dataset shape whose width × height × channels is above SENSORY_MAX_RECORD_BYTES.' },
  SENSORY_ERR_DATASET_TOO_LARGE: { status: 413, summary: 'Another sample would take the dataset\'s pixel file above SENSORY_MAX_DATASET_PIXEL_BYTES.' },
  SENSORY_ERR_URL_TOO_LONG: { status: 414, summary: 'A path parameter of the URL is longer than any route accepts.' },
  SENSORY_ERR_NOT_AN_IMAGE: { status: 415, summary: 'The bytes are not a PNG, JPEG, WebP, GIF or TIFF image.' },
  SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request Content-Type is not accepted by this endpoint.' },
  SENSORY_ERR_RANGE_NOT_SATISFIABLE: { status: 416, summary: 'The Range header asks for bytes past the end of the file; Content-Range gives its size.' },
  SENSORY_ERR_NOT_ENOUGH_SAMPLES: { status: 422, summary: 'The batch asks for more samples than are eligible.' },
  SENSORY_ERR_UNBALANCEABLE: { status: 422, summary: 'A balanced batch cannot be drawn: the size does not divide evenly, or a category has too few samples.' },
  SENSORY_ERR_UNKNOWN_REVISION: { status: 422, summary: 'The revision asked for is above the dataset\'s current revision.' },
  SENSORY_ERR_REVISION_PURGED: { status: 422, summary: 'The revision asked for is below the dataset\'s purged revision: samples it held were deleted long enough ago to be purged.' },
  SENSORY_ERR_UNKNOWN_CATEGORY: { status: 422, summary: 'A category asked for does not exist in the dataset.' },
  SENSORY_ERR_UNDECLARED_CATEGORY: { status: 422, summary: 'The dataset declares its categories and this one is not among them: declare it first (PUT the dataset with the list extended).' },
  SENSORY_ERR_UNEVEN_RANKS: { status: 422, summary: 'The samples do not divide evenly over the ranks and rounding is exact: ask rounding drop or repeat.' },
  SENSORY_ERR_TOO_MANY_RANKS: { status: 422, summary: 'More ranks than samples to share, or than SENSORY_MAX_ORDER_RANKS.' },
  SENSORY_ERR_TOO_MANY_ORDERS: { status: 429, summary: 'The API key has as many active (queued or running) orders as SENSORY_MAX_ACTIVE_ORDERS_PER_KEY allows; finish or cancel one, or retry after Retry-After seconds.' },
  SENSORY_ERR_TOO_MANY_POLLS: { status: 429, summary: 'As many order polls are waiting as SENSORY_MAX_WAITING_POLLS_PER_KEY (this API key) or SENSORY_MAX_WAITING_POLLS (the process) allow; retry after Retry-After seconds.' },
  SENSORY_ERR_TOO_MANY_CONNECTIONS: { status: 429, summary: 'More than SENSORY_MAX_CONNECTIONS_PER_IP connections are open from this address; the connection is closed.' },
  SENSORY_ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'The request line and headers are larger than the server accepts (16 KiB).' },
  SENSORY_ERR_INTERNAL: { status: 500, summary: 'An unexpected error; the response carries the request id to look up in the logs.' },
  SENSORY_ERR_UNAVAILABLE: { status: 503, summary: 'A dependency (data dir, queue) is down; retry shortly.' },
  SENSORY_ERR_DATABASE_UNAVAILABLE: { status: 503, summary: 'The database cannot be reached (restarting, or the connection was lost); nothing of the request was acknowledged. Retry shortly.' },
  SENSORY_ERR_DISK_FULL: { status: 507, summary: 'The disk of the data dir (or of the database) is full or over quota; nothing of the request was kept. Retry once space is freed.' },
} as const;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export class SensoryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  /** The request field the error is about (`split`, `categories[2]`, `cursor`), from `details.field`; answered to the client. */
  readonly field?: string;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SensoryError';
    this.code = code;
    this.status = ERROR_REGISTRY[code].status;
    this.details = details;
    if (typeof details?.field === 'string') this.field = details.field;
  }
}

export function isSensoryError(error: unknown): error is SensoryError {
  return error instanceof SensoryError;
}
