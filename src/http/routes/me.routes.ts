import type { FastifyInstance } from 'fastify';
import { ROLES } from '../../config/api-keys-setting.js';
import { SensoryError } from '../../domain/errors.js';
import { hasRole } from '../../services/api-keyring.js';
import { MeView, errorResponses } from '../schemas.js';

const meSchema = {
  operationId: 'getMe',
  summary: 'The key this request carries: its name, roles and what it may do',
  description: 'Any known key may ask. A client (the web page) shows only the controls the key may use.',
  tags: ['keys'],
  response: {
    200: { ...MeView, examples: [{ name: 'labeller', roles: ['read', 'write'], can: { read: true, write: true, admin: false } }] },
    ...errorResponses(401),
  },
};

/** GET /v1/me: who the key is, by name and roles (never the key itself). */
export function meRoutes(app: FastifyInstance): void {
  app.get('/v1/me', { config: { anyKey: true }, schema: meSchema }, async (request) => {
    const principal = request.principal;
    if (!principal) throw new SensoryError('SENSORY_ERR_UNAUTHORIZED', 'send a known API key in API-ACCESS-KEY or Authorization: Bearer');
    return {
      name: principal.label,
      roles: ROLES.filter((role) => principal.roles.has(role)),
      can: { read: hasRole(principal, 'read'), write: hasRole(principal, 'write'), admin: hasRole(principal, 'admin') },
    };
  });
}
