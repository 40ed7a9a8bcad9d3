import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { PROVIDERS, type Provider } from '../ledger/apply.js';
import { ProviderParam } from '../ledger/routes.js';
import { deliverWebhook, type DeliveryDeps } from './deliver.js';
import { PayPalVerifier, paypalOptionsFromEnv } from './paypal.js';
import { loadSecretKey } from './secret-key.js';

/** Largest webhook body accepted; larger ones get a 413 before any signature work. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

const Outcome = Type.Object({
  status: Type.Union(['applied', 'duplicate', 'ignored', 'pending', 'dead_lettered', 'ping'].map((s) => Type.Literal(s))),
  event_id: Type.Optional(Type.String()),
  event_type: Type.Optional(Type.String()),
  transaction_id: Type.Optional(Type.String()),
  state: Type.Optional(Type.String()),
  dead_event_id: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
});

/**
 * POST /api/v1/webhooks/{provider}/{endpoint_id}: a PUBLIC route (no API key: providers cannot
 * send one). The body is taken as raw bytes by this plugin's own content-type parser (any
 * content type), so the signature is checked over exactly what the provider signed; it is
 * parsed only afterwards. The tenant comes from the endpoint.
 */
export const webhookRoutes: FastifyPluginAsync = async (app) => {
  // SKELDIR_SECRET_KEY is checked now (a bad key fails start-up); the key file in the data
  // directory is read (or created) on the first delivery only, so building the app touches no file.
  let key = process.env.SKELDIR_SECRET_KEY ? loadSecretKey(process.env, app.skeldir.config.dataDir) : undefined;
  const deps: DeliveryDeps = {
    pool: app.appPool,
    get key() {
      return (key ??= loadSecretKey(process.env, app.skeldir.config.dataDir));
    },
    paypal: new PayPalVerifier(paypalOptionsFromEnv(process.env)),
    warn: (message, detail) => app.log.warn(detail ?? {}, message),
  };
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));

  // Deliveries refused before or by the handler, counted by what they were (providers are a known, short list).
  app.addHook('onResponse', (request, reply, done) => {
    const provider = (request.params as { provider?: string }).provider;
    const status = reply.statusCode;
    if (provider && PROVIDERS.includes(provider as Provider) && status >= 400) {
      const outcome = status === 401 ? 'signature_invalid' : status === 413 ? 'too_large' : status >= 500 ? 'error' : 'rejected';
      app.metrics.webhooks.inc({ provider, outcome });
    }
    done();
  });
  app.post<{ Params: { provider: Provider; endpoint_id: string } }>(
    '/api/v1/webhooks/:provider/:endpoint_id',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      // The provider's signature over the body authenticates (no OpenAPI scheme describes it).
      config: { problems: ['webhook_signature_invalid', 'payload_too_large', 'validation_failed', 'database_unavailable'] },
      schema: {
        tags: ['webhooks'],
        summary: "A payment provider's webhook (signature-verified; the tenant comes from the endpoint)",
        description:
          'Stripe (Stripe-Signature), Shopify (X-Shopify-Hmac-Sha256), WooCommerce (X-WC-Webhook-Signature) and PayPal ' +
          '(PAYPAL-TRANSMISSION-* certificate signature). Any verification failure is the same 401 problem; nothing is written.',
        params: Type.Object({
          provider: ProviderParam,
          endpoint_id: Type.String({ maxLength: 64 }),
        }),
        response: { 200: Outcome, 202: Outcome },
      },
    },
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const outcome = await deliverWebhook(deps, request.params.provider, request.params.endpoint_id.toLowerCase(), body, request.headers);
      app.metrics.webhooks.inc({ provider: request.params.provider, outcome: outcome.status });
      return reply.code(outcome.status === 'pending' ? 202 : 200).send(outcome);
    },
  );
};
