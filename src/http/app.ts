import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AppDeps } from './app-deps.js';
import { installAccessLog } from './access-log.js';
import { installAuth } from './auth.js';
import { installConnectionLimits, serverTimeouts } from './connection-limits.js';
import { installErrorHandling } from './error-handler.js';
import { installRequestMetrics } from './metrics.js';
import { lazyChildLogger } from './request-logger.js';
import { adminRoutes } from './routes/admin.routes.js';
import { batchRoutes } from './routes/batches.routes.js';
import { bulkRoutes } from './routes/bulk.routes.js';
import { dataReportRoutes } from './routes/data-report.routes.js';
import { reviewRoutes } from './routes/review.routes.js';
import { datasetRoutes } from './routes/datasets.routes.js';
import { exportRoutes } from './routes/exports.routes.js';
import { webhookRoutes } from './routes/webhooks.routes.js';
import { clientErrorHandler, frameworkErrors } from './router-errors.js';
import { legacyOrderRoutes, legacyRoutes } from './routes/legacy.routes.js';
import { meRoutes } from './routes/me.routes.js';
import { curationRoutes } from './routes/curation.routes.js';
import { operationsRoutes } from './routes/operations.routes.js';
import { orderRoutes } from './routes/orders.routes.js';
import { sampleRoutes, sampleUploadRoutes } from './routes/samples.routes.js';
import { thumbnailRoutes } from './routes/thumbnails.routes.js';
import { completeOpenApi } from './openapi-document.js';
import { ErrorBody } from './schemas.js';
import { installSecurityHeaders } from './security-headers.js';
import { GZIP_TYPES, TAR_TYPES } from './upload-body.js';
import { webRoutes } from './web.js';

/**
 * Bodies are validated strictly (no coercion, no silently dropped fields); query strings and
 * path parameters are text, so they are coerced.
 */
function validatorCompiler() {
  const strict = new Ajv({ allErrors: false, verbose: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false });
  const coercing = new Ajv({ allErrors: false, verbose: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema);
}

/** /openapi.json and the /docs page, from the routes' schemas. */
async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Sensory', version, description: 'Labeled training samples stored durably, served as training batches.' },
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
    // operationIds, descriptions, the bodies and answers that are not JSON, examples, public endpoints.
    transformObject: (document) => ('openapiObject' in document ? completeOpenApi(document.openapiObject as Record<string, any>) : document.swaggerObject) as never,
  });
  app.addSchema(ErrorBody);
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

/** Builds the app without listening, so that tests can use inject(). */
export async function buildApp(deps: AppDeps, logger?: FastifyBaseLogger): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    requestIdHeader: 'x-request-id',
    // One access line per request instead (access-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is made on its first use: the access line goes through the parent (access-log.ts).
    childLoggerFactory: lazyChildLogger,
    genReqId: () => randomUUID(),
    forceCloseConnections: false,
    ...serverTimeouts(deps.config),
    frameworkErrors,
    clientErrorHandler,
  });
  app.setValidatorCompiler(validatorCompiler());
  installErrorHandling(app);
  // First, so that a request refused by a later hook (a connection cap, a missing key) is logged whole.
  installAccessLog(app);
  installConnectionLimits(app, deps.config);
  installSecurityHeaders(app);
  installAuth(app, deps.keyring, deps.config.apiVersion);
  installRequestMetrics(app, deps.metrics);

  app.addContentTypeParser(/^image\/.+/, { parseAs: 'buffer', bodyLimit: deps.config.maxSampleBytes }, (_request, body, done) => done(null, body));
  // Tar imports are streamed: the parser hands the untouched request stream to the route.
  app.addContentTypeParser([...TAR_TYPES, ...GZIP_TYPES], (_request, _payload, done) => done(null));
  await app.register(multipart, { throwFileSizeLimit: false, limits: { fileSize: deps.config.maxSampleBytes, files: 1000, fields: 64, fieldSize: Math.max(4096, deps.config.maxSampleMetadataBytes), parts: 1064 } });

  await registerOpenApi(app, deps.version);

  meRoutes(app);
  datasetRoutes(app, deps);
  sampleUploadRoutes(app, deps);
  curationRoutes(app, deps);
  sampleRoutes(app, deps);
  dataReportRoutes(app, deps);
  reviewRoutes(app, deps);
  bulkRoutes(app, deps);
  thumbnailRoutes(app, deps);
  batchRoutes(app, deps);
  orderRoutes(app, deps);
  exportRoutes(app, deps);
  webhookRoutes(app, deps);
  legacyRoutes(app, deps);
  legacyOrderRoutes(app, deps);
  operationsRoutes(app, deps);
  adminRoutes(app, deps);
  webRoutes(app);
  return app;
}
