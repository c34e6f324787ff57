/** How a small batch left the service: the modern API's two encodings, or the dicebox JSON. */
export type BatchFormat = 'json' | 'safetensors' | 'legacy';

/** What became of one uploaded image. */
export type IngestOutcome = 'stored' | 'duplicate' | 'rejected';

/** Where pixels were handed out: small batches (modern and legacy), or polls of batch orders. */
export type PixelRoute = 'batch' | 'order';

/** The state the gauges show, read when the metrics are scraped. */
export interface ServiceState {
  /** Every dataset with its live samples. */
  datasets(): Promise<readonly { readonly name: string; readonly samples: number }[]>;
  /** Every order in flight (not finished), with its samples produced but not yet delivered. */
  activeOrders(): Promise<readonly { readonly status: string; readonly undelivered: number }[]>;
  /** Export jobs by status. */
  exportJobs(): Promise<ReadonlyMap<string, number>>;
  /** Webhook deliveries (the outbox, every hook) by status. */
  webhookDeliveries(): Promise<ReadonlyMap<string, number>>;
}

/**
 * What the services count as they work. The serve process exports the counts (Prometheus, at
 * /metrics); a process that exports nothing passes SILENT_TELEMETRY.
 */
export interface Telemetry {
  /** New samples committed (duplicates are not new). */
  countSamplesStored(count: number): void;
  /** Samples handed out in small batches. */
  countBatchSamplesServed(format: BatchFormat, count: number): void;
  /** Samples of batch orders delivered by polls, once their response was fully sent. */
  countOrderSamplesDelivered(format: string, count: number): void;
  /** One image checked and stored (or found, or refused), and how long that took. */
  observeIngest(outcome: IngestOutcome, seconds: number): void;
  /** One upload refused, by its SENSORY_ERR_* code (a bounded set: the error registry). */
  countUploadRejected(code: string): void;
  /** A small batch planned, rendered and encoded to its last byte, and how long that took. */
  observeBatch(format: BatchFormat, seconds: number): void;
  /** Bytes of dataset-shaped pixels handed out (samples × width × height × channels). */
  countPixelBytesServed(route: PixelRoute, bytes: number): void;
}

export const SILENT_TELEMETRY: Telemetry = {
  countSamplesStored: () => undefined,
  countBatchSamplesServed: () => undefined,
  countOrderSamplesDelivered: () => undefined,
  observeIngest: () => undefined,
  countUploadRejected: () => undefined,
  observeBatch: () => undefined,
  countPixelBytesServed: () => undefined,
};
