import type { FastifyRequest } from 'fastify';
import { ROLES } from '../config/api-keys-setting.js';
import type { Actor } from '../ports/metadata-store.js';

/** Who the request's key is, as the audit log records it: its name and roles, never the key. */
export function actorOf(request: FastifyRequest): Actor | undefined {
  const principal = request.principal;
  if (!principal) return undefined;
  return { name: principal.label, roles: ROLES.filter((role) => principal.roles.has(role)) };
}
