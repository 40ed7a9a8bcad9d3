import { ident } from '../../db/pool.js';
import type { Revision } from '../revision.js';

const PROVIDERS = `'stripe', 'shopify', 'paypal', 'woocommerce'`;

/**
 * The revenue ledger's machinery (issue 7): verified payment webhooks, the refund/chargeback
 * state machine enforced by the database, FX rates and reconciliation.
 *
 * - revenue_ledger.refunded_cents / chargeback_cents: cumulative amounts refunded and lost to
 *   chargebacks (partial refunds are recorded here; verified revenue = amount − both).
 * - trg_revenue_ledger_state_machine (BEFORE): the only legal moves are authorized → captured →
 *   refunded | chargeback; transaction_id, amount_cents, currency and tenant_id never change;
 *   cumulative amounts never shrink; previous_state is set by the database; the legacy columns
 *   (revenue_cents = net revenue, is_verified, verified_at) are kept consistent with the row.
 *   The phase-7 CHECK keeps exactly its four states (the forensic gate G7.3 checks that list):
 *   a voided authorization stays `authorized` with `metadata.voided_at` and counts as no revenue.
 * - trg_revenue_ledger_transitions (AFTER): writes the revenue_state_transitions row of every
 *   state change (and of the initial state) in the same transaction. The application role may
 *   no longer INSERT transitions itself: the audit trail is written by the database only.
 * - revenue_ledger_references: every provider id that names a ledger row (a PayPal capture id for
 *   a row keyed by its authorization, a Stripe PaymentIntent for a charge …), tenant-scoped.
 * - webhook_endpoints (secrets encrypted by the application, AES-256-GCM) with the SECURITY
 *   DEFINER lookup skeldir_webhook_endpoint(uuid) owned by the system role, the only way to find
 *   an endpoint's tenant before any tenant is known.
 * - webhook_deliveries: one row per provider event (dedup key), and facts waiting for their
 *   ledger row when a refund or dispute arrives before its payment.
 * - fx_rates (market data, not tenant-scoped) and tenants.reporting_currency.
 * - trg_attribution_allocations_verify: allocations written for a conversion whose order the
 *   ledger has verified are marked verified as they are inserted, whatever arrived first.
 */
export const revision: Revision = {
  id: '202611280020',
  previous: '202611280017',
  title: 'revenue ledger state machine, webhooks, FX rates and reconciliation',
  dropsOnDowngrade: [
    { table: 'webhook_deliveries' },
    { table: 'webhook_endpoints' },
    { table: 'revenue_ledger_references' },
    { table: 'fx_rates' },
    { table: 'revenue_ledger', columns: ['refunded_cents', 'chargeback_cents'] },
    { table: 'tenants', columns: ['reporting_currency'] },
  ],

  async up(m) {
    const app = ident(m.roles.app);
    const system = ident(m.roles.system);

    // --- tenants.reporting_currency --------------------------------------------------------
    await m.ddl(`ALTER TABLE tenants ADD COLUMN IF NOT EXISTS reporting_currency varchar(3) NOT NULL DEFAULT 'USD'`);
    await m.addCheck('tenants', 'ck_tenants_reporting_currency_format', `reporting_currency ~ '^[A-Z]{3}$'`);
    await m.comment('tenants', null, {
      reporting_currency: 'ISO 4217 code reports (reconciliation) convert amounts into, at each transaction date\'s rate.',
    });

    // --- revenue_ledger: cumulative refunds and chargebacks ----------------------------------
    await m.ddl(`ALTER TABLE revenue_ledger
      ADD COLUMN IF NOT EXISTS refunded_cents integer NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS chargeback_cents integer NOT NULL DEFAULT 0`);
    // Rows put in a terminal state by hand before this revision get the figures the state implies.
    await m.backfill({
      table: 'revenue_ledger',
      label: 'revenue_ledger: refunded and chargeback amounts of terminal rows',
      set: `refunded_cents = CASE WHEN state = 'refunded' THEN GREATEST(amount_cents, 0) ELSE refunded_cents END,
            chargeback_cents = CASE WHEN state = 'chargeback' AND chargeback_cents = 0 THEN GREATEST(amount_cents, 0) ELSE chargeback_cents END`,
      where: `(state = 'refunded' AND refunded_cents <> amount_cents) OR (state = 'chargeback' AND chargeback_cents = 0 AND amount_cents > 0)`,
    });
    await m.addCheck('revenue_ledger', 'ck_revenue_ledger_refunded_cents_range', 'refunded_cents >= 0 AND refunded_cents <= amount_cents');
    await m.addCheck('revenue_ledger', 'ck_revenue_ledger_chargeback_cents_range', 'chargeback_cents >= 0 AND chargeback_cents <= amount_cents');
    await m.createIndex('idx_revenue_ledger_tenant_order', 'revenue_ledger (tenant_id, order_id) WHERE order_id IS NOT NULL');
    await m.comment('revenue_ledger', null, {
      refunded_cents: 'Amount refunded so far (cumulative, minor units of currency; never shrinks). Equals amount_cents when state is refunded.',
      chargeback_cents: 'Amount lost to a chargeback (minor units of currency; never shrinks). Verified revenue = amount_cents - refunded_cents - chargeback_cents, at least 0.',
    });
    await m.exec(`COMMENT ON INDEX idx_revenue_ledger_tenant_order IS 'Ledger rows of a merchant order, to verify its conversions.'`);

    await m.transaction(async () => {
      // --- the state machine -----------------------------------------------------------------
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            NEW.previous_state := NULL;
          ELSE
            IF NEW.transaction_id IS DISTINCT FROM OLD.transaction_id OR NEW.amount_cents IS DISTINCT FROM OLD.amount_cents
               OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
              RAISE EXCEPTION 'revenue_ledger row %: transaction_id, amount_cents, currency and tenant_id never change', OLD.id
                USING ERRCODE = '23514', CONSTRAINT = 'revenue_ledger_immutable_columns';
            END IF;
            IF NEW.refunded_cents < OLD.refunded_cents OR NEW.chargeback_cents < OLD.chargeback_cents THEN
              RAISE EXCEPTION 'revenue_ledger row %: refunded_cents and chargeback_cents are cumulative and never shrink', OLD.id
                USING ERRCODE = '23514', CONSTRAINT = 'revenue_ledger_cumulative_amounts';
            END IF;
            IF NEW.state IS DISTINCT FROM OLD.state THEN
              -- Unknown states are left to ck_revenue_ledger_state_valid, which names itself.
              IF NEW.state IN ('authorized', 'captured', 'refunded', 'chargeback')
                 AND (OLD.state, NEW.state) NOT IN (('authorized', 'captured'), ('captured', 'refunded'), ('captured', 'chargeback')) THEN
                RAISE EXCEPTION 'revenue_ledger row %: illegal state transition % -> % (legal: authorized -> captured -> refunded | chargeback)',
                  OLD.id, OLD.state, NEW.state
                  USING ERRCODE = '23514', CONSTRAINT = 'revenue_ledger_state_machine';
              END IF;
              NEW.previous_state := OLD.state;
            ELSE
              NEW.previous_state := OLD.previous_state;
            END IF;
          END IF;
          -- NULLs are left alone so that NOT NULL reports the column that is missing.
          IF NEW.state IS NOT NULL AND NEW.amount_cents IS NOT NULL AND NEW.refunded_cents IS NOT NULL AND NEW.chargeback_cents IS NOT NULL THEN
            IF NEW.state = 'refunded' AND NEW.refunded_cents < NEW.amount_cents THEN
              NEW.refunded_cents := NEW.amount_cents;
            END IF;
            IF NEW.state = 'chargeback' AND NEW.chargeback_cents = 0 THEN
              NEW.chargeback_cents := GREATEST(NEW.amount_cents - NEW.refunded_cents, 0);
            END IF;
            -- Legacy columns: revenue_cents is the revenue the row stands for (its amount while
            -- authorized, as the phase-7 backfill mapped it; the net once captured).
            NEW.is_verified := NEW.state <> 'authorized';
            NEW.revenue_cents := CASE WHEN NEW.state = 'authorized' THEN NEW.amount_cents
                                      ELSE GREATEST(NEW.amount_cents - NEW.refunded_cents - NEW.chargeback_cents, 0) END;
            IF NEW.is_verified THEN
              NEW.verified_at := COALESCE(NEW.verified_at, NEW.verification_timestamp, now());
            ELSE
              NEW.verified_at := NULL;
            END IF;
          END IF;
          RETURN NEW;
        END $$`);
      await m.exec(`COMMENT ON FUNCTION skeldir_revenue_ledger_guard() IS 'Trigger function: the revenue state machine (legal transitions, immutable amount and transaction id, cumulative refunds) and the legacy columns kept consistent.'`);
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_revenue_ledger_record_transition() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        BEGIN
          INSERT INTO revenue_state_transitions (ledger_id, from_state, to_state, reason, transitioned_at)
          VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.state END, NEW.state,
                  NULLIF(current_setting('skeldir.transition_reason', true), ''), clock_timestamp());
          RETURN NULL;
        END $$`);
      await m.exec(`REVOKE ALL ON FUNCTION skeldir_revenue_ledger_record_transition() FROM PUBLIC`);
      await m.exec(`COMMENT ON FUNCTION skeldir_revenue_ledger_record_transition() IS 'Trigger function (SECURITY DEFINER): writes the revenue_state_transitions row of a state change, reason from the transaction-local setting skeldir.transition_reason.'`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_state_machine ON revenue_ledger`);
      await m.exec(`CREATE TRIGGER trg_revenue_ledger_state_machine BEFORE INSERT OR UPDATE ON revenue_ledger
        FOR EACH ROW EXECUTE FUNCTION skeldir_revenue_ledger_guard()`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_transition_insert ON revenue_ledger`);
      await m.exec(`CREATE TRIGGER trg_revenue_ledger_transition_insert AFTER INSERT ON revenue_ledger
        FOR EACH ROW EXECUTE FUNCTION skeldir_revenue_ledger_record_transition()`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_transition_update ON revenue_ledger`);
      await m.exec(`CREATE TRIGGER trg_revenue_ledger_transition_update AFTER UPDATE ON revenue_ledger
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION skeldir_revenue_ledger_record_transition()`);
      await m.exec(`REVOKE INSERT ON revenue_state_transitions FROM ${app}`);

      // --- references: provider ids naming a ledger row ---------------------------------------
      await m.exec(`
        CREATE TABLE IF NOT EXISTS revenue_ledger_references (
          reference varchar(255) NOT NULL,
          tenant_id uuid NOT NULL,
          ledger_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_revenue_ledger_references PRIMARY KEY (reference),
          CONSTRAINT fk_revenue_ledger_references_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_revenue_ledger_references_ledger_id FOREIGN KEY (ledger_id) REFERENCES revenue_ledger (id) ON DELETE CASCADE
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_revenue_ledger_references_ledger_id ON revenue_ledger_references (ledger_id)`);
      await m.tenantPolicy('revenue_ledger_references');
      await m.grantApp('revenue_ledger_references', 'SELECT, INSERT');
      await m.comment('revenue_ledger_references', 'Provider ids that name a revenue_ledger row (its own transaction id, and e.g. a PayPal capture of an authorization).', {
        reference: 'Tenant-scoped provider id (<tenant_id>:<provider>:<id>). UNIQUE on its own.',
        tenant_id: 'Owning tenant; row-level security shows the row only in this tenant\'s context.',
        ledger_id: 'The ledger row the id names.',
        created_at: 'When the reference was recorded.',
      });

      // --- webhook endpoints -------------------------------------------------------------------
      await m.exec(`
        CREATE TABLE IF NOT EXISTS webhook_endpoints (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          secret_ciphertext text NOT NULL,
          previous_secret_ciphertext text,
          previous_secret_expires_at timestamptz,
          description varchar(255),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          rotated_at timestamptz,
          CONSTRAINT pk_webhook_endpoints PRIMARY KEY (id),
          CONSTRAINT fk_webhook_endpoints_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_webhook_endpoints_provider CHECK (provider IN (${PROVIDERS})),
          CONSTRAINT ck_webhook_endpoints_previous_secret CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL))
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_webhook_endpoints_tenant_id ON webhook_endpoints (tenant_id, created_at)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_webhook_endpoints_updated_at ON webhook_endpoints`);
      await m.exec(`CREATE TRIGGER trg_webhook_endpoints_updated_at BEFORE UPDATE ON webhook_endpoints
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('webhook_endpoints');
      // The system role reads endpoints (any tenant) through skeldir_webhook_endpoint only.
      await m.exec(`DROP POLICY IF EXISTS webhook_endpoints_system_lookup ON webhook_endpoints`);
      await m.exec(`CREATE POLICY webhook_endpoints_system_lookup ON webhook_endpoints FOR SELECT TO ${system} USING (true)`);
      await m.exec(`GRANT SELECT ON webhook_endpoints TO ${system}`);
      await m.comment('webhook_endpoints', 'A payment provider\'s webhook endpoint of a tenant: the URL path names it, its secret verifies signatures.', {
        id: 'Endpoint identifier (UUID v4, generated); the last segment of the webhook URL.',
        tenant_id: 'Owning tenant: deliveries to this endpoint are recorded in its context.',
        provider: 'stripe, shopify, paypal or woocommerce: which signature scheme and payloads.',
        secret_ciphertext: 'The signing secret (PayPal: the webhook id), AES-256-GCM encrypted with the server key; never plaintext.',
        previous_secret_ciphertext: 'The secret before the last rotation, still accepted until previous_secret_expires_at.',
        previous_secret_expires_at: 'When the previous secret stops being accepted.',
        description: 'Free text for the operator.',
        created_at: 'When the endpoint was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
        rotated_at: 'When the secret was last rotated.',
      });
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_webhook_endpoint(p_endpoint_id uuid)
        RETURNS TABLE (tenant_id uuid, provider text, secret_ciphertext text, previous_secret_ciphertext text, previous_secret_expires_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ SELECT e.tenant_id, e.provider::text, e.secret_ciphertext, e.previous_secret_ciphertext, e.previous_secret_expires_at
              FROM webhook_endpoints e WHERE e.id = p_endpoint_id $$`);
      // ALTER … OWNER needs the new owner to be able to create in the schema: granted for the
      // change of owner only.
      await m.exec(`GRANT CREATE ON SCHEMA public TO ${system}`);
      await m.exec(`ALTER FUNCTION skeldir_webhook_endpoint(uuid) OWNER TO ${system}`);
      await m.exec(`REVOKE CREATE ON SCHEMA public FROM ${system}`);
      await m.exec(`REVOKE ALL ON FUNCTION skeldir_webhook_endpoint(uuid) FROM PUBLIC`);
      await m.exec(`GRANT EXECUTE ON FUNCTION skeldir_webhook_endpoint(uuid) TO ${app}`);
      await m.exec(`COMMENT ON FUNCTION skeldir_webhook_endpoint(uuid) IS 'Resolves a webhook endpoint id to its tenant, provider and encrypted secrets before any tenant is known (SECURITY DEFINER, owned by the system role).'`);

      // --- deliveries: dedup on the provider's event id, and facts waiting for their row -------
      await m.exec(`
        CREATE TABLE IF NOT EXISTS webhook_deliveries (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          endpoint_id uuid,
          provider varchar(20) NOT NULL,
          provider_event_id varchar(255) NOT NULL,
          event_type varchar(100) NOT NULL,
          status varchar(20) NOT NULL,
          transaction_id varchar(255),
          pending_reference varchar(255),
          pending_fact jsonb,
          dead_event_id uuid,
          detail text,
          received_at timestamptz NOT NULL DEFAULT now(),
          applied_at timestamptz,
          CONSTRAINT pk_webhook_deliveries PRIMARY KEY (id),
          CONSTRAINT fk_webhook_deliveries_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_webhook_deliveries_endpoint_id FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE SET NULL,
          CONSTRAINT ck_webhook_deliveries_provider CHECK (provider IN (${PROVIDERS})),
          CONSTRAINT ck_webhook_deliveries_status CHECK (status IN ('applied', 'ignored', 'pending', 'dead_lettered')),
          CONSTRAINT ck_webhook_deliveries_pending CHECK ((status = 'pending') = (pending_reference IS NOT NULL AND pending_fact IS NOT NULL))
        )`);
      await m.exec(`CREATE UNIQUE INDEX IF NOT EXISTS idx_webhook_deliveries_provider_event ON webhook_deliveries (tenant_id, provider, provider_event_id)`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_pending ON webhook_deliveries (tenant_id, pending_reference) WHERE status = 'pending'`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, received_at DESC)`);
      await m.tenantPolicy('webhook_deliveries');
      await m.grantApp('webhook_deliveries', 'SELECT, INSERT, UPDATE');
      await m.comment('webhook_deliveries', 'One row per provider webhook event received: deduplicates redeliveries and holds facts that arrived before their payment.', {
        id: 'Delivery identifier (UUID v4, generated).',
        tenant_id: 'Owning tenant; row-level security shows the row only in this tenant\'s context.',
        endpoint_id: 'The endpoint it was delivered to (NULL once the endpoint is deleted).',
        provider: 'stripe, shopify, paypal or woocommerce.',
        provider_event_id: 'The provider\'s event id (Stripe evt_…, Shopify X-Shopify-Webhook-Id, PayPal WH-…, WooCommerce delivery id). UNIQUE per tenant and provider.',
        event_type: 'The provider\'s event type or topic (charge.refunded, orders/paid, PAYMENT.CAPTURE.COMPLETED, order.updated …).',
        status: 'applied (changed or confirmed the ledger), ignored (not a payment event), pending (waits for its payment), dead_lettered (signed but unusable).',
        transaction_id: 'The ledger transaction_id the event touched, if any.',
        pending_reference: 'For pending deliveries: the tenant-scoped provider id whose ledger row the fact waits for.',
        pending_fact: 'For pending deliveries: the normalised refund/chargeback/void fact to apply when the row exists.',
        dead_event_id: 'The dead_events row of an unusable payload.',
        detail: 'Why the event was ignored, pending or dead-lettered.',
        received_at: 'When the delivery was received.',
        applied_at: 'When its fact was applied to the ledger.',
      });

      // --- FX rates -------------------------------------------------------------------------------
      await m.exec(`
        CREATE TABLE IF NOT EXISTS fx_rates (
          base_currency varchar(3) NOT NULL,
          quote_currency varchar(3) NOT NULL,
          rate_date date NOT NULL,
          rate numeric NOT NULL,
          source varchar(100) NOT NULL,
          imported_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_fx_rates PRIMARY KEY (base_currency, quote_currency, rate_date),
          CONSTRAINT ck_fx_rates_rate_positive CHECK (rate > 0),
          CONSTRAINT ck_fx_rates_currencies CHECK (base_currency ~ '^[A-Z]{3}$' AND quote_currency ~ '^[A-Z]{3}$' AND base_currency <> quote_currency)
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_fx_rates_quote_date ON fx_rates (quote_currency, rate_date)`);
      await m.grantApp('fx_rates', 'SELECT');
      await m.comment('fx_rates', 'Foreign-exchange rates by day (market data shared by all tenants), imported with skeldir fx import.', {
        base_currency: 'ISO 4217 code of the currency priced.',
        quote_currency: 'ISO 4217 code the price is in: 1 base_currency = rate quote_currency.',
        rate_date: 'Day the rate applies to; a transaction uses the latest rate on or before its date.',
        rate: 'Exact decimal rate, greater than zero.',
        source: 'Where the rate came from (the import\'s --source, e.g. ecb).',
        imported_at: 'When the rate was (last) imported.',
      });

      // --- allocations of verified orders are verified as they are written ------------------------
      await m.exec(`
        CREATE OR REPLACE FUNCTION skeldir_allocations_verify_inserted() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE attribution_allocations a
             SET verified = true, verification_source = v.verification_source, verification_timestamp = v.verification_timestamp
            FROM (SELECT DISTINCT ON (n.id) n.id, l.verification_source, l.verification_timestamp
                    FROM inserted n
                    JOIN attribution_events e ON e.id = n.event_id AND e.tenant_id = n.tenant_id
                    JOIN revenue_ledger l ON l.tenant_id = e.tenant_id AND l.order_id = e.order_id
                   WHERE NOT n.verified AND e.event_type = 'conversion' AND e.order_id IS NOT NULL AND l.state <> 'authorized'
                   ORDER BY n.id, l.verification_timestamp, l.id) v
           WHERE a.id = v.id;
          RETURN NULL;
        END $$`);
      await m.exec(`COMMENT ON FUNCTION skeldir_allocations_verify_inserted() IS 'Trigger function: marks newly written allocations verified when the ledger has verified their conversion''s order.'`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_attribution_allocations_verify ON attribution_allocations`);
      await m.exec(`CREATE TRIGGER trg_attribution_allocations_verify AFTER INSERT ON attribution_allocations
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION skeldir_allocations_verify_inserted()`);
    });
  },

  async down(m) {
    const app = ident(m.roles.app);
    await m.transaction(async () => {
      await m.exec(`DROP TRIGGER IF EXISTS trg_attribution_allocations_verify ON attribution_allocations`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_allocations_verify_inserted()`);
      await m.exec(`DROP TABLE IF EXISTS fx_rates`);
      await m.exec(`DROP TABLE IF EXISTS webhook_deliveries`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_webhook_endpoint(uuid)`);
      await m.exec(`DROP TABLE IF EXISTS webhook_endpoints`);
      await m.exec(`DROP TABLE IF EXISTS revenue_ledger_references`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_transition_update ON revenue_ledger`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_transition_insert ON revenue_ledger`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_revenue_ledger_state_machine ON revenue_ledger`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_revenue_ledger_record_transition()`);
      await m.exec(`DROP FUNCTION IF EXISTS skeldir_revenue_ledger_guard()`);
      await m.exec(`GRANT INSERT ON revenue_state_transitions TO ${app}`);
    });
    await m.dropIndex('idx_revenue_ledger_tenant_order');
    await m.ddl(`ALTER TABLE revenue_ledger
      DROP CONSTRAINT IF EXISTS ck_revenue_ledger_refunded_cents_range,
      DROP CONSTRAINT IF EXISTS ck_revenue_ledger_chargeback_cents_range,
      DROP COLUMN IF EXISTS refunded_cents,
      DROP COLUMN IF EXISTS chargeback_cents`);
    await m.ddl(`ALTER TABLE tenants DROP CONSTRAINT IF EXISTS ck_tenants_reporting_currency_format, DROP COLUMN IF EXISTS reporting_currency`);
  },
};
