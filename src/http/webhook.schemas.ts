import { Type, type Static } from '@sinclair/typebox';
import { DELIVERY_STATUSES, MAX_WEBHOOK_URL_LENGTH, WEBHOOK_EVENTS } from '../domain/webhook.js';

/** The schemas of the webhook routes (re-exported by schemas.ts). */

export const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: MAX_WEBHOOK_URL_LENGTH, description: 'http:// or https:// URL the events are POSTed to (no credentials in it)' }),
    events: Type.Array(Type.String({ description: WEBHOOK_EVENTS.join(', ') }), { minItems: 1, maxItems: WEBHOOK_EVENTS.length, description: `the events to send: ${WEBHOOK_EVENTS.join(', ')}` }),
  },
  { additionalProperties: false },
);
export type WebhookBody = Static<typeof WebhookBody>;

export const WebhookParams = Type.Object({ id: Type.String({ maxLength: 64, description: 'webhook id' }) });
export const DeliveryListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false });

const WebhookEventName = Type.Union(WEBHOOK_EVENTS.map((event) => Type.Literal(event)));

export const WebhookView = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(WebhookEventName),
  createdAt: Type.String(),
});

export const WebhookCreated = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(WebhookEventName),
  createdAt: Type.String(),
  secret: Type.String({ description: 'the signing secret: shown this once only; keep it to verify the Sensory-Signature header' }),
});

export const WebhookList = Type.Object({ webhooks: Type.Array(WebhookView) });

export const DeliveryView = Type.Object({
  id: Type.String(),
  event: WebhookEventName,
  status: Type.Union(DELIVERY_STATUSES.map((status) => Type.Literal(status))),
  attempts: Type.Integer(),
  lastStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'the HTTP status of the last attempt, or null when it got none' }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String(), Type.Null()], { description: 'pending: when the next attempt is due' }),
  createdAt: Type.String(),
  deliveredAt: Type.Union([Type.String(), Type.Null()]),
  body: Type.String({ description: 'the JSON body sent' }),
});
export const DeliveryList = Type.Object({ deliveries: Type.Array(DeliveryView) });
