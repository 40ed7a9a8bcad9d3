/**
 * The day axis of the web app's trend charts (web/src/period.ts): every day of the period is a point, a day without
 * conversions is 0 rather than a line drawn across it, and a day retention pruned that the report does not list is a
 * gap (null), never 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dailyValues, periodDays } from '../../web/src/period.js';

const DAY = 86_400_000;
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);
const T0 = Date.parse('2026-01-01T00:00:00Z');

test('periodDays: each UTC day from `from` to `to` (inclusive) up to today, then any later day a report lists', () => {
  assert.deepEqual(periodDays({ from: '2026-02-27', to: '2026-03-02' }, [], new Date('2026-12-01T12:00:00Z')), ['2026-02-27', '2026-02-28', '2026-03-01', '2026-03-02']);
  assert.deepEqual(periodDays({ from: '2026-03-01', to: '2026-03-05' }, [], new Date('2026-03-03T23:59:00Z')), ['2026-03-01', '2026-03-02', '2026-03-03']);
  assert.deepEqual(periodDays({ from: '2026-03-01', to: '2026-03-05' }, [{ date: '2026-03-05' }], new Date('2026-03-02T00:00:00Z')), ['2026-03-01', '2026-03-02', '2026-03-05']);
});

test('dailyValues: listed days keep their value, others are 0, or null inside the pruned range; one value per day', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 60 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 1e6 })), { maxLength: 40 }),
      fc.option(fc.tuple(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }))),
      (n, listedRaw, prunedRaw) => {
        const today = new Date(T0 + 400 * DAY);
        const dates = periodDays({ from: iso(T0), to: iso(T0 + (n - 1) * DAY) }, [], today);
        assert.equal(dates.length, n);
        const listed = [...new Map(listedRaw.filter(([d]) => d < n).map(([d, v]) => [iso(T0 + d * DAY), v])).entries()].map(([date, v]) => ({ date, v }));
        const pruned = prunedRaw && { first_day: iso(T0 + Math.min(...prunedRaw) * DAY), last_day: iso(T0 + Math.max(...prunedRaw) * DAY) };
        const values = dailyValues(dates, listed, (d) => d.v, pruned);
        assert.equal(values.length, dates.length);
        for (const [i, date] of dates.entries()) {
          const l = listed.find((x) => x.date === date);
          if (l) assert.equal(values[i], l.v);
          else if (pruned && date >= pruned.first_day && date <= pruned.last_day) assert.equal(values[i], null);
          else assert.equal(values[i], 0);
        }
      },
    ),
  );
});
