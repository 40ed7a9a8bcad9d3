import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { HttpLimits } from '../config.js';
import { HttpProblem, problemFor, type ProblemCode } from './problems.js';

/**
 * The edge of the HTTP server, below Fastify: what Node's HTTP parser refuses, timeouts, and
 * connections. Everything answered here is an `application/problem+json` with a stable code,
 * like the rest of the API, never Node's empty 400 or Fastify's `application/json`.
 */

/**
 * How often Node checks the headers and request timeouts (its default, 30 s, lets a stalled
 * connection live up to 30 s past its deadline). Checking walks the open connections: at 1 s it
 * costs nothing measurable.
 */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/** Options for `http.createServer` (through Fastify's `http` option). */
export function serverOptions(limits: HttpLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    // A request without Host is answered by the app (a problem), not by Node's empty 400.
    requireHostHeader: false,
  };
}

/** One raw HTTP/1.1 response carrying a problem, for a socket Fastify never saw a request on. */
export function rawProblem(code: ProblemCode, detail: string, options: { field?: string; headers?: Record<string, string> } = {}): string {
  const { status, body, retryAfterSeconds } = problemFor(new HttpProblem(code, detail, options.field ? { field: options.field } : {}));
  const json = JSON.stringify({ ...body, request_id: randomUUID() });
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    connection: 'close',
    ...(retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {}),
    ...options.headers,
  };
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${json}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
};

/** What a parser error means, as a problem: its code, and the field when one header is to blame. */
export function clientProblem(error: NodeJS.ErrnoException & { reason?: string }): { code: ProblemCode; detail: string; field?: string } {
  const reason = (error.reason ?? error.message).replace(/\s+/g, ' ').slice(0, 200);
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'request_timeout', detail: 'the request (its headers, or headers and body) did not arrive in time' };
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'headers_too_large', detail: 'the request headers exceed the server limit (16 KiB)' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { code: 'malformed_request', detail: `the request is not valid HTTP/1.1: ${reason}`, field: 'headers/content-length' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { code: 'malformed_request', detail: `the request is not valid HTTP/1.1: ${reason}`, field: 'headers/transfer-encoding' };
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_URL':
    case 'HPE_INVALID_VERSION':
      return { code: 'malformed_request', detail: `the request line is not valid HTTP/1.1: ${reason}`, field: 'request-line' };
    case 'HPE_INVALID_HEADER_TOKEN':
      return { code: 'malformed_request', detail: `a request header is not valid HTTP/1.1: ${reason}`, field: 'headers' };
  }
  return { code: 'malformed_request', detail: `the request is not valid HTTP/1.1: ${reason}` };
}

/**
 * Fastify's `clientErrorHandler`: Node's parser refused the bytes (a malformed request line,
 * a bad header, duplicate Content-Length, headers over 16 KiB), or the request timed out. The
 * answer is a problem and the connection is closed (the rest of the stream cannot be trusted).
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  // A reset connection is gone: nothing to answer (nor worth a log line).
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const problem = clientProblem(error);
  this.log.info({ code: problem.code, err_code: error.code, reason: error.reason, remoteAddress: socket.remoteAddress }, 'client error below the router');
  if (socket.writable) socket.end(rawProblem(problem.code, problem.detail, { field: problem.field }));
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** `Expect:` other than `100-continue` (RFC 9110 §10.1.1): a 417 problem instead of Node's empty one. */
export function answerExpectations(server: Server): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const raw = rawProblem('expectation_failed', `the server does not support the expectation ${JSON.stringify(String(request.headers.expect).slice(0, 100))}; only 100-continue`, {
      field: 'headers/expect',
    });
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    const headers = Object.fromEntries(head.split('\r\n').slice(1).map((l) => l.split(': ') as [string, string]));
    response.writeHead(417, headers).end(body);
  });
}

/**
 * A cap on the open connections of one client address: one client opening hundreds of
 * connections (slowloris holds each with half a request) cannot take the server's sockets from
 * everyone else. A connection over the cap gets a 429 problem and is closed at once.
 */
export function capConnectionsPerAddress(server: Server, max: number, log: FastifyBaseLogger): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  let refused = 0;
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > max) {
      // Once per 1,000 refusals: a flood must not turn into a flood of log lines.
      if (refused++ % 1000 === 0) log.warn({ remoteAddress: address, max, refused }, 'connection refused: too many open connections from one address');
      socket.on('error', () => {});
      socket.end(
        rawProblem('too_many_connections', `this address already has ${max} open connections; reuse them (keep-alive) or close some`, {
          headers: { 'retry-after': '1' },
        }),
      );
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/**
 * A matcher of the registered routes by path, so a known path asked with another method gets a
 * 405 with `Allow` (RFC 9110 §15.5.6) instead of a 404. Patterns are find-my-way's: `:name`
 * matches one segment, `*` the rest.
 */
export function allowedMethods(routes: readonly { method: string; url: string }[]): (path: string) => string[] {
  const compiled = routes.map((r) => ({
    method: r.method,
    regex: new RegExp(
      '^' +
        r.url
          .split('/')
          .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/') +
        '$',
    ),
  }));
  return (path) => {
    const methods = new Set(compiled.filter((c) => c.regex.test(path)).map((c) => c.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
