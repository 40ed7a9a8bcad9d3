import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BIN, ROOT } from '../testing/cli.js';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { startupBackoffMs } from './run.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('head');
});
after(async () => {
  await db?.drop();
});

/** Runs `skeldir <args> | true` in bash: the reader has gone before the first write. */
function intoClosedPipe(args: string, env: NodeJS.ProcessEnv): Promise<{ status: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `"${process.execPath}" "${BIN}" ${args} | true; echo "\${PIPESTATUS[0]}"`], {
      cwd: ROOT,
      env: { ...process.env, SKELDIR_FROM_SOURCE: '1', ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', () => resolve({ status: out.trim(), stderr: err }));
  });
}

describe('a closed output', () => {
  test('`skeldir … | true` (the reader gone, EPIPE) is a normal exit: status 0, no stack trace', async () => {
    for (const args of ['migrate history', 'tenant list --json', 'worker --status --json']) {
      const r = await intoClosedPipe(args, { DATABASE_URL: db.url });
      assert.equal(r.status, '0', `${args}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /EPIPE|Error|\n\s+at /, args);
    }
  });
});

/**
 * A TCP port where PostgreSQL "comes up" when the test says so: until then nothing listens
 * (connections are refused), then connections are forwarded to the test server.
 */
async function lateDatabase(target: URL): Promise<{ url: string; open(): Promise<void>; close(): Promise<void> }> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const url = new URL(target);
  url.port = String(port);
  return {
    url: url.toString(),
    open: () =>
      new Promise<void>((resolve) => {
        server = createServer((client) => {
          const upstream = createConnection(Number(target.port), target.hostname);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('error', () => {});
            s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
          }
          client.pipe(upstream).pipe(client);
        });
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    },
  };
}

describe('started while the database is down', () => {
  test('the backoff: 0.5 s doubling to 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 20].map(startupBackoffMs), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  for (const command of ['serve', 'worker'] as const) {
    test(`skeldir ${command} waits, logging each attempt, and starts once PostgreSQL is there`, async () => {
      const late = await lateDatabase(new URL(db.url));
      const proc = spawnServiceLater(command, late.url);
      try {
        await waitUntil(() => (proc.logs().match(/cannot reach PostgreSQL \(attempt \d+\)/g) ?? []).length >= 3, 30_000, proc.logs);
        assert.equal(proc.exitCode(), null, 'still running, waiting');
        const attempts = proc
          .logs()
          .split('\n')
          .filter((l) => l.includes('cannot reach PostgreSQL'))
          .map((l) => JSON.parse(l) as { level: number; attempt: number; retry_in_ms: number; err: string });
        assert.deepEqual(attempts.slice(0, 3).map((a) => [a.attempt, a.retry_in_ms]), [[1, 500], [2, 1000], [3, 2000]]);
        assert.ok(attempts.every((a) => a.level === 40 && /ECONNREFUSED|connect/i.test(a.err)), 'warnings naming the cause');
        await late.open();
        const ready = command === 'serve' ? /listening on http/ : /worker started/;
        await waitUntil(() => ready.test(proc.logs()), 60_000, proc.logs);
      } finally {
        proc.child.kill('SIGTERM');
        assert.equal(await proc.closed, 0, proc.logs());
        await late.close();
      }
    });
  }

  test('SIGTERM while waiting stops it at once, exit 0', async () => {
    const late = await lateDatabase(new URL(db.url));
    const proc = spawnServiceLater('serve', late.url);
    await waitUntil(() => /cannot reach PostgreSQL \(attempt 2\)/.test(proc.logs()), 30_000, proc.logs);
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    assert.equal(await proc.closed, 0, proc.logs());
    assert.ok(Date.now() - t0 < 5_000, 'it did not sit out its backoff');
    assert.match(proc.logs(), /stopped by SIGTERM while waiting for PostgreSQL/);
  });
});

function spawnServiceLater(command: 'serve' | 'worker', url: string) {
  const child = spawn(process.execPath, [BIN, command], {
    cwd: ROOT,
    env: { ...process.env, SKELDIR_FROM_SOURCE: '1', DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
  });
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, logs: () => logs, closed, exitCode: () => child.exitCode };
}

async function waitUntil(check: () => boolean, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out; output so far:\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
