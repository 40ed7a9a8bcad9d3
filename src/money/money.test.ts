import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../testing/db.js';
import { runCli } from '../testing/cli.js';
import { createTenant } from '../tenants/tenants.js';
import { AmountError, formatMinor, parseDecimalAmount, parseMinorInteger } from './amount.js';
import { CURRENCY_EXPONENTS, currency, NO_MINOR_UNIT } from './currencies.js';
import { convertMinor, convertWithQuote, findRate, importFxRates, parseFxCsv, parseRate, parseRateExpression } from './fx.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`# fast-check seed ${seed} (FC_SEED=${seed} to replay)`);

describe('ISO 4217 table', () => {
  test('known exponents from List One', () => {
    assert.equal(currency('JPY').exponent, 0);
    assert.equal(currency('USD').exponent, 2);
    assert.equal(currency('KWD').exponent, 3);
    assert.equal(currency('CLF').exponent, 4);
    assert.equal(currency('usd').code, 'USD', 'lower case (Stripe) is accepted and normalised');
    for (const code of ['BHD', 'IQD', 'JOD', 'LYD', 'OMR', 'TND']) assert.equal(currency(code).exponent, 3, code);
    for (const code of ['BIF', 'CLP', 'ISK', 'KRW', 'VND', 'XOF', 'UGX', 'PYG']) assert.equal(currency(code).exponent, 0, code);
    assert.ok(CURRENCY_EXPONENTS.size >= 160, `the full list (${CURRENCY_EXPONENTS.size} codes)`);
  });

  test('unknown codes and codes without a minor unit are refused with their reason', () => {
    assert.throws(() => currency('XXY'), /not an ISO 4217/);
    assert.throws(() => currency('XAU'), /no minor unit/);
    assert.throws(() => currency(''), { code: 'currency_invalid' });
    assert.throws(() => currency(42), { code: 'currency_invalid' });
    for (const code of NO_MINOR_UNIT) assert.equal(CURRENCY_EXPONENTS.has(code), false);
  });
});

describe('exact amount parsing', () => {
  test('hand-picked values', () => {
    assert.equal(parseDecimalAmount('199.99', 2), 19999n);
    assert.equal(parseDecimalAmount('10.500', 2), 1050n, 'trailing zeros beyond the exponent are exact');
    assert.equal(parseDecimalAmount('1000', 0), 1000n);
    assert.equal(parseDecimalAmount('1.234', 3), 1234n);
    assert.equal(parseDecimalAmount('0.1', 2), 10n);
    assert.equal(parseDecimalAmount('-5.00', 2, { allowNegative: true }), -500n);
    // 0.1 + 0.2 style float traps never apply: the digits are moved, not computed.
    assert.equal(parseDecimalAmount('1234567890123456789.99', 2), 123456789012345678999n);
  });

  test('malformed, negative and too-precise amounts are specific errors', () => {
    for (const bad of ['', ' 1.00', '1,000.00', '1e3', '+1', '1.', '.5', 'NaN', '0x10', '1.0.0']) {
      assert.throws(() => parseDecimalAmount(bad, 2), { code: 'amount_invalid' }, bad);
    }
    assert.throws(() => parseDecimalAmount(19.99, 2), { code: 'amount_invalid' }, 'a JSON number is not accepted as a decimal string');
    assert.throws(() => parseDecimalAmount('-1.00', 2), { code: 'amount_invalid' });
    assert.throws(() => parseDecimalAmount('10.005', 2), { code: 'amount_precision_invalid' });
    assert.throws(() => parseDecimalAmount('1.5', 0), { code: 'amount_precision_invalid' });
    assert.throws(() => parseMinorInteger(1.5), AmountError);
    assert.throws(() => parseMinorInteger(2 ** 60), AmountError);
    assert.equal(parseMinorInteger(2500), 2500n);
  });

  for (const exponent of [0, 2, 3, 4]) {
    test(`property: format then parse is the identity at exponent ${exponent}`, () => {
      fc.assert(
        fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.nat({ max: 4 }), (minor, extraZeros) => {
          const text = formatMinor(minor, exponent);
          const padded = extraZeros && exponent > 0 ? text + '0'.repeat(extraZeros) : text;
          assert.equal(parseDecimalAmount(padded, exponent, { allowNegative: true }), minor);
        }),
        { seed, numRuns: 300 },
      );
    });

    test(`property: any digit finer than exponent ${exponent} is refused, never rounded`, () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.integer({ min: 1, max: 9 }), (minor, digit) => {
          const base = formatMinor(minor, exponent);
          const finer = `${base}${exponent === 0 ? '.' : ''}${digit}`;
          assert.throws(() => parseDecimalAmount(finer, exponent), { code: 'amount_precision_invalid' });
        }),
        { seed, numRuns: 200 },
      );
    });
  }
});

describe('conversion at an exact rate', () => {
  test('exponents are honoured and rounding is half to even', () => {
    const r = parseRate('150.25');
    assert.equal(convertMinor(1000n, 2, 0, r), 1502n, '10.00 USD at 150.25 = 1502.5 JPY → 1502 (even)');
    assert.equal(convertMinor(1001n, 2, 0, r), 1504n, '10.01 USD = 1504.0025 JPY');
    assert.equal(convertMinor(1000n, 0, 3, parseRate('0.002')), 2000n, '1000 JPY at 0.002 = 2.000 KWD');
    assert.equal(convertMinor(3n, 2, 2, parseRate('0.5')), 2n, '0.015 → 0.02 (even)');
    assert.equal(convertMinor(5n, 2, 2, parseRate('0.5')), 2n, '0.025 → 0.02 (even)');
    assert.equal(convertMinor(-5n, 2, 2, parseRate('0.5')), -2n);
    assert.deepEqual(parseRateExpression('1/0.5'), { num: 10n, den: 5n });
  });

  test('property: converting there and back at a rate and its exact inverse loses at most rounding', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: 1, max: 10 ** 9 }), (amount, scaled) => {
        const rate = `${Math.floor(scaled / 10000)}.${String(scaled % 10000).padStart(4, '0')}`;
        if (parseRate(rate).num === 0n) return;
        const there = convertMinor(amount, 2, 2, parseRateExpression(rate));
        const back = convertMinor(there, 2, 2, parseRateExpression(`1/${rate}`));
        const r = parseRateExpression(rate);
        // |back − amount| ≤ 0.5 / rate + 0.5 minor units
        const diff = back > amount ? back - amount : amount - back;
        assert.ok(diff * 2n * r.num <= r.den + r.num, `${amount} at ${rate}: ${there} → ${back}`);
      }),
      { seed, numRuns: 300 },
    );
  });
});

describe('FX rates in the database', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('head');
  });
  after(async () => {
    await db?.drop();
  });

  test('the CSV is checked whole: every bad line is reported and nothing is imported', () => {
    assert.throws(
      () => parseFxCsv('date,base,quote,rate\n2024-02-30,EUR,USD,1.08\n2024-03-01,EUR,XXX,1\n2024-03-01,EUR,EUR,1\n2024-03-01,EUR,USD,-1\n2024-03-01,eur,USD,1\n'),
      (e: Error & { code?: string }) => e.code === 'fx_file_invalid' && /line 2/.test(e.message) && /line 3/.test(e.message) && /line 4/.test(e.message) && /line 5/.test(e.message) && /line 6/.test(e.message),
    );
    assert.throws(() => parseFxCsv('2024-03-01,EUR,USD,1.08\n2024-03-01,EUR,USD,1.09\n'), /line 2: .*also on line 1/);
    assert.equal(parseFxCsv('\uFEFF2024-03-01,EUR,USD,1.08\r\n\r\n').length, 1);
  });

  test('a dated rate: the latest on or before the date; direct, inverse and cross; reproducible', async () => {
    const owner = db.ownerPool({ max: 1 });
    try {
      const rows = parseFxCsv(
        ['date,base,quote,rate', '2024-01-02,EUR,USD,1.0956', '2024-01-05,EUR,USD,1.0921', '2024-01-05,EUR,JPY,158.12', '2024-01-03,GBP,USD,1.2650'].join('\n'),
      );
      assert.deepEqual(await importFxRates(owner, rows, 'test'), { inserted: 4, updated: 0, unchanged: 0 });
      assert.deepEqual(await importFxRates(owner, rows, 'test'), { inserted: 0, updated: 0, unchanged: 4 }, 're-import changes nothing');

      const on4th = await findRate(owner, 'EUR', 'USD', '2024-01-04');
      assert.equal(on4th!.rate, '1.0956');
      assert.equal(on4th!.rate_date, '2024-01-02', 'the rate of the latest earlier day');
      assert.equal((await findRate(owner, 'EUR', 'USD', '2024-01-05'))!.rate, '1.0921');
      assert.equal(await findRate(owner, 'EUR', 'USD', '2024-01-01'), null, 'nothing before the first rate');
      const inverse = (await findRate(owner, 'USD', 'EUR', '2024-01-06'))!;
      assert.equal(inverse.method, 'inverse');
      assert.equal(convertWithQuote(109210n, inverse), 100000n, '1092.10 USD = 1000.00 EUR at 1/1.0921');
      const cross = (await findRate(owner, 'USD', 'JPY', '2024-01-05'))!;
      assert.deepEqual([cross.method, cross.pivot, cross.rate], ['cross', 'EUR', '158.12/1.0921']);
      assert.equal(convertWithQuote(10000n, cross), 14479n, '100.00 USD = 15812 / 1.0921 JPY = 14478.53… → 14479');
      // A later import changes what a new lookup finds (a ledger row keeps the quote recorded in its
      // metadata: reconciliation.test.ts re-imports a rate and checks the report does not move).
      await importFxRates(owner, parseFxCsv('2024-01-05,EUR,JPY,160'), 'later');
      assert.equal((await findRate(owner, 'USD', 'JPY', '2024-01-05'))!.rate, '160/1.0921');
    } finally {
      await owner.end();
    }
  });

  test('skeldir fx reporting-currency: shows, sets, refuses a non-ISO code', async () => {
    const owner = db.ownerPool({ max: 1 });
    const { tenant_id } = await createTenant(owner, { name: 'FX', email: 'fx@x.example' });
    await owner.end();
    const env = { DATABASE_URL: db.url };
    const show = await runCli(['fx', 'reporting-currency', '--tenant', tenant_id], { env });
    assert.deepEqual(JSON.parse(show.stdout), { tenant_id, reporting_currency: 'USD' });
    const set = await runCli(['fx', 'reporting-currency', '--tenant', tenant_id, '--set', 'eur'], { env });
    assert.deepEqual(JSON.parse(set.stdout), { tenant_id, reporting_currency: 'EUR' });
    const bad = await runCli(['fx', 'reporting-currency', '--tenant', tenant_id, '--set', 'XAU'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no minor unit/);
  });

  test('skeldir fx import: imports a file, refuses a bad one with exit 2 and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skeldir-fx-'));
    const good = join(dir, 'ecb.csv');
    writeFileSync(good, 'date,base,quote,rate\n2024-06-03,EUR,CHF,0.9781\n2024-06-03,EUR,KWD,0.333\n');
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, '2024-06-04,EUR,CHF,0.98\n2024-06-04,EUR,CHF\n');
    const env = { DATABASE_URL: db.url };
    const ok = await runCli(['fx', 'import', good, '--source', 'ecb'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { rates: 2, inserted: 2, updated: 0, unchanged: 0, source: 'ecb', ledger_rows_stamped: 0, ledger_rows_without_rate: 0 });
    const no = await runCli(['fx', 'import', bad], { env });
    assert.equal(no.code, 2);
    assert.match(no.stderr, /line 2: expected 4 fields/);
    const owner = db.ownerPool({ max: 1 });
    try {
      const n = await owner.query(`SELECT count(*)::int AS n FROM fx_rates WHERE rate_date = '2024-06-04'`);
      assert.equal(n.rows[0].n, 0);
    } finally {
      await owner.end();
    }
  });
});
