import type { Static } from '@sinclair/typebox';
import type * as Schemas from '../http/schemas.js';

/** Request and response types of the API, from the same TypeBox schemas the routes validate with. */
export type DatasetShape = Static<typeof Schemas.DatasetBody>;
export type DatasetView = Static<typeof Schemas.DatasetView>;
export type DatasetList = Static<typeof Schemas.DatasetList>;
export type CategoriesView = Static<typeof Schemas.CategoriesView>;
export type SampleView = Static<typeof Schemas.SampleView>;
export type SamplePage = Static<typeof Schemas.SamplePage>;
export type SampleListQuery = Omit<Static<typeof Schemas.SampleListQuery>, 'cursor'>;
export type UploadResults = Static<typeof Schemas.UploadResults>;
export type BulkResult = Static<typeof Schemas.BulkResult>;
export type BulkReceipt = Static<typeof Schemas.BulkReceipt>;
export type CompactionRequest = Static<typeof Schemas.CompactionBody>;
export type CompactionResult = Static<typeof Schemas.CompactionResult>;
export type BatchRequest = Static<typeof Schemas.BatchBody>;
export type OrderRequest = Static<typeof Schemas.OrderBody>;
export type OrderCreated = Static<typeof Schemas.OrderCreated>;
export type OrderView = Static<typeof Schemas.OrderView>;
export type OrderList = Static<typeof Schemas.OrderList>;
export type PollRequest = Static<typeof Schemas.PollBody>;
export type ErrorBody = Static<typeof Schemas.ErrorBody>;
export type OrderStatus = OrderView['status'];
