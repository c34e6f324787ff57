import type { Config } from '../config/config.js';
import type { ApiKeyring } from '../services/api-keyring.js';
import type { BatchService } from '../services/batch.service.js';
import type { BulkUploadService } from '../services/bulk-upload.service.js';
import type { CompactionService } from '../services/compaction.service.js';
import type { CurationService } from '../services/curation.service.js';
import type { DatasetStatsService } from '../services/dataset-stats.service.js';
import type { DatasetService } from '../services/dataset.service.js';
import type { ExportService } from '../services/export.service.js';
import type { ImportService } from '../services/import.service.js';
import type { IngestService } from '../services/ingest.service.js';
import type { LegacyService } from '../services/legacy.service.js';
import type { NearDuplicateService } from '../services/near-duplicate.service.js';
import type { RevisionDiffService } from '../services/revision-diff.service.js';
import type { ReviewService } from '../services/review.service.js';
import type { OrderService } from '../services/order.service.js';
import type { SampleService } from '../services/sample.service.js';
import type { ThumbnailService } from '../services/thumbnail.service.js';
import type { WebhookService } from '../services/webhook.service.js';
import type { Metrics } from './metrics.js';

/** What the HTTP edge is given: the services its routes call, and what it reports about itself. */
export interface AppDeps {
  readonly config: Config;
  readonly version: string;
  readonly keyring: ApiKeyring;
  readonly datasets: DatasetService;
  readonly stats: DatasetStatsService;
  readonly samples: SampleService;
  readonly thumbnails: ThumbnailService;
  readonly curation: CurationService;
  readonly ingest: IngestService;
  readonly imports: ImportService;
  readonly bulk: BulkUploadService;
  readonly compaction: CompactionService;
  readonly batches: BatchService;
  readonly orders: OrderService;
  readonly exports: ExportService;
  readonly webhooks: WebhookService;
  readonly legacy: LegacyService;
  readonly nearDuplicates: NearDuplicateService;
  readonly revisionDiffs: RevisionDiffService;
  readonly review: ReviewService;
  /** Each dependency's state: 'ok' or what is wrong with it. */
  readonly readiness: () => Promise<Record<string, string>>;
  readonly metrics: Metrics;
}
