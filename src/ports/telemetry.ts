/** How a small batch left the service: the modern API's two encodings, or the dicebox JSON. */
export type BatchFormat = 'json' | 'safetensors' | 'legacy';

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
}

export const SILENT_TELEMETRY: Telemetry = {
  countSamplesStored: () => undefined,
  countBatchSamplesServed: () => undefined,
  countOrderSamplesDelivered: () => undefined,
};
