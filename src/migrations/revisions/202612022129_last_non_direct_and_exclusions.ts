import type { Revision } from '../revision.js';

const MODELS = `'first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian'`;
const PREVIOUS_MODELS = `'first_touch', 'last_touch', 'linear', 'time_decay', 'position_based', 'markov', 'shapley', 'bayesian'`;

/**
 * The `last_non_direct` rule model (GA4's default: the last touch that is not direct, else the
 * last touch) and per-tenant channel exclusions for the rule models (issue 12):
 * - the model lists of ck_attribution_settings_models and ck_attribution_model_runs_model_type
 *   gain last_non_direct (each CHECK replaced NOT VALID, then validated without blocking writes);
 * - attribution_settings.excluded_channels: channels whose touches the rule models leave out of a
 *   path (a path of excluded touches only keeps them: the credit has to go somewhere).
 * A downgrade deletes last_non_direct allocations, runs and settings entries (they cannot exist before).
 */
export const revision: Revision = {
  id: '202612022129',
  previous: '202612022104',
  title: 'last_non_direct rule model, channel exclusions for the rule models',
  dropsOnDowngrade: [{ table: 'attribution_settings', columns: ['excluded_channels'] }],

  async up(m) {
    await m.ddl(`ALTER TABLE attribution_settings ADD COLUMN IF NOT EXISTS excluded_channels text[] NOT NULL DEFAULT '{}'`);
    await m.addCheck('attribution_settings', 'ck_attribution_settings_excluded_channels', `cardinality(excluded_channels) <= 100`);
    await m.comment('attribution_settings', null, {
      excluded_channels: "Channel codes the rule models (first_touch … position_based, last_non_direct) leave out of a path; a path whose touches are all excluded keeps them. Population models ignore it.",
      models: 'Models computed for the tenant: rule models per conversion by the worker (first_touch, last_touch, last_non_direct, linear, time_decay, position_based), population models (markov, shapley, bayesian) by scheduled runs.',
    });
    await replaceCheck(m, 'attribution_settings', 'ck_attribution_settings_models', `cardinality(models) >= 1 AND models <@ ARRAY[${MODELS}]::varchar(50)[]`);
    await replaceCheck(m, 'attribution_model_runs', 'ck_attribution_model_runs_model_type', `model_type IN (${MODELS})`);
    await m.comment('attribution_allocations', null, {
      model_type: 'Attribution model that produced the allocation (first_touch, last_touch, last_non_direct, linear, time_decay, position_based, markov, shapley, bayesian). INVARIANT: statistical_integrity',
    });
  },

  async down(m) {
    for (const tenant of await m.tenantIds()) {
      await m.transaction(async () => {
        await m.exec(`SELECT set_config('app.current_tenant_id', $1, true)`, [tenant]);
        await m.exec(`DELETE FROM attribution_allocations WHERE tenant_id = $1::uuid AND model_type = 'last_non_direct'`, [tenant]);
        await m.exec(`DELETE FROM attribution_model_runs WHERE tenant_id = $1::uuid AND model_type = 'last_non_direct'`, [tenant]);
        await m.exec(`UPDATE attribution_settings SET models = array_remove(models, 'last_non_direct'::varchar(50)) WHERE tenant_id = $1::uuid`, [tenant]);
        await m.exec(`DELETE FROM attribution_settings WHERE tenant_id = $1::uuid AND cardinality(models) = 0`, [tenant]);
      });
    }
    await replaceCheck(m, 'attribution_model_runs', 'ck_attribution_model_runs_model_type', `model_type IN (${PREVIOUS_MODELS})`);
    await replaceCheck(m, 'attribution_settings', 'ck_attribution_settings_models', `cardinality(models) >= 1 AND models <@ ARRAY[${PREVIOUS_MODELS}]::varchar(50)[]`);
    await m.dropConstraint('attribution_settings', 'ck_attribution_settings_excluded_channels');
    await m.ddl(`ALTER TABLE attribution_settings DROP COLUMN IF EXISTS excluded_channels`);
    await m.comment('attribution_allocations', null, {
      model_type: 'Attribution model that produced the allocation (first_touch, last_touch, linear, time_decay, position_based, markov, shapley, bayesian). INVARIANT: statistical_integrity',
    });
    await m.comment('attribution_settings', null, {
      models: 'Models computed for the tenant: heuristics per conversion by the worker, population models (markov, shapley, bayesian) by scheduled runs.',
    });
  },
};

async function replaceCheck(m: Parameters<Revision['up']>[0], table: string, name: string, expression: string): Promise<void> {
  await m.transaction(async () => {
    await m.exec(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${name}`);
    await m.exec(`ALTER TABLE ${table} ADD CONSTRAINT ${name} CHECK (${expression}) NOT VALID`);
  });
  await m.withoutLockTimeout(() => m.exec(`ALTER TABLE ${table} VALIDATE CONSTRAINT ${name}`));
}
