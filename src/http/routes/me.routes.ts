import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../schemas.js';

const ROLE_ORDER = ['read', 'write', 'admin'] as const;

const MeView = Type.Object(
  {
    name: Type.String({ description: 'the key as logs name it ("key 2"), never the key itself', examples: ['key 2'] }),
    roles: Type.Array(Type.Unsafe<(typeof ROLE_ORDER)[number]>({ type: 'string', enum: [...ROLE_ORDER] }), {
      description: 'the roles of the key; admin may do everything',
      examples: [['read', 'write']],
    }),
  },
  { additionalProperties: false, description: 'The presented key' },
);

/** Who the presented key is: what a client (the web page) needs to show only what the key may do. */
export function meRoutes(app: FastifyInstance): void {
  app.get(
    '/v1/me',
    {
      config: { role: 'any' },
      schema: {
        operationId: 'getMe',
        summary: 'The presented API key: its name and roles',
        description: 'Any known key may ask. The answer never contains the key.',
        tags: ['keys'],
        response: { 200: MeView, ...errorResponses(401) },
      },
    },
    async (request) => {
      const principal = request.principal!;
      return { name: principal.label, roles: ROLE_ORDER.filter((role) => principal.roles.has(role)) };
    },
  );
}
