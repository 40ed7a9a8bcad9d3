import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { authenticate } from './app.js';
import { registerRateLimit } from './rate-limit.js';
import { ingestionRoutes } from '../ingestion/routes.js';
import { metaRoutes } from './meta-routes.js';
import { withProblemResponses } from './openapi.js';
import { documentRoute } from './openapi.js';
import { deadEventRoutes } from '../dlq/routes.js';
import { metricsRoutes } from '../worker/metrics-routes.js';
import { webhookRoutes } from '../webhooks/routes.js';
import { ledgerRoutes } from '../ledger/routes.js';
import { reconciliationRoutes } from '../reconciliation/routes.js';
import { attributionRoutes } from '../attribution/routes.js';
import { channelRoutes } from '../channels/routes.js';
import { spendRoutes } from '../spend/routes.js';
import { performanceRoutes } from '../performance/routes.js';
import { signInRoutes, userRoutes } from '../users/routes.js';
import { webhookEndpointRoutes } from '../webhooks/endpoint-routes.js';
import { apiKeyRoutes, tenantRoutes } from '../tenants/routes.js';
import { reportingCurrencyRoutes } from '../money/routes.js';
import { reportRoutes } from '../reports/routes.js';
import { exportRoutes } from '../exports/routes.js';
import { erasureRoutes } from '../erasure/routes.js';
import { retentionRoutes } from '../retention/routes.js';
import { collectRoutes } from '../collect/routes.js';
import { publishableKeyRoutes } from '../collect/key-routes.js';
import { sdkRoutes } from '../collect/sdk.js';
import { CollectCounter } from '../collect/counts.js';
import { identityRoutes } from '../identity/routes.js';

/**
 * Every route of the HTTP API, registered in one place.
 * - API_ROUTES are mounted under /api/v1 behind Bearer API-key authentication; their handlers
 *   read the tenant from `request.tenantId` and touch data only inside `request.inTenant(…)`.
 * - PUBLIC_ROUTES authenticate themselves (webhooks verify a provider signature) or are public
 *   (health); they are mounted at the root, so give their paths in full.
 * To add a capability: write `src/<area>/routes.ts` exporting a FastifyPluginAsync with TypeBox
 * schemas (tags + summary: they become the OpenAPI document), and add it to a list below.
 */
export const API_ROUTES: FastifyPluginAsync[] = [
  tenantRoutes,
  ingestionRoutes,
  ledgerRoutes,
  reconciliationRoutes,
  deadEventRoutes,
  attributionRoutes,
  userRoutes,
  webhookEndpointRoutes,
  apiKeyRoutes,
  reportingCurrencyRoutes,
  reportRoutes,
  exportRoutes,
  erasureRoutes,
  channelRoutes,
  retentionRoutes,
  publishableKeyRoutes,
  identityRoutes,
  spendRoutes,
  performanceRoutes,
];

/** collectRoutes authenticates with a publishable key (its own hook), sdkRoutes serve the tracker. */
export const PUBLIC_ROUTES: FastifyPluginAsync[] = [metaRoutes, webhookRoutes, metricsRoutes, collectRoutes, sdkRoutes];

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  // Routes under /api/v1 (their OpenAPI entries list the API's problems), and those of them behind authentication.
  const apiRoutes = new Set<string>();
  const authenticated = new Set<string>();
  await app.register(swagger, {
    transform: ({ schema, url, route }) => {
      const key = `${[route.method].flat().join()} ${url}`;
      if (!schema || (schema as { hide?: boolean }).hide) return { schema, url };
      const documented = documentRoute(schema as Parameters<typeof documentRoute>[0], { method: route.method, url, problems: route.config?.problems }, {
        kind: apiRoutes.has(key) ? 'api' : route.config?.browserRoute ? 'browser' : 'public',
        authenticated: authenticated.has(key),
      });
      return { schema: documented, url };
    },
    openapi: {
      openapi: '3.1.0',
      // Relative: the document describes the server that serves it, wherever it is.
      servers: [{ url: '/', description: 'this Skeldir server' }],
      info: {
        title: 'Skeldir API',
        version: '1',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        description: 'Multi-tenant marketing attribution and revenue ledger. Errors are RFC 9457 application/problem+json.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'A tenant API key (skd_…)' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'SKELDIR_METRICS_TOKEN, for GET /metrics (unless SKELDIR_METRICS_PUBLIC=1)' },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'skeldir_session',
            description: 'A signed-in user of the web app (POST /api/v1/auth/login); state-changing requests also need X-CSRF-Token',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // The collect endpoint counts what it does; the key routes read the counts.
  const counter = new CollectCounter(app.appPool, 10_000, (error) => app.log.warn({ err: error }, 'collect counts not written'));
  app.decorate('collectCounter', counter);
  // preClose: before the pool is ended (onClose).
  app.addHook('preClose', () => counter.close());

  for (const plugin of PUBLIC_ROUTES) await app.register(plugin);
  // Sign-in has no credentials yet: under /api/v1 but outside the authenticated scope; its
  // OpenAPI entries list its problems like the API routes'.
  await app.register(
    async (auth) => {
      auth.addHook('onRoute', (route) => void apiRoutes.add(`${[route.method].flat().join()} ${route.url}`));
      await auth.register(signInRoutes);
    },
    { prefix: '/api/v1' },
  );
  await app.register(
    async (api) => {
      api.addHook('onRequest', authenticate);
      api.addHook('onRoute', (route) => {
        apiRoutes.add(`${[route.method].flat().join()} ${route.url}`);
        authenticated.add(`${[route.method].flat().join()} ${route.url}`);
      });
      await registerRateLimit(api, app.skeldir.rateLimit);
      for (const plugin of API_ROUTES) await api.register(plugin);
    },
    { prefix: '/api/v1' },
  );
}
