import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { rng } from './rng.js';

/**
 * Legacy rows of every shape SPEC §1.2 distinguishes, generated in JS so the test knows,
 * independently of the migration's SQL, what each backfilled value must be.
 */
export interface LegacyEvent {
  id: string;
  tenant_id: string;
  occurred_at: string;
  external_event_id: string | null;
  correlation_id: string | null;
  session_id: string | null;
  revenue_cents: number;
  raw_payload: Record<string, unknown>;
}

export interface LegacyLedger {
  id: string;
  tenant_id: string;
  revenue_cents: number;
  is_verified: boolean;
  verified_at: string | null;
}

export interface LegacyAllocation {
  id: string;
  tenant_id: string;
  event_id: string;
  channel_code: string;
  allocated_revenue_cents: number;
  /** numeric(6,5) as text, e.g. "0.12345". */
  allocation_ratio: string;
}

export interface LegacyDead {
  id: string;
  tenant_id: string;
  source: string;
  error_code: string;
  error_detail: Record<string, unknown>;
  raw_payload: Record<string, unknown>;
}

export interface LegacyData {
  tenants: { id: string; name: string }[];
  events: LegacyEvent[];
  ledger: LegacyLedger[];
  allocations: LegacyAllocation[];
  dead: LegacyDead[];
}

const CHANNELS = ['facebook_paid', 'google_search_paid', 'email', 'direct', 'unknown'];

export function generateLegacyData(options: { tenants?: number; events?: number; ledger?: number; allocations?: number; dead?: number; seed?: number } = {}): LegacyData {
  const random = rng(options.seed ?? 42);
  const int = (n: number) => Math.floor(random() * n);
  const tenants = Array.from({ length: options.tenants ?? 3 }, (_, i) => ({ id: randomUUID(), name: `Legacy tenant ${i}` }));
  const pick = () => tenants[int(tenants.length)]!.id;
  const time = () => new Date(Date.UTC(2025, 0, 1) + int(300 * 86400_000)).toISOString();

  const events: LegacyEvent[] = [];
  for (let i = 0; i < (options.events ?? 12_000); i++) {
    const shape = i % 6;
    const external =
      shape === 0 || shape === 4 ? `ext-${i}-${int(1e9)}` : shape === 1 ? `long-${i}-` + 'x'.repeat(240) : null;
    const correlation = shape === 2 || shape === 4 ? randomUUID() : null;
    const session = shape === 0 || shape === 4 || shape === 5 ? randomUUID() : null;
    events.push({
      id: randomUUID(),
      tenant_id: pick(),
      occurred_at: time(),
      external_event_id: external,
      correlation_id: correlation,
      session_id: session,
      revenue_cents: i % 4 === 0 ? 0 : int(1_000_000),
      raw_payload: i % 2 === 0 ? { event_type: i % 4 === 0 ? 'touchpoint' : 'conversion', n: i } : { n: i },
    });
  }

  const ledger: LegacyLedger[] = [];
  for (let i = 0; i < (options.ledger ?? 10_000); i++) {
    const shape = i % 3;
    ledger.push({
      id: randomUUID(),
      tenant_id: pick(),
      revenue_cents: int(5_000_000),
      is_verified: shape !== 2,
      verified_at: shape === 0 ? time() : null,
    });
  }

  const allocations: LegacyAllocation[] = [];
  for (let i = 0; i < (options.allocations ?? 10_000); i++) {
    const event = events[int(events.length)]!;
    const ratio = i % 10 === 0 ? (i % 20 === 0 ? 100000 : 0) : int(100001);
    allocations.push({
      id: randomUUID(),
      tenant_id: event.tenant_id,
      event_id: event.id,
      channel_code: CHANNELS[int(CHANNELS.length)]!,
      allocated_revenue_cents: int(100_000),
      allocation_ratio: (ratio / 100000).toFixed(5),
    });
  }

  const dead: LegacyDead[] = [];
  for (let i = 0; i < (options.dead ?? 10_000); i++) {
    const shape = i % 4;
    dead.push({
      id: randomUUID(),
      tenant_id: pick(),
      source: ['ingestion', 'worker', 'webhook'][i % 3]!,
      error_code: shape === 3 ? 'E'.repeat(120) : ['validation_error', 'timeout', 'parse_error'][i % 3]!,
      error_detail:
        shape === 0 ? { message: `bad field ${i}`, traceback: `at line ${i}` } : shape === 1 ? { message: `boom ${i}`, stack: `Error\n  at f (${i})` } : { code: i },
      raw_payload: shape === 2 ? { event_type: 'conversion', i } : { i },
    });
  }
  return { tenants, events, ledger, allocations, dead };
}

/** Inserts the rows as the superuser (bypassing row-level security), in chunks. */
export async function insertLegacyData(client: pg.ClientBase, data: LegacyData): Promise<void> {
  await client.query(`INSERT INTO tenants (id, name) SELECT * FROM unnest($1::uuid[], $2::text[])`, [
    data.tenants.map((t) => t.id),
    data.tenants.map((t) => t.name),
  ]);
  for (const chunk of chunks(data.events, 2000)) {
    await client.query(
      `INSERT INTO attribution_events (id, tenant_id, occurred_at, external_event_id, correlation_id, session_id, revenue_cents, raw_payload)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::uuid[], $7::int[], $8::jsonb[])`,
      [
        chunk.map((e) => e.id), chunk.map((e) => e.tenant_id), chunk.map((e) => e.occurred_at), chunk.map((e) => e.external_event_id),
        chunk.map((e) => e.correlation_id), chunk.map((e) => e.session_id), chunk.map((e) => e.revenue_cents),
        chunk.map((e) => JSON.stringify(e.raw_payload)),
      ],
    );
  }
  for (const chunk of chunks(data.ledger, 2000)) {
    await client.query(
      `INSERT INTO revenue_ledger (id, tenant_id, revenue_cents, is_verified, verified_at)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::bool[], $5::timestamptz[])`,
      [chunk.map((l) => l.id), chunk.map((l) => l.tenant_id), chunk.map((l) => l.revenue_cents), chunk.map((l) => l.is_verified), chunk.map((l) => l.verified_at)],
    );
  }
  for (const chunk of chunks(data.allocations, 2000)) {
    await client.query(
      `INSERT INTO attribution_allocations (id, tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::numeric[])`,
      [chunk.map((a) => a.id), chunk.map((a) => a.tenant_id), chunk.map((a) => a.event_id), chunk.map((a) => a.channel_code), chunk.map((a) => a.allocated_revenue_cents), chunk.map((a) => a.allocation_ratio)],
    );
  }
  for (const chunk of chunks(data.dead, 2000)) {
    await client.query(
      `INSERT INTO dead_events (id, tenant_id, source, error_code, error_detail, raw_payload)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])`,
      [chunk.map((d) => d.id), chunk.map((d) => d.tenant_id), chunk.map((d) => d.source), chunk.map((d) => d.error_code), chunk.map((d) => JSON.stringify(d.error_detail)), chunk.map((d) => JSON.stringify(d.raw_payload))],
    );
  }
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The idempotency key SPEC §1.2 says a legacy event gets, computed independently of the SQL. */
export function expectedIdempotencyKey(e: LegacyEvent): string {
  if (e.external_event_id !== null) {
    return e.external_event_id.length <= 200
      ? `${e.tenant_id}:ext:${e.external_event_id}`
      : `${e.tenant_id}:ext-sha256:${createHash('sha256').update(e.external_event_id, 'utf8').digest('hex')}`;
  }
  if (e.correlation_id !== null) return `${e.tenant_id}:corr:${e.correlation_id}`;
  return `${e.tenant_id}:id:${e.id}`;
}

/** The synthetic session of a legacy event without one: md5('skeldir:legacy-session:' || id) as a uuid. */
export function expectedSyntheticSession(id: string): string {
  const h = createHash('md5').update(`skeldir:legacy-session:${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** round(numeric(6,5), 3) as PostgreSQL does it (half away from zero), from the text form. */
export function roundRatio3(ratio: string): string {
  const fifths = Math.round(Number(ratio) * 100000);
  const thousandths = Math.floor((fifths + 50) / 100);
  return (thousandths / 1000).toFixed(3);
}
