import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { ErrorObject } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type pg from 'pg';
import type { Config, HttpLimits } from '../config.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant-context.js';
import { isConnectionError } from '../db/errors.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { DomainError } from '../errors.js';
import { ApiKeyAuthenticator } from '../tenants/authenticator.js';
import { RuleSetCache } from '../channels/cache.js';
import { looksLikePublishableKey } from '../collect/keys.js';
import { UserError } from '../users/errors.js';
import { atLeast } from '../users/roles.js';
import { SESSION_COOKIE } from '../users/routes.js';
import { csrfMatches, csrfTokenFor } from '../users/tokens.js';
import { resolveSession, type SessionPrincipal } from '../users/users.js';
import cookie from '@fastify/cookie';
import type { RateLimitOptions } from './rate-limit.js';
import { allowedMethods, answerExpectations, capConnectionsPerAddress, clientErrorHandler, serverOptions } from './edge.js';
import { parseJsonBody } from './json-body.js';
import { HttpProblem, sendProblem } from './problems.js';
import { registerRoutes } from './routes.js';
import { isAppPage, registerWeb } from './web.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated tenant (API routes only; from the API key alone, never the body). */
    tenantId: string;
    /** Runs `fn` in a transaction with this request's tenant context set (row-level security isolates). */
    inTenant<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
    /** Who authenticated (API routes only): the tenant's API key, or a signed-in user's session. */
    principal: Principal;
    /** The session's CSRF token (session requests only). */
    csrfToken: string | undefined;
    /** Who a change is recorded as (remediation notes): `api`, or the signed-in user's e-mail. */
    actor: string;
  }
  interface FastifyInstance {
    /** The application-role pool (row-level security always applies). */
    appPool: pg.Pool;
    skeldir: { db: Database; config: Config; rateLimit: RateLimitOptions; collectRateLimit: CollectRateLimit; readyTimeoutMs: number };
    /** Resolves API keys to tenants (successes cached briefly; see src/tenants/authenticator.ts). */
    authenticator: ApiKeyAuthenticator;
    /** Each tenant's compiled channel rules (src/channels/cache.ts); the channel routes invalidate it. */
    channelRules: RuleSetCache;
    /** Every route registered, for tests that must cover them all (the isolation matrix). */
    routeList: RouteRecord[];
    /** This process's Prometheus metrics (src/metrics/metrics.ts), served by GET /metrics. */
    metrics: Metrics;
  }
}

export type App = FastifyInstance;

/** An API key acts for the whole tenant (as an owner); a session as its user, with the user's role. */
export type Principal = { kind: 'api_key'; tenantId: string } | SessionPrincipal;

/** A registered route: method, full URL pattern and its schema. */
export interface RouteRecord {
  method: string;
  url: string;
  schema?: unknown;
}

export interface AppOptions {
  db: Database;
  config: Config;
  /** pino options or false; defaults to JSON logs at `info` with credentials redacted. */
  logger?: boolean | Record<string, unknown>;
  /** Largest accepted request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Size of the application-role pool (default 20). */
  poolSize?: number;
  /** How long a successful key lookup is remembered (default 5 s; 0 disables), and the clock it uses. */
  authCacheTtlMs?: number;
  clock?: () => number;
  /** Per-tenant rate limit; default `config.rateLimitPerMinute` per minute (0 = none). */
  rateLimit?: RateLimitOptions;
  /** How long `/ready` waits for the database (to connect, then to answer) before it says 503 (default 2 s). */
  readyTimeoutMs?: number;
  /** Limits of POST /api/v1/collect; default from `config` (0 = none). */
  collectRateLimit?: CollectRateLimit;
  /** Timeouts and the per-address connection cap; default `config.http` (SKELDIR_HTTP_*). */
  http?: Partial<HttpLimits>;
  /** The built web app (default dist/web, see src/http/web.ts). */
  webRoot?: string;
}

/**
 * Longest path parameter, as sent (percent-encoded): a person's user_id (`DELETE /api/v1/people/{user_id}`) may be
 * 255 characters, each up to 4 UTF-8 bytes of 3 characters encoded. Fastify's default is 100.
 */
export const MAX_PARAM_LENGTH = 3_072;
/** Requests per minute (per API process) of the collect endpoint, per publishable key and per client address; 0 = unlimited. */
export interface CollectRateLimit {
  perKey: number;
  perAddress: number;
  timeWindowMs?: number;
}

/** Default bound of the `/ready` probe: orchestrators' probes time out after 1–10 s. */
export const READY_TIMEOUT_MS = 2_000;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Log redaction: credentials never reach the logs (src/http/hardening.test.ts proves it). The
 * per-request line does not go through it: serializeRequest censors the credential headers itself.
 */
export const REDACT = [
  'req.headers.authorization',
  'req.headers["idempotency-key"]',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  '*.api_key',
  '*.secret',
  '*.password',
];

/**
 * The canonical textual form of a UUID, in either case. ajv-formats' `uuid` also accepts a
 * `urn:uuid:` prefix, which PostgreSQL's uuid type does not: such an id reached the database
 * and came back as a 500. Every validator uses this one.
 */
export const UUID_FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const AJV_OPTIONS = { allErrors: true, removeAdditional: false, useDefaults: true, strict: false } as const;

function withFormats(ajv: Ajv): Ajv {
  addFormats.default(ajv);
  ajv.addFormat('uuid', UUID_FORMAT);
  return ajv;
}

/**
 * A validator for request bodies: never coerces or strips (`"5"` is not a number and an
 * unknown field is an error, not silently dropped). Routes that validate parts of a body
 * themselves (batch items) use this too, so every body is judged by the same rules.
 */
export function bodyAjv(): Ajv {
  return withFormats(new Ajv({ ...AJV_OPTIONS, coerceTypes: false }));
}

/** Query strings and path parameters are strings on the wire: their validator coerces (`?limit=10` → 10). */
function paramsAjv(): Ajv {
  return withFormats(new Ajv({ ...AJV_OPTIONS, coerceTypes: true }));
}

export async function buildApp(options: AppOptions): Promise<App> {
  const logger =
    options.logger === false
      ? false
      : {
          level: process.env.LOG_LEVEL || 'info',
          redact: { paths: REDACT, censor: '[redacted]' },
          serializers: { req: serializeRequest },
          ...(typeof options.logger === 'object' ? options.logger : {}),
        };
  const limits: HttpLimits = { ...options.config.http, ...options.http };
  const lines = new OneLinePerRequest();
  const app = Fastify({
    logger,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    logController: lines,
    // Errors the router raises before any route or hook runs (a malformed percent-escape, an
    // over-long path parameter) are problems like any other, not Fastify's own JSON.
    frameworkErrors: (error, request, reply) => {
      const problem = frameworkProblem(error);
      if (!(problem instanceof HttpProblem)) request.log.error({ err: error }, 'router error');
      // No route, so no onSend hook: echo the request id here.
      return sendProblem(request, reply.header('x-request-id', String(request.id)), problem);
    },
    return503OnClosing: true,
    forceCloseConnections: true,
    // A number of hops is accepted at run time (proxy-addr) though the option's type leaves it out.
    trustProxy: options.config.trustProxy as boolean | string,
    // Below the router (src/http/edge.ts): timeouts against slowloris, parser errors as problems.
    http: serverOptions(limits),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();
  lines.completed = app.log.child({}, { redact: [] });
  answerExpectations(app.server);
  capConnectionsPerAddress(app.server, limits.maxConnectionsPerAddress, app.log);

  const body = bodyAjv();
  const params = paramsAjv();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : params).compile(schema));

  const appPool = options.db.appPool({ max: options.poolSize ?? 20, applicationName: 'skeldir-api' });
  app.decorate('appPool', appPool);
  const rateLimit = options.rateLimit ?? { max: options.config.rateLimitPerMinute, timeWindowMs: 60_000 };
  const collectRateLimit = options.collectRateLimit ?? { perKey: options.config.collectKeyRatePerMinute, perAddress: options.config.collectAddressRatePerMinute };
  app.decorate('skeldir', { db: options.db, config: options.config, rateLimit, collectRateLimit, readyTimeoutMs: options.readyTimeoutMs ?? READY_TIMEOUT_MS });
  app.decorate('authenticator', new ApiKeyAuthenticator(appPool, { ttlMs: options.authCacheTtlMs, now: options.clock }));
  app.decorate('channelRules', new RuleSetCache(appPool));
  const routeList: RouteRecord[] = [];
  app.decorate('routeList', routeList);
  const metrics = createMetrics();
  app.decorate('metrics', metrics);
  // Every response, by route pattern (not the raw URL: bounded label values) and status.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode }, reply.elapsedTime / 1000);
    done();
  });
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routeList.push({ method, url: route.url, schema: route.schema });
  });
  app.decorateRequest('tenantId', '');
  app.decorateRequest('principal', null as never);
  app.decorateRequest('csrfToken', undefined);
  app.decorateRequest('actor', '');
  await app.register(cookie);
  app.decorateRequest('inTenant', function <T>(this: FastifyRequest, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (!this.tenantId) throw new Error('inTenant called on an unauthenticated request');
    return withTenant(appPool, this.tenantId, fn);
  });
  app.addHook('onClose', async () => {
    await appPool.end();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw: Buffer | string, done) => {
    try {
      // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be misread, so it is refused.
      const charset = charsetOf(req.headers['content-type']);
      if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
        throw unsupportedMediaType(req.headers['content-type'], 'JSON bodies are UTF-8: send application/json or application/json; charset=utf-8');
      }
      done(null, parseJsonBody(Buffer.isBuffer(raw) ? raw : Buffer.from(raw)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', String(request.id));
  });
  // No value a client sends may hold a NUL character: PostgreSQL cannot store one in text
  // (SQLSTATE 22021) and no identifier has one. Checked here, for every route, before
  // authentication and so before any query (`GET /api/v1/revenue/transactions/ch_1%00` was a 500).
  app.addHook('onRequest', async (request) => {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node's own answer is an empty one).
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new HttpProblem('malformed_request', 'an HTTP/1.1 request must carry a Host header', { field: 'headers/host' });
    }
    const field = nulField(request.params, 'params') ?? nulField(request.query, 'querystring');
    if (field) throw new HttpProblem('validation_failed', `${field} contains a NUL character (U+0000), which no value may hold`, { field });
    bareDatesAsMidnight(request.query);
  });

  await registerWeb(app, options.webRoot);
  // A known path asked with a method it does not have: 405 with Allow (RFC 9110 §15.5.6), not a 404.
  let allowed: ((path: string) => string[]) | undefined;
  app.setNotFoundHandler((request, reply) => {
    if (isAppPage(request)) return app.webIndex(request, reply);
    const path = request.url.split('?')[0]!;
    allowed ??= allowedMethods(routeList);
    const methods = allowed(path);
    // A route of this method that found nothing itself (a missing static asset) is a 404, not a 405.
    if (methods.length > 0 && !methods.includes(request.method)) {
      return sendProblem(request, reply.header('allow', methods.join(', ')), new HttpProblem('method_not_allowed', `${path} does not allow ${request.method}; it allows ${methods.join(', ')}`));
    }
    return sendProblem(request, reply, new HttpProblem('route_not_found', `no route ${request.method} ${path}`));
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapped = toDomainError(error, request);
    if (mapped.code === 'internal') request.log.error({ err: error }, 'unhandled error');
    else if (mapped.code === 'database_unavailable') request.log.warn({ err: error }, 'database unavailable');
    else if (mapped.code === 'request_aborted') request.log.info({ err: error }, 'the client closed the connection before its request body was complete');
    return sendProblem(request, reply, mapped.code === 'internal' ? error : mapped);
  });

  await registerRoutes(app);
  return app;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Authentication for API routes. `Authorization: Bearer <api key>` (machines): the tenant comes
 * from the key alone, exactly as before sessions existed. Without that header, the session
 * cookie of a signed-in user: the tenant is the session's, every state-changing request must
 * carry the session's CSRF token (X-CSRF-Token), and the route's `access` role is enforced.
 * Either way the request then runs in the same tenant context, under the same row-level security.
 */
export async function authenticate(request: FastifyRequest): Promise<void> {
  const header = request.headers.authorization;
  const sessionToken = request.cookies?.[SESSION_COOKIE];
  if (header === undefined && sessionToken !== undefined) return authenticateSession(request, sessionToken);
  // The scheme is case-insensitive (RFC 9110 §11.1): bearer, BEARER … are Bearer.
  const match = typeof header === 'string' ? /^Bearer ([^\s]+)$/i.exec(header) : null;
  if (match && looksLikePublishableKey(match[1]!)) {
    // A browser key on a server route: said plainly (its shape is public; nothing is looked up).
    throw new HttpProblem('unauthorized', 'a publishable key (pk_…) only sends browser events to POST /api/v1/collect; this route needs a secret API key (skd_…)');
  }
  const tenantId = match ? await request.server.authenticator.authenticate(match[1]!) : null;
  if (!tenantId) {
    // One answer for every cause (missing, malformed, unknown, revoked, expired): nothing to learn from it.
    throw new HttpProblem('unauthorized', 'a valid API key is required: Authorization: Bearer <key>');
  }
  request.tenantId = tenantId;
  request.principal = { kind: 'api_key', tenantId };
  request.actor = 'api';
}

async function authenticateSession(request: FastifyRequest, token: string): Promise<void> {
  const principal = await resolveSession(request.server.appPool, token, request.server.skeldir.config.web);
  if (!principal) throw new HttpProblem('unauthorized', 'your session has ended or is not valid: sign in again');
  if (!SAFE_METHODS.has(request.method) && !csrfMatches(token, firstHeader(request.headers['x-csrf-token']))) {
    throw new UserError('csrf_failed', 'this request needs the X-CSRF-Token header of your session (GET /api/v1/auth/session gives it)');
  }
  const needed = request.routeOptions.config?.access ?? (SAFE_METHODS.has(request.method) ? 'viewer' : 'admin');
  if (!atLeast(principal.role, needed)) {
    throw new UserError('forbidden', `your role (${principal.role}) cannot do this: it needs ${needed}${needed === 'owner' ? '' : ' or owner'}`);
  }
  request.tenantId = principal.tenantId;
  request.principal = principal;
  request.csrfToken = csrfTokenFor(token);
  request.actor = principal.email;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * One rule for `from` / `to`, on every route and on the command line (src/db/timestamps.ts
 * `readInstant`): an RFC 3339 date-time with its offset, or a date, meaning its midnight UTC.
 * A bare date is written out here, before validation, so every route takes both forms.
 */
function bareDatesAsMidnight(query: unknown): void {
  if (!query || typeof query !== 'object') return;
  const q = query as Record<string, unknown>;
  for (const name of ['from', 'to']) {
    const value = q[name];
    if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) q[name] = `${value}T00:00:00Z`;
  }
}

/** The first path parameter or query value (decoded) holding U+0000, as `params/<name>`; undefined when none does. */
function nulField(values: unknown, part: string): string | undefined {
  if (!values || typeof values !== 'object') return undefined;
  for (const [name, value] of Object.entries(values)) {
    const all: unknown[] = Array.isArray(value) ? value : [value];
    if (name.includes('\u0000') || all.some((v) => typeof v === 'string' && v.includes('\u0000'))) return `${part}/${name.replace(/\u0000/g, '\\u0000')}`;
  }
  return undefined;
}

/** The charset parameter of a Content-Type header, unquoted; undefined when there is none. */
function charsetOf(contentType: string | undefined): string | undefined {
  const match = contentType === undefined ? null : /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : undefined;
}

/** A 415 naming the content type that was sent (Fastify's own message does not). */
function unsupportedMediaType(sent: string | undefined, hint: string): HttpProblem {
  const what = sent === undefined ? 'a body without a Content-Type header' : `content type ${JSON.stringify(sent.slice(0, 200))}`;
  return new HttpProblem('unsupported_media_type', `${what} is not supported; ${hint}`, { field: 'headers/content-type' });
}

/** What the router's own errors mean to a client: the URL is not one Skeldir can read. */
function frameworkProblem(error: FastifyError): HttpProblem | FastifyError {
  switch (error.code) {
    case 'FST_ERR_BAD_URL':
      return new HttpProblem('validation_failed', 'the URL is not valid: a percent-escape is malformed or does not encode UTF-8', { field: 'url' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HttpProblem('validation_failed', `a path parameter of the URL is longer than ${MAX_PARAM_LENGTH} characters`, { field: 'url' });
  }
  return error;
}

/** Turns framework and driver errors into domain errors with registered codes. */
function toDomainError(error: FastifyError, request: FastifyRequest): DomainError | { code: 'internal' } {
  if (error instanceof DomainError) return error;
  if (error.validation) return validationProblem(error.validation as ErrorObject[], error.validationContext ?? 'body');
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedMediaType(request.headers['content-type'], 'send application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpProblem('payload_too_large', 'the request body exceeds the size limit', { field: 'body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpProblem('empty_body', 'the request body is empty; send a JSON document', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpProblem('validation_failed', 'the Content-Length header does not match the body', { field: 'headers/content-length' });
  }
  // The request stream failing is the client's doing (it hung up mid-upload: ECONNRESET
  // "aborted"), not the database's, though both are socket errors.
  if (request.raw.aborted || (error.code === 'ECONNRESET' && error.message === 'aborted')) {
    return new HttpProblem('request_aborted', 'the client closed the connection before sending the whole body');
  }
  if (isConnectionError(error)) return new HttpProblem('database_unavailable', 'the database is unavailable; retry later');
  const status = error.statusCode ?? 500;
  if (status === 429) return new HttpProblem('rate_limited', error.message);
  if (status === 404) return new HttpProblem('not_found', 'not found');
  if (status === 405) return new HttpProblem('method_not_allowed', error.message);
  if (status >= 400 && status < 500) return new HttpProblem('validation_failed', error.message);
  return { code: 'internal' };
}

/**
 * A 400 `validation_failed` problem from validator errors: `field` is a JSON pointer prefixed
 * with the part of the request (`body/events/3/currency`, `params/id`); `errors` lists them all.
 */
export function validationProblem(validation: Pick<ErrorObject, 'instancePath' | 'params' | 'message'>[], part: string): HttpProblem {
  const errors = validation.map((v) => {
    const params = v.params as Record<string, unknown>;
    const extra = (params.missingProperty ?? params.additionalProperty) as string | undefined;
    const field = `${part}${v.instancePath}${extra ? `/${extra}` : ''}`;
    const message = params.additionalProperty
      ? `unknown field ${JSON.stringify(params.additionalProperty)} is not allowed`
      : params.missingProperty
        ? `required field ${JSON.stringify(params.missingProperty)} is missing`
        : `${field} ${v.message ?? 'is invalid'}`;
    return { field, message };
  });
  if (errors.length === 0) return new HttpProblem('validation_failed', `${part} is not valid`, { field: part });
  return new HttpProblem('validation_failed', errors[0]!.message, { field: errors[0]!.field, details: { errors } });
}

/**
 * One log line per request, when it completes, with the request (serializeRequest: credentials
 * censored), the status and the time, instead of Fastify's two ("incoming request" + "request
 * completed"). Fastify's other log lines (errors, 404s) stay as they are.
 */
class OneLinePerRequest extends LogController {
  /**
   * The logger of the success line: the app's, without pino's redaction, because that line holds
   * only the request (serializeRequest censors it), the status and the time. Redaction cloned and
   * walked every line's objects: in a profile of bench/ingestion.bench.ts (single events, 5,000
   * requests, load ~8) the line cost 84 µs per request, 52 of them redaction. Error lines keep it.
   */
  completed: FastifyBaseLogger | undefined;
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else if (this.completed) this.completed.info({ reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** Request headers that carry credentials (or, for Idempotency-Key, may): logged as `[redacted]`. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-csrf-token', 'idempotency-key']);

/**
 * What a request log line says about the request: method, path (no query string), client
 * address and headers, the credential headers censored here (not by pino's redaction, see
 * OneLinePerRequest).
 */
function serializeRequest(request: FastifyRequest) {
  const headers: Record<string, unknown> = {};
  for (const name in request.headers) headers[name] = CREDENTIAL_HEADERS.has(name) ? '[redacted]' : request.headers[name];
  return {
    method: request.method,
    url: request.url.split('?')[0],
    remoteAddress: request.ip,
    headers,
  };
}
