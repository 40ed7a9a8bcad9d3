import { Type } from '@sinclair/typebox';
import { PROBLEMS, type ProblemCode } from './problems.js';
import type { Role } from '../users/roles.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Problem codes this route answers with beyond those every API route can give (see
     * `problemResponses`); listed in its OpenAPI responses. Documentation only.
     */
    problems?: ProblemCode[];
    /**
     * A route under /api/v1 that authenticates itself (the collect endpoint, with a publishable
     * key): documented with BROWSER_ROUTE's problems instead of EVERY_API_ROUTE's.
     */
    browserRoute?: boolean;
    /**
     * The weakest role a signed-in user needs for this route (src/users/roles.ts); default viewer
     * for GET and HEAD, admin for every state-changing method. API keys act as owner.
     */
    access?: Role;
  }
}

/** An RFC 9457 problem body as Skeldir renders it (src/http/problems.ts). */
export const ProblemBody = Type.Object(
  {
    type: Type.String({ description: '/problems/<code>: the problem type, documented at that path.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String({ description: 'What is wrong with this request, for a human.' }),
    code: Type.String({ description: 'The stable error code.' }),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    request_id: Type.Optional(Type.String()),
    field: Type.Optional(Type.String({ description: 'The input that is wrong: a JSON pointer such as body/events/3/currency, params/id, headers/content-type.' })),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { additionalProperties: true },
);

/** What any route can answer, from below the router (src/http/edge.ts). */
const EVERY_ROUTE: ProblemCode[] = ['malformed_request', 'request_timeout', 'too_many_connections', 'headers_too_large'];
/** What any authenticated API route can answer, whatever it does. */
const EVERY_API_ROUTE: ProblemCode[] = ['validation_failed', 'unauthorized', 'rate_limited', 'database_unavailable'];
/** What a route authenticating with a publishable key can answer (its own 401 is publishable_key_invalid). */
export const BROWSER_ROUTE: ProblemCode[] = ['validation_failed', 'publishable_key_invalid', 'origin_not_allowed', 'rate_limited', 'database_unavailable'];
/** …when it has path parameters. */
const WITH_PARAMS: ProblemCode[] = ['not_found'];
/** …when it takes a body (the strict JSON parser and the body limits, docs/http.md). */
const WITH_BODY: ProblemCode[] = [
  'malformed_json',
  'invalid_utf8',
  'empty_body',
  'forbidden_key',
  'too_deep',
  'nul_character',
  'invalid_unicode',
  'payload_too_large',
  'unsupported_media_type',
];

interface RouteSchema {
  body?: unknown;
  params?: unknown;
  response?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * The route's schema with its problem responses added, for the OpenAPI document only (the
 * route keeps its own schema, so serialisation is unchanged): each status its problem codes
 * can give, as `application/problem+json` with the codes listed in the description. A status
 * the route already documents is left as it is.
 */
export function withProblemResponses(schema: RouteSchema, url: string, extra: readonly ProblemCode[] = [], common: readonly ProblemCode[] = EVERY_API_ROUTE): RouteSchema {
  const codes = new Set<ProblemCode>([
    ...EVERY_ROUTE,
    ...common,
    // A public route finds nothing by its parameters (an unknown webhook endpoint is a 401).
    ...(common.length > 0 && (schema.params !== undefined || url.includes(':')) ? WITH_PARAMS : []),
    ...(schema.body !== undefined ? WITH_BODY : []),
    ...extra,
  ]);
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of codes) {
    const status = PROBLEMS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const response: Record<string, unknown> = { ...schema.response };
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    if (response[status] !== undefined) continue;
    response[status] = {
      description: list.map((code) => `${code}: ${PROBLEMS[code].title}`).join('; '),
      content: { 'application/problem+json': { schema: ProblemBody } },
    };
  }
  return { ...schema, response };
}

/** Security of the API routes: a tenant API key, or a signed-in user's session cookie (docs/http.md). */
export const API_SECURITY = [{ apiKey: [] }, { session: [] }];

/**
 * One route's entry in the OpenAPI document (the swagger `transform`; the route keeps its own
 * schema for validation and serialisation, this is a copy):
 * - an `operationId` (the route's own, else derived from method and path: `getEventsById`);
 * - `security` on every operation: the API routes' schemes, or the route's own, or `[]`;
 * - its problem responses (`withProblemResponses`), for public routes too (their own codes in
 *   `config.problems`: 401/413 on webhooks, 401 on /metrics, 503 on /ready);
 * - every `anyOf` of string constants as one `enum` (TypeBox writes a union of literals as
 *   `anyOf: [{const}…]`, of which Swagger UI offers only the first value).
 */
export function documentRoute(
  schema: RouteSchema,
  route: { method: string | string[]; url: string; problems?: readonly ProblemCode[] },
  kind: { kind: 'api' | 'browser' | 'public'; authenticated: boolean },
): RouteSchema {
  const method = [route.method].flat()[0]!;
  const common = kind.kind === 'api' ? EVERY_API_ROUTE : kind.kind === 'browser' ? BROWSER_ROUTE : [];
  const withProblems = withProblemResponses(schema, route.url, route.problems, common);
  return enumsOfConstants({
    ...withProblems,
    ...(withProblems.querystring ? { querystring: datesOrDateTimes(withProblems.querystring) } : {}),
    operationId: schema.operationId ?? operationId(method, route.url),
    security: kind.authenticated ? API_SECURITY : (schema.security ?? []),
  }) as RouteSchema;
}

/** `GET /api/v1/dead-events/:id/:action` → `getDeadEventsByIdByAction`. */
export function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/api\/v1\//, '/')
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `by-${part.slice(1)}` : part))
    .flatMap((part) => part.split(/[-_.]/))
    .filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

function enumsOfConstants(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(enumsOfConstants);
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const any = o.anyOf;
  if (Array.isArray(any) && any.length > 0 && any.every((x) => x && typeof x === 'object' && typeof (x as { const?: unknown }).const === 'string')) {
    const { anyOf: _, ...rest } = o;
    return { ...enumsOfConstantsOf(rest), type: 'string', enum: any.map((x) => (x as { const: string }).const) };
  }
  return enumsOfConstantsOf(o);
}

function enumsOfConstantsOf(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, enumsOfConstants(v)]));
}

/** `from` / `to` query parameters take a date too (its midnight UTC: `bareDatesAsMidnight` in src/http/app.ts). */
function datesOrDateTimes(querystring: unknown): unknown {
  const q = querystring as { properties?: Record<string, Record<string, unknown>> };
  if (!q?.properties) return querystring;
  const properties = { ...q.properties };
  for (const name of ['from', 'to']) {
    const p = properties[name];
    if (p?.format !== 'date-time') continue;
    const { format: _, ...rest } = p;
    properties[name] = {
      ...rest,
      anyOf: [{ format: 'date-time' }, { format: 'date' }],
      description: `${p.description ?? ''}${p.description ? '. ' : ''}An RFC 3339 date-time with offset, or a date (its midnight UTC).`,
    };
  }
  return { ...q, properties };
}
