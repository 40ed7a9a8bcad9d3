import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from './problems.js';

export interface RateLimitOptions {
  /** Requests per window per tenant; 0 disables the limit. */
  max: number;
  /** Window length in milliseconds (default one minute). */
  timeWindowMs?: number;
}

/**
 * Per-tenant rate limit for the API scope: a fixed window per tenant (in memory, per API
 * process), keyed by the authenticated tenant, so every key of a tenant (a rotated-out key in
 * its grace period and the new one) spends one budget. It runs at preParsing: after
 * authentication (onRequest), before the body is parsed and validated, so malformed and
 * invalid requests count too and an over-limit request is refused before its body is read.
 * Over the limit: 429 `rate_limited` with `Retry-After` (seconds until the window resets) and
 * the x-ratelimit-* headers. Unauthenticated requests never reach it: they are refused by the
 * authentication hook first, count against no one and see no budget.
 */
export async function registerRateLimit(api: FastifyInstance, options: RateLimitOptions): Promise<void> {
  if (options.max <= 0) return;
  await api.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    max: options.max,
    timeWindow: options.timeWindowMs ?? 60_000,
    keyGenerator: (request) => request.tenantId,
    // Other tenants and other processes are none of this client's business: no key in the body.
    errorResponseBuilder: (_request, context) =>
      new HttpProblem('rate_limited', `this API key's tenant made more than ${context.max} requests in the current window; retry in ${context.after}`),
  });
}
