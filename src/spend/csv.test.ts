import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { parseSpendFile, plainRecords } from './csv.js';

/** What csv-parse makes of a file with the options records() gives it. */
function csvParse(text: string, delimiter: ',' | '\t') {
  const out = parse(text, { delimiter, relax_column_count: true, skip_empty_lines: true, info: true, trim: true }) as unknown as { record: string[]; info: { lines: number } }[];
  return out.map((r) => ({ fields: r.record, line: r.info.lines }));
}

/** A small seeded generator (mulberry32): the same files on every run. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('plainRecords (the split fast path)', () => {
  test('gives the same fields and line numbers as csv-parse on 20,000 random files without quotes', () => {
    const next = random(12);
    // White space csv-parse trims and some it does not (no-break space, BOM), both delimiters, blank lines.
    const alphabet = ['a', '1', ' ', ' ', '\t', ',', ',', '\n', '\n', '\f', '\u00a0', '\ufeff', '-', 'é'];
    let compared = 0;
    for (let k = 0; k < 20_000; k++) {
      const crlf = next() < 0.3;
      let text = '';
      const length = Math.floor(next() * 30);
      for (let i = 0; i < length; i++) {
        const c = alphabet[Math.floor(next() * alphabet.length)]!;
        text += crlf && c === '\n' ? '\r\n' : c;
      }
      for (const delimiter of [',', '\t'] as const) {
        const plain = plainRecords(text, delimiter);
        assert.ok(plain, JSON.stringify(text));
        assert.deepEqual(plain, csvParse(text, delimiter), `${JSON.stringify(text)} delimited by ${JSON.stringify(delimiter)}`);
        compared++;
      }
    }
    assert.equal(compared, 40_000);
  });

  test('leaves quotes, lone carriage returns and mixed line breaks to csv-parse', () => {
    for (const text of ['a,"b"\n', 'a\rb\r', 'a\r\nb\nc\n', 'a\nb\r\n', 'a\r\nb\r']) assert.equal(plainRecords(text, ','), undefined, JSON.stringify(text));
    assert.deepEqual(plainRecords('a\r\n\r\n b ,c\r\n', ','), [{ fields: ['a'], line: 1 }, { fields: ['b', 'c'], line: 3 }]);
  });

  test('bad lines of a file read by splitting are named by their line, blank lines counted', () => {
    const text = 'day,campaign_id,spend,currency\n\n2026-01-01,1,1.00,USD\n   \n2026-02-30,1,1.00,USD\n2026-01-02,1,abc,USD\n';
    assert.ok(plainRecords(text, ','));
    assert.throws(
      () => parseSpendFile(text, { platform: 'other' }),
      (e: { options: { details: { errors: string[] } } }) => {
        assert.deepEqual(e.options.details.errors.map((l) => l.slice(0, 7)), ['line 5:', 'line 6:']);
        return true;
      },
    );
    assert.deepEqual(parseSpendFile('day,campaign_id,spend,currency\r\n\r\n2026-01-01,1,1.00,USD\r\n', { platform: 'other' }).rows.map((r) => r.line), [3]);
  });
});
