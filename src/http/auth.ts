import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../config/api-keys-setting.js';
import { SensoryError } from '../domain/errors.js';
import { hasRole, type ApiKeyring, type Principal } from '../services/api-keyring.js';
import { redactedUrlOf } from './log-redaction.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The role a modern route needs (401 without a known key, 403 without the role). */
    role?: Role;
    /** Any known key will do, whatever its roles (401 without one). */
    anyKey?: boolean;
    /** The role a legacy route needs (403 without a known key or the role, 400 on a wrong API-VERSION). */
    legacyRole?: Role;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['api-access-key'];
  if (typeof header === 'string') return header;
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice('Bearer '.length).trim();
  return undefined;
}

/** Checked in onRequest, before any body is read: an unauthenticated upload costs nothing. */
export function installAuth(app: FastifyInstance, keyring: ApiKeyring, apiVersion: string): void {
  // Callback-style (no promise per request); what it throws becomes the request's error.
  app.addHook('onRequest', (request, _reply, done) => {
    check(request);
    done();
  });

  function check(request: FastifyRequest): void {
    // URLs end up in proxy logs and browser histories: a key there is refused even if valid.
    if (redactedUrlOf(request) !== request.url) {
      throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'an API key must not be sent in the URL: send it in API-ACCESS-KEY or Authorization: Bearer');
    }
    const { role, legacyRole, anyKey } = request.routeOptions.config;
    if (role || anyKey) {
      const principal = keyring.authenticate(presentedKey(request));
      if (!principal) throw new SensoryError('SENSORY_ERR_UNAUTHORIZED', 'send a known API key in API-ACCESS-KEY or Authorization: Bearer');
      // Known before its role is checked: the access log names the key a refusal was for.
      request.principal = principal;
      if (role && !hasRole(principal, role)) throw new SensoryError('SENSORY_ERR_FORBIDDEN', `this call needs the ${role} role`);
    } else if (legacyRole) {
      const principal = keyring.authenticate(presentedKey(request));
      if (!principal) throw new SensoryError('SENSORY_ERR_FORBIDDEN', 'send a known API key in API-ACCESS-KEY');
      request.principal = principal;
      if (!hasRole(principal, legacyRole)) throw new SensoryError('SENSORY_ERR_FORBIDDEN', `this call needs the ${legacyRole} role`);
      if (request.headers['api-version'] !== apiVersion) {
        throw new SensoryError('SENSORY_ERR_LEGACY_VERSION', `API-VERSION must be ${apiVersion}`);
      }
    }
  }
}
