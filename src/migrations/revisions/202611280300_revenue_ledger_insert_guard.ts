import { ident } from '../../db/pool.js';
import type { Revision } from '../revision.js';

/**
 * The revenue ledger's history can no longer be rewritten by the application role.
 *
 * - DELETE on revenue_ledger is revoked from the application role (a legacy grant of the first
 *   schema). With it, a row could be deleted (its transitions cascade away) and its
 *   transaction_id inserted again with another amount or state: the immutability the state
 *   machine guards was one DELETE away. Nothing in the application deletes ledger rows; the
 *   schema owner still can (tenant removal cascades as before).
 * - trg_revenue_ledger_initial_state (BEFORE INSERT): a row is born `authorized` or `captured`,
 *   the two states the machine starts from; `refunded` and `chargeback` are reached only by the
 *   legal transitions (each written to revenue_state_transitions). Unknown states and NULL are
 *   left to ck_revenue_ledger_state_valid and NOT NULL, which name themselves. A separate trigger
 *   (rather than a new body for skeldir_revenue_ledger_guard) keeps the released function as it
 *   is and the downgrade a plain DROP. The forensic protocol's fixtures reach the terminal states
 *   of T7.3.2 by inserting `captured` and moving the row, so the CHECK is still exercised.
 */
export const revision: Revision = {
  id: '202611280300',
  previous: '202611280202',
  title: 'revenue ledger: no DELETE for the application role, rows born authorized or captured only',
  dropsOnDowngrade: [],

  async up(m) {
    const app = ident(m.roles.app);
    await m.transaction(async () => {
      await m.exec(`REVOKE DELETE ON revenue_ledger FROM ${app}`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_initial_state() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.state IN ('refunded', 'chargeback') THEN
            RAISE EXCEPTION 'revenue_ledger: a row cannot be inserted in state % (a row starts authorized or captured; refunded and chargeback are reached by transitions)', NEW.state
              USING ERRCODE = '23514', CONSTRAINT = 'revenue_ledger_initial_state';
          END IF;
          RETURN NEW;
        END $$`);
      await m.exec(`COMMENT ON FUNCTION skeldir_revenue_ledger_initial_state() IS 'Trigger function: a revenue_ledger row is inserted authorized or captured only; refunded and chargeback are reached by legal transitions.'`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_initial_state ON revenue_ledger`);
      await m.exec(`CREATE TRIGGER trg_revenue_ledger_initial_state BEFORE INSERT ON revenue_ledger
        FOR EACH ROW EXECUTE FUNCTION skeldir_revenue_ledger_initial_state()`);
    });
  },

  async down(m) {
    const app = ident(m.roles.app);
    await m.transaction(async () => {
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_initial_state ON revenue_ledger`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_revenue_ledger_initial_state()`);
      await m.exec(`GRANT DELETE ON revenue_ledger TO ${app}`);
    });
  },
};
