import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { ApiKeyring } from '../services/api-keyring.js';
import type { BatchService } from '../services/batch.service.js';
import type { BulkUploadService } from '../services/bulk-upload.service.js';
import type { CompactionService } from '../services/compaction.service.js';
import type { DatasetService } from '../services/dataset.service.js';
import type { ImportService } from '../services/import.service.js';
import type { IngestService } from '../services/ingest.service.js';
import type { OrderService } from '../services/order.service.js';
import type { SampleService } from '../services/sample.service.js';
import { installAuth } from './auth.js';
import { installErrorHandling } from './error-handler.js';
import { Metrics } from './metrics.js';
import { adminRoutes } from './routes/admin.routes.js';
import { batchRoutes } from './routes/batches.routes.js';
import { bulkRoutes } from './routes/bulk.routes.js';
import { datasetRoutes } from './routes/datasets.routes.js';
import { legacyRoutes } from './routes/legacy.routes.js';
import { operationsRoutes } from './routes/operations.routes.js';
import { orderRoutes } from './routes/orders.routes.js';
import { sampleRoutes } from './routes/samples.routes.js';
import { statsRoutes } from './routes/stats.routes.js';
import { ErrorBody } from './schemas.js';
import { webRoutes } from './web.js';

export interface AppDeps {
  readonly config: Config;
  readonly version: string;
  readonly keyring: ApiKeyring;
  readonly datasets: DatasetService;
  readonly samples: SampleService;
  readonly ingest: IngestService;
  readonly imports: ImportService;
  readonly bulk: BulkUploadService;
  readonly compaction: CompactionService;
  readonly batches: BatchService;
  readonly orders: OrderService;
  /** Each dependency's state: 'ok' or what is wrong with it. */
  readonly readiness: () => Promise<Record<string, string>>;
  readonly metrics: Metrics;
}

/**
 * Bodies are validated strictly (no coercion, no silently dropped fields); query strings and
 * path parameters are text, so they are coerced.
 */
function validatorCompiler() {
  const strict = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false });
  const coercing = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema);
}

/** Builds the app without listening, so that tests can use inject(). */
export async function buildApp(deps: AppDeps, logger?: FastifyBaseLogger): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    forceCloseConnections: false,
  });
  app.setValidatorCompiler(validatorCompiler());
  installErrorHandling(app);
  installAuth(app, deps.keyring, deps.config.apiVersion);
  deps.metrics.install(app);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.addContentTypeParser(/^image\/.+/, { parseAs: 'buffer', bodyLimit: deps.config.maxSampleBytes }, (_request, body, done) => done(null, body));
  // Tar imports are streamed: the parser hands the untouched request stream to the route.
  app.addContentTypeParser(['application/x-tar', 'application/tar', 'application/gzip', 'application/x-gzip', 'application/x-gtar'], (_request, _payload, done) =>
    done(null),
  );
  await app.register(multipart, { throwFileSizeLimit: false, limits: { fileSize: deps.config.maxSampleBytes, files: 1000, fields: 20, fieldSize: 4096, parts: 1020 } });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Sensory', version: deps.version, description: 'Labeled training samples stored durably, served as training batches.' },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'API-ACCESS-KEY' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ apiKey: [] }, { bearer: [] }],
    },
    // Shared schemas keep their $id as their component name (ErrorBody), not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  app.addSchema(ErrorBody);
  await app.register(swaggerUi, { routePrefix: '/docs' });

  datasetRoutes(app, deps);
  sampleRoutes(app, deps);
  bulkRoutes(app, deps);
  adminRoutes(app, deps);
  batchRoutes(app, deps);
  orderRoutes(app, deps);
  legacyRoutes(app, deps);
  operationsRoutes(app, deps);
  statsRoutes(app, deps);
  webRoutes(app);
  return app;
}
