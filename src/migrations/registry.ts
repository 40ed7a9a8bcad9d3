import type { Revision } from './revision.js';
import { revision as r202511141300 } from './revisions/202511141300_legacy_core.js';
import { revision as r202511141311 } from './revisions/202511141311_legacy_event_tables.js';
import { revision as r202511151400 } from './revisions/202511151400_add_tenants_auth_columns.js';
import { revision as r202511151410 } from './revisions/202511151410_realign_attribution_events.js';
import { revision as r202511151420 } from './revisions/202511151420_add_allocations_statistical_fields.js';
import { revision as r202511151430 } from './revisions/202511151430_realign_revenue_ledger.js';
import { revision as r202511151440 } from './revisions/202511151440_add_dead_events_retry_tracking.js';
import { revision as r202511151450 } from './revisions/202511151450_create_revenue_state_transitions.js';
import { revision as r202611280012 } from './revisions/202611280012_api_key_authentication.js';
import { revision as r202611280016 } from './revisions/202611280016_attribution_settings_and_runs.js';
import { revision as r202611280017 } from './revisions/202611280017_ingestion_event_columns.js';
import { revision as r202611280020 } from './revisions/202611280020_revenue_ledger_webhooks_fx.js';
import { revision as r202611280021 } from './revisions/202611280021_worker_queue.js';
import { revision as r202611280023 } from './revisions/202611280023_api_key_rotation.js';
import { revision as r202611280052 } from './revisions/202611280052_worker_policies_system_only.js';
import { revision as r202611280059 } from './revisions/202611280059_webhook_endpoint_policy_system_only.js';
import { revision as r202611280152 } from './revisions/202611280152_api_key_policies_system_only.js';
import { revision as r202611280202 } from './revisions/202611280202_tenant_scoped_foreign_keys.js';
import { revision as r202611280300 } from './revisions/202611280300_revenue_ledger_insert_guard.js';
import { revision as r202611280313 } from './revisions/202611280313_worker_claim_due_index.js';
import { revision as r202611280318 } from './revisions/202611280318_order_verification_lock.js';
import { revision as r202611280409 } from './revisions/202611280409_revenue_ledger_captured_cents.js';
import { revision as r202612021840 } from './revisions/202612021840_users_and_sessions.js';
import { revision as r202612021845 } from './revisions/202612021845_export_keyset_indexes.js';
import { revision as r202612021925 } from './revisions/202612021925_erasure_audit.js';
import { revision as r202612021946 } from './revisions/202612021946_tenant_channels_and_rules.js';
import { revision as r202612021950 } from './revisions/202612021950_retention.js';
import { revision as r202612021954 } from './revisions/202612021954_first_party_collection.js';
import { revision as r202612021955 } from './revisions/202612021955_ad_spend.js';
import { revision as r202612022104 } from './revisions/202612022104_web_settings_grants.js';
import { revision as r202612022129 } from './revisions/202612022129_last_non_direct_and_exclusions.js';
import { revision as r202612022221 } from './revisions/202612022221_report_indexes.js';
import { revision as r202612022246 } from './revisions/202612022246_login_failures.js';
import { revision as r202612030600 } from './revisions/202612030600_tenant_scoped_keys.js';
import { revision as r202612030620 } from './revisions/202612030620_attribution_run_totals.js';
import { revision as r202612071600 } from './revisions/202612071600_ledger_verification_index.js';

/**
 * The revision chain, oldest first. Append new revisions at the end, with `down` naming the
 * previous one; `checkChain` (run at start-up and by the tests) refuses anything else.
 */
export const REVISIONS: readonly Revision[] = [
  r202511141300,
  r202511141311,
  r202511151400,
  r202511151410,
  r202511151420,
  r202511151430,
  r202511151440,
  r202511151450,
  r202611280012,
  r202611280016,
  r202611280017,
  r202611280020,
  r202611280021,
  r202611280023,
  r202611280052,
  r202611280059,
  r202611280152,
  r202611280202,
  r202611280300,
  r202611280313,
  r202611280318,
  r202611280409,
  r202612021840,
  r202612021845,
  r202612021925,
  r202612021946,
  r202612021950,
  r202612021954,
  r202612021955,
  r202612022104,
  r202612022129,
  r202612022221,
  r202612022246,
  r202612030600,
  r202612030620,
  r202612071600,
];

/** The last revision of the legacy schema, SPEC §1.1. */
export const LEGACY_HEAD = '202511141311';
/** The six migrations of the design document (phases 4, 5, 6, 7, 8a, 8b). */
export const DOCUMENT_REVISIONS = ['202511151400', '202511151410', '202511151420', '202511151430', '202511151440', '202511151450'] as const;

export function checkChain(revisions: readonly Revision[] = REVISIONS): void {
  let previous: string | null = null;
  for (const r of revisions) {
    if (!/^\d{12}$/.test(r.id)) throw new Error(`revision id ${r.id} is not 12 digits`);
    if (r.previous !== previous) throw new Error(`revision ${r.id} follows ${r.previous ?? 'base'}, but the chain has ${previous ?? 'base'} before it`);
    if (previous !== null && r.id <= previous) throw new Error(`revision ${r.id} does not sort after ${previous}`);
    previous = r.id;
  }
}

export function headRevision(revisions: readonly Revision[] = REVISIONS): string {
  return revisions[revisions.length - 1]!.id;
}
