export { SensoryClient, type SensoryClientOptions, type OrderIterationOptions } from './sensory-client.js';
export { SensoryApiError, SensoryConnectionError, SensoryOrderEndedError, isTransient } from './errors.js';
export type { Batch, LabelArray, PolledBatch } from './batch-decoder.js';
export type { UploadOptions } from './samples.resource.js';
export type { UploadSource } from './upload-source.js';
export type { BulkItem } from './bulk-archive.js';
export type { TransportOptions } from './http-transport.js';
export type * from './types.js';
export { parseSafetensors, type ParsedSafetensors, type SafetensorsDtype } from './safetensors.reader.js';
