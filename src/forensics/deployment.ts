import type pg from 'pg';
import type { Session } from './session.js';
import type { Check } from './types.js';

/**
 * Which kind of database the protocol runs on. `citus`: the citus extension is installed and at
 * least one table is distributed or replicated (`skeldir citus distribute` ran); its schema then
 * differs from the design document in the places docs/scaling.md lists, and the protocol checks
 * the distributed equivalent there instead (protocol.ts, `citus` of a test), reporting the gate
 * EQUIVALENT with the difference and why. A Citus database nothing was distributed in is still
 * one server's schema: `postgresql`.
 */
export type Deployment =
  | { kind: 'postgresql' }
  | { kind: 'citus'; version: string; workers: number; distributed: string[]; reference: string[] };

export async function detectDeployment(client: pg.ClientBase): Promise<Deployment> {
  const ext = await client.query<{ v: string }>(`SELECT extversion AS v FROM pg_extension WHERE extname = 'citus'`);
  if (ext.rows.length === 0) return { kind: 'postgresql' };
  const tables = (await client.query<{ t: string; type: string }>(
    `SELECT logicalrelid::regclass::text AS t, CASE WHEN partmethod = 'h' THEN 'distributed' WHEN repmodel = 't' THEN 'reference' ELSE 'other' END AS type
       FROM pg_dist_partition ORDER BY 1`,
  )).rows;
  const distributed = tables.filter((t) => t.type === 'distributed').map((t) => t.t);
  const reference = tables.filter((t) => t.type === 'reference').map((t) => t.t);
  if (distributed.length === 0 && reference.length === 0) return { kind: 'postgresql' };
  const workers = Number((await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid <> 0`)).rows[0]!.n);
  return { kind: 'citus', version: ext.rows[0]!.v, workers, distributed, reference };
}

/**
 * The same catalogue question asked of every shard of `table` (run_command_on_shards: `%s` is the
 * shard's name), passing when each shard answers `1`: a constraint dropped on one worker's shard
 * fails it, not only one dropped on the coordinator.
 */
export async function onEveryShard(session: Session, table: string, label: string, expected: string, command: string): Promise<Check> {
  const { rows } = await session.query<{ shardid: string; success: boolean; result: string }>(
    `SELECT shardid::text, success, result FROM run_command_on_shards($1, $2) ORDER BY shardid`,
    [table, command],
  );
  const bad = rows.filter((r) => !r.success || r.result !== '1');
  return {
    label: `${label}, on every shard of ${table}`,
    expected: `${expected} on each shard`,
    actual: rows.length === 0
      ? 'no shards (the table is not distributed)'
      : bad.length === 0
        ? `${expected} on ${rows.length}/${rows.length} shards`
        : `${rows.length - bad.length}/${rows.length} shards; missing on shard ${bad.slice(0, 5).map((r) => `${r.shardid}${r.success ? '' : ` (${r.result})`}`).join(', ')}${bad.length > 5 ? ', …' : ''}`,
    pass: rows.length > 0 && bad.length === 0,
  };
}

/** The table is distributed by tenant_id, colocated with attribution_events (every key below is then enforced per tenant on one shard). */
export async function distributedByTenantChecks(session: Session, table: string): Promise<Check> {
  const { rows } = await session.query<{ col: string | null; colocated: boolean }>(
    `SELECT column_to_column_name(p.logicalrelid, p.partkey) AS col,
            p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'public.attribution_events'::regclass) AS colocated
       FROM pg_dist_partition p WHERE p.logicalrelid = to_regclass($1) AND p.partmethod = 'h'`,
    [`public.${table}`],
  );
  const r = rows[0];
  return {
    label: `${table} distribution`,
    expected: 'distributed by tenant_id, colocated with attribution_events',
    actual: r ? `distributed by ${r.col}${r.colocated ? ', colocated with attribution_events' : ', in another colocation group'}` : 'not a distributed table',
    pass: !!r && r.col === 'tenant_id' && r.colocated,
  };
}
