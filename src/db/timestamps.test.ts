import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { createPool } from './pool.js';
import { compareInstants, formatInstant, Instant, INSTANT_TEXT, instantsReplacer, readInstant } from './timestamps.js';

let db: TestDatabase;
let pool: pg.Pool;
before(async () => {
  db = await createTestDatabase('empty');
  pool = createPool(db.url, { max: 1 });
});
after(async () => {
  await pool?.end();
  await db?.drop();
});

const MIN_US = BigInt(Date.parse('0001-01-01T00:00:00Z')) * 1000n;
const MAX_US = BigInt(Date.parse('9999-12-31T23:59:59.999Z')) * 1000n + 999n;
/** An instant in years 0001–9999 as microseconds since the epoch, printed as formatInstant prints it. */
const text = (us: bigint) => {
  const ms = us >= 0n ? us / 1000n : -((-us + 999n) / 1000n);
  return `${new Date(Number(ms)).toISOString().slice(0, -1)}${String(us - ms * 1000n).padStart(3, '0')}Z`;
};

test('a timestamptz read from PostgreSQL prints exactly what it holds, to the microsecond, in years 0001–9999', async () => {
  await fc.assert(
    fc.asyncProperty(fc.bigInt({ min: MIN_US, max: MAX_US }), async (us) => {
      const t = text(us);
      const { rows } = await pool.query<{ at: Date; back: string }>(
        `SELECT $1::timestamptz AS at, to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS back`,
        [t],
      );
      assert.equal(rows[0]!.back, t, 'PostgreSQL holds the text exactly');
      assert.ok(rows[0]!.at instanceof Instant);
      assert.equal(formatInstant(rows[0]!.at), t);
      assert.equal(JSON.stringify({ at: rows[0]!.at }), `{"at":"${t}"}`, 'toJSON prints the same');
      // Given back (as a `from`), it names that same instant.
      const again = readInstant('from', t);
      assert.ok(again instanceof Instant);
      assert.equal(formatInstant(again), t);
      assert.equal(compareInstants(again, rows[0]!.at), 0);
    }),
    { numRuns: 300 },
  );
});

test('formatInstant: one form for plain Dates too; readInstant keeps six digits and drops the rest; microseconds order instants', () => {
  assert.equal(formatInstant(new Date('2026-11-01T09:30:00Z')), '2026-11-01T09:30:00.000000Z');
  assert.match(formatInstant(new Date()), INSTANT_TEXT);
  assert.equal(formatInstant(readInstant('from', '2026-11-01T10:30:00.1234567+01:00') as Instant), '2026-11-01T09:30:00.123456Z');
  assert.equal(formatInstant(readInstant('from', '2026-11-01') as Instant), '2026-11-01T00:00:00.000000Z');
  const [a, b] = [readInstant('from', '2026-11-01T00:00:00.000001Z') as Instant, readInstant('to', '2026-11-01T00:00:00.000002Z') as Instant];
  assert.ok(compareInstants(a, b) < 0 && compareInstants(b, a) > 0 && a.getTime() === b.getTime());
  assert.equal(JSON.stringify({ at: new Date('2026-11-01T09:30:00.5Z') }, instantsReplacer), '{"at":"2026-11-01T09:30:00.500000Z"}', 'CLI --json output');
});
