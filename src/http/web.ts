import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The page's folder at the package root: the same URL from src/http/ and from dist/http/. */
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

/**
 * The web page for people (SPEC §7) at `/`: plain files from web/, no build step. Only the files
 * present at start get a route (no wildcard), so `/docs`, `/v1`, `/api`, `/health`, `/metrics`
 * and unknown paths keep their own handlers and JSON 404s.
 */
export function webRoutes(app: FastifyInstance): void {
  void app.register(fastifyStatic, {
    root: WEB_ROOT,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    // Cache-Control is set below; ETag and Last-Modified let a revalidation answer 304.
    cacheControl: false,
    etag: true,
    lastModified: true,
    setHeaders(res, path) {
      res.setHeader('x-content-type-options', 'nosniff');
      if (path.endsWith('.html')) {
        // The page is always revalidated, so a new version's asset list is seen at once.
        res.setHeader('cache-control', 'no-cache');
        res.setHeader(
          'content-security-policy',
          "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        );
        res.setHeader('referrer-policy', 'no-referrer');
      } else {
        res.setHeader('cache-control', 'public, max-age=3600');
      }
    },
  });
}
