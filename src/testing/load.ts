import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type pg from 'pg';
import { spawnCli } from './cli.js';

/**
 * Test helpers for outage tests: a real `skeldir serve` / `skeldir start` process, and a load of
 * single-event requests whose every answer is recorded (status, Retry-After, or the transport
 * error when the connection was dropped), so a test can count what was acknowledged.
 */

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Base URL of its API (from its "listening on" line). */
  readonly baseUrl: string;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process has not exited. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `skeldir <args>` (which must start the API, e.g. `serve` or `start`) on a free port and
 * waits until it says where it listens.
 */
export async function spawnService(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<ServiceProcess> {
  const child = spawnCli(args, { env: { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SKELDIR_RATE_LIMIT_PER_MINUTE: '0', ...env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve((exit = { code, signal }))),
  );
  const deadline = Date.now() + timeoutMs;
  let baseUrl: string | undefined;
  while (!baseUrl) {
    const m = /listening on (http:\/\/[^\s"]+)/.exec(out + err);
    if (m) baseUrl = m[1]!.replace('0.0.0.0', '127.0.0.1');
    else if (exit) throw new Error(`skeldir ${args.join(' ')} exited (${JSON.stringify(exit)}) before listening:\n${out}\n${err}`);
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`skeldir ${args.join(' ')} did not listen within ${timeoutMs} ms:\n${out}\n${err}`);
    } else await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    baseUrl,
    stdout: () => out,
    stderr: () => err,
    exited,
    alive: () => exit === undefined,
    stop: async (graceMs = 30_000) => {
      if (exit) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

export interface Answer {
  /** The event's session id (unique per event: the row can be found by it). */
  session: string;
  idempotencyKey: string;
  status: number | null;
  retryAfter: string | null;
  contentType: string | null;
  code: string | null;
  /** The transport error when no HTTP answer came (a dropped connection). */
  error: string | null;
}

/**
 * `concurrency` loops, each sending single touchpoints (a fresh key and session each) to
 * POST /api/v1/events until `stop()`; every answer is recorded.
 */
export function eventLoad(baseUrl: string, apiKey: string, concurrency = 8): { answers: Answer[]; stop(): Promise<Answer[]> } {
  const answers: Answer[] = [];
  let stopping = false;
  const one = async (): Promise<void> => {
    const session = randomUUID();
    const idempotencyKey = `outage-${session}`;
    const answer: Answer = { session, idempotencyKey, status: null, retryAfter: null, contentType: null, code: null, error: null };
    try {
      const res = await fetch(`${baseUrl}/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify({ event_type: 'touchpoint', event_timestamp: '2026-10-01T12:00:00Z', session_id: session, channel: 'email' }),
        signal: AbortSignal.timeout(60_000),
      });
      answer.status = res.status;
      answer.retryAfter = res.headers.get('retry-after');
      answer.contentType = res.headers.get('content-type');
      const text = await res.text();
      if (res.status >= 400) answer.code = (JSON.parse(text) as { code?: string }).code ?? null;
    } catch (error) {
      answer.error = String((error as Error).cause ?? error);
    }
    answers.push(answer);
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopping) await one();
  });
  return {
    answers,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return answers;
    },
  };
}

/** Sends the answers that were not 2xx again (same key and body) until each is acknowledged. */
export async function resendUntilAcknowledged(baseUrl: string, apiKey: string, answers: Answer[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const a of answers) {
    if (a.status !== null && a.status < 300) continue;
    for (;;) {
      const res = await fetch(`${baseUrl}/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': a.idempotencyKey },
        body: JSON.stringify({ event_type: 'touchpoint', event_timestamp: '2026-10-01T12:00:00Z', session_id: a.session, channel: 'email' }),
      }).catch(() => undefined);
      await res?.text();
      if (res && res.status < 300) {
        a.status = res.status;
        break;
      }
      if (Date.now() > deadline) throw new Error(`event ${a.idempotencyKey} still not acknowledged: ${res?.status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Waits until GET `url` answers `status`. */
export async function waitForStatus(url: string, status: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url).catch(() => undefined);
    await res?.text();
    if (res?.status === status) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${res?.status})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Checks what the clients were told against what the database holds: each 2xx is exactly one row. */
export async function assertAcknowledgedExactlyOnce(q: Pick<pg.Client, 'query'>, answers: Answer[]): Promise<void> {
  const rows = (await q.query<{ session_id: string; n: number }>(
    `SELECT session_id::text, count(*)::int AS n FROM attribution_events WHERE session_id = ANY($1::uuid[]) GROUP BY 1`,
    [answers.map((a) => a.session)],
  )).rows;
  const stored = new Map(rows.map((r) => [r.session_id, r.n]));
  const acknowledged = answers.filter((a) => a.status !== null && a.status < 300);
  const missing = acknowledged.filter((a) => stored.get(a.session) !== 1);
  assert.deepEqual(missing.map((a) => [a.idempotencyKey, stored.get(a.session) ?? 0]), [], 'every acknowledged event is exactly one row');
  for (const r of rows) assert.equal(r.n, 1, 'no event stored twice');
}

