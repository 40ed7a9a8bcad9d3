import type { Revision } from '../revision.js';

/**
 * The intervals of attribution totals (issue 12): per run of a population model (markov,
 * shapley, bayesian), per channel and per (channel, campaign), in each conversion currency, the
 * total the run allocated and the central 94 % interval of that TOTAL, computed from the draws
 * of the total (bayesian: posterior draws; markov, shapley: bootstrap replicates), not by adding
 * up the allocations' own bounds, which is no interval of the sum.
 *
 * - idx_attribution_model_runs_tenant_id: (tenant_id, id) of the runs, so the totals can reference
 *   their run by a key that holds the distribution column (Citus: tenant_id in every key).
 * - campaign_id '' : the touches credited had no campaign; channel rows have '' too (level says
 *   which), so the primary key needs no nullable column.
 */
export const revision: Revision = {
  id: '202612030620',
  previous: '202612030600',
  title: 'attribution run totals: the interval of each channel and campaign total',
  dropsOnDowngrade: [{ table: 'attribution_run_totals' }],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`CREATE UNIQUE INDEX IF NOT EXISTS idx_attribution_model_runs_tenant_id ON attribution_model_runs (tenant_id, id)`);
      await m.exec(`COMMENT ON INDEX idx_attribution_model_runs_tenant_id IS 'A run by tenant and id: the key attribution_run_totals references.'`);
      await m.exec(`
        CREATE TABLE IF NOT EXISTS attribution_run_totals (
          tenant_id uuid NOT NULL,
          run_id uuid NOT NULL,
          level varchar(8) NOT NULL,
          channel_code text NOT NULL,
          campaign_id varchar(255) NOT NULL DEFAULT '',
          currency varchar(3) NOT NULL,
          total_cents bigint NOT NULL,
          lower_cents bigint NOT NULL,
          upper_cents bigint NOT NULL,
          interval_mass numeric(4,3) NOT NULL,
          interval_method varchar(20) NOT NULL,
          draws integer NOT NULL,
          convergence_r_hat numeric(6,4),
          effective_sample_size integer,
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_attribution_run_totals PRIMARY KEY (tenant_id, run_id, level, channel_code, campaign_id, currency),
          CONSTRAINT fk_attribution_run_totals_run FOREIGN KEY (tenant_id, run_id) REFERENCES attribution_model_runs (tenant_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_attribution_run_totals_level CHECK (level IN ('channel', 'campaign')),
          CONSTRAINT ck_attribution_run_totals_channel_campaign CHECK (level = 'campaign' OR campaign_id = ''),
          CONSTRAINT ck_attribution_run_totals_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
          CONSTRAINT ck_attribution_run_totals_interval CHECK (0 <= lower_cents AND lower_cents <= total_cents AND total_cents <= upper_cents),
          CONSTRAINT ck_attribution_run_totals_mass CHECK (interval_mass > 0 AND interval_mass < 1),
          CONSTRAINT ck_attribution_run_totals_method CHECK (interval_method IN ('posterior_draws', 'bootstrap')),
          CONSTRAINT ck_attribution_run_totals_draws CHECK (draws > 0)
        )`);
      await m.tenantPolicy('attribution_run_totals');
      await m.grantApp('attribution_run_totals', 'SELECT, INSERT, DELETE');
      await m.comment('attribution_run_totals', 'Per run of a population model, per channel and per (channel, campaign) and currency: the total allocated and the interval of that total from the draws of the total.', {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        run_id: 'The run (attribution_model_runs) whose allocations the total sums.',
        level: "'channel': the channel's total over all its campaigns; 'campaign': one campaign of the channel.",
        channel_code: "The tenant's channel.",
        campaign_id: "The campaign of the touches credited ('' : none; always '' on channel rows).",
        currency: 'ISO 4217 code of the conversions summed (a total never mixes currencies). INVARIANT: financial_critical',
        total_cents: 'Sum of the allocated_revenue_cents the run wrote for this channel (and campaign) in this currency. INVARIANT: financial_critical',
        lower_cents: 'Lower bound of the central interval of the total: its (1 − mass)/2 quantile over the draws, rounded down (and never above total_cents). INVARIANT: financial_critical',
        upper_cents: 'Upper bound: the (1 + mass)/2 quantile over the draws, rounded up (and never below total_cents). INVARIANT: financial_critical',
        interval_mass: 'Probability mass of the interval (0.94).',
        interval_method: "posterior_draws (bayesian: the total computed for every posterior draw) or bootstrap (markov, shapley: for every bootstrap replicate).",
        draws: 'Draws (or replicates) with a finite total that the quantiles were taken over.',
        convergence_r_hat: 'Rank-normalised split R-hat of the total over the chains (bayesian; NULL otherwise or when every draw is the same).',
        effective_sample_size: 'Bulk effective sample size of the total (bayesian; NULL otherwise or when every draw is the same).',
        created_at: 'When the run stored it.',
      });
    });
  },

  async down(m) {
    await m.exec('DROP TABLE IF EXISTS attribution_run_totals');
    await m.exec('DROP INDEX IF EXISTS idx_attribution_model_runs_tenant_id');
  },
};
