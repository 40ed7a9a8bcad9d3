import type { Revision } from '../revision.js';

const MODELS = `'first_touch', 'last_touch', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian'`;
const HEURISTICS = `ARRAY['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based']::varchar(50)[]`;

/**
 * The attribution engine's own tables (issue 6):
 * - attribution_settings: a tenant's configured models and parameters (one row per tenant; a
 *   tenant without a row gets the documented defaults);
 * - attribution_model_runs: every run of a model over a window, with its parameters, fitted
 *   results (Markov removal effects, Shapley values, posterior summaries), diagnostics and status;
 * - idx_attribution_events_journey: journey lookup (the touchpoints of one session in a window).
 * And the meaning of attribution_allocations.created_at for engine-written rows: the conversion's
 * event time, so that period reports are served by idx_allocations_channel_performance
 * (tenant_id, channel_code, created_at DESC) whenever the allocation was computed.
 */
export const revision: Revision = {
  id: '202611280016',
  previous: '202611280012',
  title: 'attribution settings, model runs and the journey index',
  dropsOnDowngrade: [{ table: 'attribution_settings' }, { table: 'attribution_model_runs' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS attribution_settings (
          tenant_id uuid NOT NULL,
          models varchar(50)[] NOT NULL DEFAULT ${HEURISTICS},
          lookback_days integer NOT NULL DEFAULT 30,
          half_life_days numeric(8,3) NOT NULL DEFAULT 7,
          recompute_interval_minutes integer NOT NULL DEFAULT 1440,
          recompute_window_days integer NOT NULL DEFAULT 30,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_attribution_settings PRIMARY KEY (tenant_id),
          CONSTRAINT fk_attribution_settings_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_attribution_settings_models CHECK (cardinality(models) >= 1 AND models <@ ARRAY[${MODELS}]::varchar(50)[]),
          CONSTRAINT ck_attribution_settings_lookback_days CHECK (lookback_days BETWEEN 1 AND 365),
          CONSTRAINT ck_attribution_settings_half_life_days CHECK (half_life_days > 0 AND half_life_days <= 365),
          CONSTRAINT ck_attribution_settings_recompute_interval CHECK (recompute_interval_minutes BETWEEN 5 AND 10080),
          CONSTRAINT ck_attribution_settings_recompute_window CHECK (recompute_window_days BETWEEN 1 AND 366)
        )`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_attribution_settings_updated_at ON attribution_settings`);
      await m.exec(`CREATE TRIGGER trg_attribution_settings_updated_at BEFORE UPDATE ON attribution_settings
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('attribution_settings');
      await m.grantApp('attribution_settings', 'SELECT, INSERT, UPDATE, DELETE');
      await m.comment('attribution_settings', "A tenant's attribution configuration; a tenant without a row gets the defaults.", {
        tenant_id: 'The tenant configured; row-level security shows the row only in its context.',
        models: 'Models computed for the tenant: heuristics per conversion by the worker, population models (markov, shapley, bayesian) by scheduled runs.',
        lookback_days: 'Journey lookback window: touchpoints at most this many days before a conversion form its path.',
        half_life_days: 'Half-life of the time_decay model, in days (continuous time).',
        recompute_interval_minutes: 'How often the scheduler recomputes the configured population models.',
        recompute_window_days: 'The scheduler recomputes conversions of the last this many days.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS attribution_model_runs (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          tenant_id uuid NOT NULL,
          model_type varchar(50) NOT NULL,
          model_version text NOT NULL,
          window_from timestamptz NOT NULL,
          window_to timestamptz NOT NULL,
          trigger varchar(20) NOT NULL,
          status varchar(20) NOT NULL DEFAULT 'running',
          parameters jsonb NOT NULL,
          results jsonb,
          diagnostics jsonb,
          conversions integer,
          journeys integer,
          allocations integer,
          error text,
          started_at timestamptz NOT NULL DEFAULT now(),
          finished_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_attribution_model_runs PRIMARY KEY (id),
          CONSTRAINT fk_attribution_model_runs_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_attribution_model_runs_model_type CHECK (model_type IN (${MODELS})),
          CONSTRAINT ck_attribution_model_runs_window CHECK (window_from < window_to),
          CONSTRAINT ck_attribution_model_runs_trigger CHECK (trigger IN ('cli', 'schedule', 'api')),
          CONSTRAINT ck_attribution_model_runs_status CHECK (status IN ('running', 'succeeded', 'not_converged', 'failed'))
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_attribution_model_runs_tenant_model
        ON attribution_model_runs (tenant_id, model_type, started_at DESC)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_attribution_model_runs_updated_at ON attribution_model_runs`);
      await m.exec(`CREATE TRIGGER trg_attribution_model_runs_updated_at BEFORE UPDATE ON attribution_model_runs
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('attribution_model_runs');
      await m.grantApp('attribution_model_runs', 'SELECT, INSERT, UPDATE');
      await m.comment('attribution_model_runs', 'One run of an attribution model over a window of conversions: parameters, fitted results, diagnostics.', {
        id: 'Run identifier (UUID v4, generated); allocations name it in model_metadata.run_id.',
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        model_type: 'Model run (first_touch … bayesian).',
        model_version: 'Version of the model code that produced the run.',
        window_from: 'Start of the window of conversion times (inclusive).',
        window_to: 'End of the window of conversion times (exclusive).',
        trigger: 'What started the run: cli, schedule or api.',
        status: 'running, succeeded, not_converged (MCMC diagnostics failed: allocations kept from before) or failed.',
        parameters: 'Every parameter of the run (lookback, half-life, priors, sampler settings, seeds).',
        results: 'Fitted quantities: Markov removal effects and conversion probability, Shapley values, posterior summaries.',
        diagnostics: 'Convergence and quality diagnostics (R-hat, ESS, divergences, bootstrap replicates).',
        conversions: 'Conversions in the window.',
        journeys: 'Journeys (converting and non-converting) in the population.',
        allocations: 'Allocation rows the run wrote.',
        error: 'Why the run failed, when it did.',
        started_at: 'When the run started.',
        finished_at: 'When the run finished; NULL while running.',
        created_at: 'When the row was created.',
        updated_at: 'When the row last changed (maintained by trigger).',
      });
      await m.comment('attribution_allocations', null, {
        created_at:
          "When the row was created; rows written by the attribution engine carry their conversion's event time instead, so " +
          'period reports by conversion time are served by idx_allocations_channel_performance.',
      });
    });
    // Journey lookup: the touchpoints of one session before a conversion, in time order.
    await m.createIndex('idx_attribution_events_journey', 'attribution_events (tenant_id, session_id, event_timestamp)');
    await m.exec(`COMMENT ON INDEX idx_attribution_events_journey IS 'Journey lookup: touchpoints of a session in time order.'`);
  },

  async down(m) {
    await m.dropIndex('idx_attribution_events_journey');
    await m.exec('DROP TABLE IF EXISTS attribution_model_runs');
    await m.exec('DROP TABLE IF EXISTS attribution_settings');
    await m.comment('attribution_allocations', null, { created_at: 'When the row was created.' });
  },
};
