import type { Revision } from '../revision.js';

/**
 * Partial captures (review 5): revenue_ledger.captured_cents, the amount captured so far when a
 * provider reports less than the payment's amount (a PayPal capture of part of an authorization,
 * Stripe's amount_captured / amount_received, Shopify's total minus total_outstanding). NULL means
 * the whole amount once captured (every row before this revision, and payments captured whole).
 * Verified revenue = (captured_cents, else amount_cents) − refunded − charged back.
 *
 * trg_revenue_ledger_tally (BEFORE INSERT OR UPDATE; its name sorts after
 * trg_revenue_ledger_state_machine, so it runs after the guard): captured_cents never shrinks
 * (and, once known, never returns to NULL), and the legacy revenue_cents of a captured row counts
 * only what was captured.
 */
export const revision: Revision = {
  id: '202611280409',
  previous: '202611280318',
  title: 'revenue ledger: captured amount of partial captures',
  dropsOnDowngrade: [{ table: 'revenue_ledger', columns: ['captured_cents'] }],

  async up(m) {
    await m.ddl(`ALTER TABLE revenue_ledger ADD COLUMN IF NOT EXISTS captured_cents integer`);
    await m.addCheck('revenue_ledger', 'ck_revenue_ledger_captured_cents_range', 'captured_cents IS NULL OR (captured_cents >= 0 AND captured_cents <= amount_cents)');
    await m.comment('revenue_ledger', null, {
      captured_cents: 'Amount captured so far when the provider reports a partial capture (minor units of currency; never shrinks); NULL = the whole amount once captured. Verified revenue = COALESCE(captured_cents, amount_cents) - refunded_cents - chargeback_cents, at least 0.',
    });
    await m.transaction(async () => {
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_tally() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.captured_cents IS NOT NULL
             AND (NEW.captured_cents IS NULL OR NEW.captured_cents < OLD.captured_cents) THEN
            RAISE EXCEPTION 'revenue_ledger row %: captured_cents is cumulative and never shrinks', OLD.id
              USING ERRCODE = '23514', CONSTRAINT = 'revenue_ledger_cumulative_amounts';
          END IF;
          IF NEW.state IS DISTINCT FROM 'authorized' AND NEW.captured_cents IS NOT NULL
             AND NEW.refunded_cents IS NOT NULL AND NEW.chargeback_cents IS NOT NULL THEN
            NEW.revenue_cents := GREATEST(NEW.captured_cents - NEW.refunded_cents - NEW.chargeback_cents, 0);
          END IF;
          RETURN NEW;
        END $$`);
      await m.exec(`COMMENT ON FUNCTION skeldir_revenue_ledger_tally() IS 'Trigger function: captured_cents never shrinks; the legacy revenue_cents of a partially captured row counts what was captured.'`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_tally ON revenue_ledger`);
      await m.exec(`CREATE TRIGGER trg_revenue_ledger_tally BEFORE INSERT OR UPDATE ON revenue_ledger
        FOR EACH ROW EXECUTE FUNCTION skeldir_revenue_ledger_tally()`);
    });
  },

  async down(m) {
    await m.transaction(async () => {
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_tally ON revenue_ledger`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_revenue_ledger_tally()`);
      await m.exec(`ALTER TABLE revenue_ledger DROP COLUMN IF EXISTS captured_cents`);
    });
  },
};
