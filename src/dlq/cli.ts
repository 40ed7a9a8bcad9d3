import type { Command } from 'commander';
import type pg from 'pg';
import { UsageError, runCommand } from '../cli/run.js';
import { withTenant } from '../db/tenant-context.js';
import { applyRemediation, getDeadEvent, listDeadEvents, MAX_PAGE, parseInstant, type DeadEventFilter, type DeadEventSummary } from './store.js';
import { isRemediationStatus, REMEDIATION_ACTIONS, type RemediationAction, type RemediationStatus } from './transitions.js';
import { instantsReplacer } from '../db/timestamps.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `skeldir dlq`: the dead-letter queue for an administrator. It acts as the schema owner, which
 * row-level security confines like everyone else (FORCE), so every command works in one
 * tenant's context: `--tenant ID` is required, except for `list`, which without it walks every
 * tenant (owner-side, one tenant context at a time) and merges the pages.
 */
export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('inspect and remediate dead events (events the worker gave up on)');

  dlq
    .command('list')
    .description('dead events, newest first (all tenants unless --tenant)')
    .option('--tenant <id>', 'only this tenant (needed for --cursor)')
    .option('--status <list>', 'remediation statuses, comma-separated (pending,in_progress,resolved,ignored)')
    .option('--error-type <type>', 'validation, data, transient, timeout or internal')
    .option('--event-type <type>', 'touchpoint, conversion, …')
    .option('--source <source>', 'worker, or a legacy source')
    .option('--from <time>', 'created at or after (RFC 3339 with offset, e.g. 2026-11-01T00:00:00Z, or a date; years 0001-9999)')
    .option('--to <time>', 'created before (same form as --from)')
    .option('--limit <n>', `page size, 1 to ${MAX_PAGE}`, '50')
    .option('--cursor <cursor>', 'next page (printed after a full page; with --tenant)')
    .option('--json', 'print {"items": [...], "next_cursor": ...} as JSON')
    .action((o: Record<string, string | boolean | undefined>) =>
      runCommand(async (ctx) => {
        const filter = listFilter(o);
        if (o.cursor !== undefined && o.tenant === undefined) throw new UsageError('--cursor needs --tenant (pages across all tenants are not resumable)');
        const db = await ctx.database();
        const pool = db.ownerPool({ max: 1, applicationName: 'skeldir-dlq' });
        try {
          let page: { items: DeadEventSummary[]; next_cursor: string | null };
          if (typeof o.tenant === 'string') {
            page = await withTenant(pool, tenantId(o.tenant), (c) => listDeadEvents(c, tenantId(o.tenant as string), filter));
          } else {
            // The owner sees every tenant (tenants' RLS is not forced); dead events only one tenant at a time.
            const tenants = (await pool.query<{ id: string }>('SELECT id FROM tenants ORDER BY id')).rows.map((r) => r.id);
            const items: DeadEventSummary[] = [];
            for (const t of tenants) items.push(...(await withTenant(pool, t, (c) => listDeadEvents(c, t, { ...filter, cursor: undefined }))).items);
            items.sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1));
            page = { items: items.slice(0, filter.limit), next_cursor: null };
          }
          if (o.json) process.stdout.write(JSON.stringify(page, instantsReplacer, 2) + '\n');
          else process.stdout.write(table(page.items, typeof o.tenant !== 'string') + (page.next_cursor ? `next page: --cursor ${page.next_cursor}\n` : ''));
        } finally {
          await pool.end();
        }
      }),
    );

  dlq
    .command('show')
    .description('one dead event in full (JSON): error, trace, notes, payload, the event\'s status')
    .argument('<id>', 'dead event id')
    .requiredOption('--tenant <id>', 'the tenant it belongs to (see `dlq list`)')
    .action((id: string, o: { tenant: string }) =>
      runCommand(async (ctx) => {
        const dead = await inTenant(ctx, o.tenant, (c, t) => getDeadEvent(c, t, deadEventId(id)));
        process.stdout.write(JSON.stringify(dead, instantsReplacer, 2) + '\n');
      }),
    );

  const ACTION_HELP: Record<RemediationAction, string> = {
    start: 'take it in hand: pending → in_progress',
    retry: 're-queue its event (after a fix): pending|in_progress → in_progress; the worker resolves it once processed',
    resolve: 'in_progress → resolved',
    ignore: 'in_progress → ignored',
    reopen: 'in_progress → pending',
  };
  for (const action of REMEDIATION_ACTIONS) {
    dlq
      .command(action)
      .description(ACTION_HELP[action])
      .argument('<id>', 'dead event id')
      .requiredOption('--tenant <id>', 'the tenant it belongs to (see `dlq list`)')
      .option('--notes <text>', 'a note, appended to the remediation notes')
      .action((id: string, o: { tenant: string; notes?: string }) =>
        runCommand(async (ctx) => {
          const dead = await inTenant(ctx, o.tenant, async (c, t) => {
            const before = (await getDeadEvent(c, t, deadEventId(id))).remediation_status;
            const after = await applyRemediation(c, t, id, action, { actor: 'cli', ...(o.notes !== undefined ? { notes: o.notes } : {}) });
            return { before, after };
          });
          const requeued = action === 'retry' ? `; event ${dead.after.event_id} re-queued` : '';
          process.stdout.write(`dead event ${id}: ${dead.before} -> ${dead.after.remediation_status}${requeued}\n`);
        }),
      );
  }
}

async function inTenant<T>(ctx: { database(): Promise<import('../db/database.js').Database> }, tenant: string, fn: (c: pg.PoolClient, tenantId: string) => Promise<T>): Promise<T> {
  const id = tenantId(tenant);
  const db = await ctx.database();
  const pool = db.ownerPool({ max: 1, applicationName: 'skeldir-dlq' });
  try {
    return await withTenant(pool, id, (c) => fn(c, id));
  } finally {
    await pool.end();
  }
}

function tenantId(s: string): string {
  if (!UUID.test(s)) throw new UsageError(`--tenant must be a tenant id (UUID), got ${JSON.stringify(s)}`);
  return s.toLowerCase();
}

function deadEventId(s: string): string {
  if (!UUID.test(s)) throw new UsageError(`the dead event id must be a UUID, got ${JSON.stringify(s)}`);
  return s.toLowerCase();
}

function listFilter(o: Record<string, string | boolean | undefined>): DeadEventFilter {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const limit = Number(str('limit'));
  if (!/^\d+$/.test(str('limit') ?? '') || limit < 1 || limit > MAX_PAGE) throw new UsageError(`--limit must be an integer from 1 to ${MAX_PAGE}`);
  const f: DeadEventFilter = { limit };
  const status = str('status');
  if (status !== undefined) {
    const list = status.split(',').map((s) => s.trim());
    for (const s of list) if (!isRemediationStatus(s)) throw new UsageError(`--status: ${JSON.stringify(s)} is not one of pending, in_progress, resolved, ignored`);
    f.status = list as RemediationStatus[];
  }
  for (const [flag, key] of [['errorType', 'errorType'], ['eventType', 'eventType'], ['source', 'source']] as const) {
    const v = str(flag);
    if (v !== undefined) f[key] = v;
  }
  for (const key of ['from', 'to'] as const) {
    const v = str(key);
    if (v === undefined) continue;
    try {
      f[key] = parseInstant(`--${key}`, v);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }
  const cursor = str('cursor');
  if (cursor !== undefined) f.cursor = cursor;
  return f;
}

function table(items: DeadEventSummary[], withTenant: boolean): string {
  if (items.length === 0) return 'no dead events\n';
  const head = ['created_at', 'id', ...(withTenant ? ['tenant'] : []), 'status', 'event_type', 'error_type', 'retries', 'message'];
  const rows = items.map((d) => [
    d.created_at,
    d.id,
    ...(withTenant ? [d.tenant_id] : []),
    d.remediation_status,
    d.event_type,
    d.error_type,
    String(d.retry_count),
    d.error_message.replace(/\s+/g, ' ').slice(0, 60),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
