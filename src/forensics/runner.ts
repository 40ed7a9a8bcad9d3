import type pg from 'pg';
import type { Database } from '../db/database.js';
import { isConnectionError } from '../db/errors.js';
import { silentProgress, type Progress } from '../migrations/context.js';
import { MIGRATION_TABLE, SchemaMigrator } from '../migrations/migrator.js';
import { REVISIONS } from '../migrations/registry.js';
import type { Revision } from '../migrations/revision.js';
import { detectDeployment } from './deployment.js';
import { citusDifferences } from './differences.js';
import { lintSchema } from './lint.js';
import { PHASES, type PhaseSpec } from './protocol.js';
import { Session } from './session.js';
import type { CitusDifference, Count, ForensicReport, GateResult, PhaseResult, TestResult, Verdict } from './types.js';

export const DOCUMENT = 'seed/000_eb3e904667a5ea19.txt';

/** The run could not happen at all (exit 2): no database, or a schema the protocol cannot validate. */
export class ForensicsCannotRunError extends Error {
  readonly code = 'forensics_cannot_run';
}

export interface ForensicsOptions {
  /** `--apply`: upgrade to each phase's revision in turn, validating each before the next. */
  apply?: boolean;
  /** `--lint`: add the schema lint section. */
  lint?: boolean;
  /** The revision chain (tests inject a sabotaged one). */
  revisions?: readonly Revision[];
  /** The protocol (tests may narrow it; the CLI always runs all of it). */
  phases?: readonly PhaseSpec[];
  /** One line per step, for stderr. */
  onProgress?: (line: string) => void;
  /** Progress bars of the migrations' backfills under --apply. */
  migrationProgress?: Progress;
  batchSize?: number;
}

/**
 * Runs the document's forensic protocol against a database, phase by phase, as the schema
 * owner. A phase is validated only when its revision is applied and every earlier phase
 * passed; under `--apply` a phase's revision is applied first, then validated. The run stops
 * at the first phase that fails; later phases are reported NOT RUN.
 */
export async function runForensics(db: Database, options: ForensicsOptions = {}): Promise<ForensicReport> {
  const started = Date.now();
  const say = options.onProgress ?? (() => {});
  const revisions = options.revisions ?? REVISIONS;
  const phases = options.phases ?? PHASES;
  const pool = db.ownerPool({ max: 1, applicationName: 'skeldir-forensics' });
  const migrator = new SchemaMigrator(db.ownerPool({ max: 2, applicationName: 'skeldir-forensics-migrate' }), {
    roles: db.roles,
    revisions,
    progress: options.migrationProgress ?? silentProgress,
    batchSize: options.batchSize,
  });
  let client: pg.PoolClient | undefined;
  try {
    try {
      client = await pool.connect();
    } catch (error) {
      throw new ForensicsCannotRunError(`cannot reach PostgreSQL: ${(error as Error).message}`);
    }
    // Pin the search path: pg_get_constraintdef prints referenced tables unqualified only when visible.
    await client.query('SET search_path TO public');
    // On a live database never queue for long behind DDL (a catalogue probe's scratch table takes
    // ACCESS SHARE on the real one); behavioural probes also set these per transaction.
    await client.query(`SET lock_timeout = '5s'`);
    await client.query(`SET statement_timeout = '60s'`);
    const info = (await client.query<{ version: string; num: string; db: string; role: string }>(
      `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
              current_database() AS db, current_user AS role`,
    )).rows[0]!;
    const session = new Session(client, Number(info.num));
    session.deployment = await detectDeployment(client);
    const startRevision = await migrator.current();
    let applied = await appliedRevisions(client);

    const first = phases[0]!;
    if (!options.apply && !applied.has(first.revision)) {
      throw new ForensicsCannotRunError(
        `the database is at ${startRevision}, before phase ${first.phase} (revision ${first.revision}): nothing to validate; ` +
          'run `skeldir forensics --apply` to apply and validate the phases, or `skeldir migrate upgrade` first',
      );
    }
    const d = session.deployment;
    say(`forensics: PostgreSQL ${info.version}, database ${info.db} at revision ${startRevision}${options.apply ? ', --apply' : ''}` +
      (d.kind === 'citus' ? `; Citus ${d.version}, ${d.workers} workers, ${d.distributed.length} distributed and ${d.reference.length} reference tables: documented differences are checked as their distributed equivalents` : ''));

    const results: PhaseResult[] = [];
    let stop: string | undefined;
    let rollback: ForensicReport['rollback'];
    for (const spec of phases) {
      const phaseStarted = Date.now();
      const base = { phase: spec.phase, revision: spec.revision, previous: spec.previous, title: spec.title };
      if (stop) {
        results.push({ ...base, verdict: 'NOT RUN', reason: stop, gates: notRun(spec), durationMs: 0 });
        continue;
      }
      let migration: PhaseResult['migration'];
      if (!applied.has(spec.revision)) {
        if (!options.apply) {
          const reason = `revision ${spec.revision} is not applied (database at ${startRevision})`;
          results.push({ ...base, verdict: 'NOT RUN', reason, gates: notRun(spec), durationMs: 0 });
          say(`phase ${spec.phase}: NOT RUN (${reason})`);
          stop = `phase ${spec.phase} is not applied`;
          continue;
        }
        const from = await migrator.current();
        say(`phase ${spec.phase}: upgrading ${from} -> ${spec.revision}`);
        const t0 = Date.now();
        try {
          await migrator.upgrade(spec.revision);
          migration = { from, to: spec.revision, durationMs: Date.now() - t0 };
          applied = await appliedRevisions(client);
        } catch (error) {
          if (isConnectionError(error)) throw new ForensicsCannotRunError(`lost the database: ${(error as Error).message}`);
          const message = (error as Error).message;
          migration = { from, to: spec.revision, durationMs: Date.now() - t0, error: message };
          results.push({ ...base, verdict: 'FAIL', reason: `upgrade to ${spec.revision} failed: ${message}`, migration, gates: notRun(spec), durationMs: Date.now() - phaseStarted });
          say(`phase ${spec.phase}: FAIL (upgrade failed: ${message})`);
          stop = `phase ${spec.phase} failed`;
          rollback = {
            revision: spec.previous,
            command: `skeldir migrate downgrade ${spec.previous}`,
            message:
              `The upgrade to ${spec.revision} failed part-way; the database is still recorded at ${await migrator.current()}. ` +
              `\`skeldir migrate downgrade ${spec.previous}\` reverts the steps it completed (the next migrate run finishes ` +
              `an interrupted revision first, in the direction its target needs); or fix the cause and run ` +
              `\`skeldir forensics --apply\` again, which completes it.`,
          };
          continue;
        }
      }

      session.forgetSchema();
      const gates: GateResult[] = [];
      for (const gate of spec.gates) {
        const tests: TestResult[] = [];
        for (const test of gate.tests) {
          const result = await runTest(session, revisions, spec, gate.id, test);
          tests.push(result);
        }
        const verdict = gateVerdict(tests);
        gates.push({ id: gate.id, phase: spec.phase, title: gate.title, line: gate.line, foldedLines: gate.foldedLines, verdict, tests });
        const failed = tests.filter((t) => !passed(t.verdict)).map((t) => t.id);
        const equivalent = tests.filter((t) => t.verdict === 'EQUIVALENT').map((t) => t.id);
        say(`  ${gate.id} ${verdict} ${gate.title}${failed.length ? ` (failed: ${failed.join(', ')})` : ''}${equivalent.length ? ` (Citus equivalent: ${equivalent.join(', ')})` : ''}`);
      }
      const verdict: Verdict = gates.every((g) => passed(g.verdict)) ? 'PASS' : 'FAIL';
      results.push({ ...base, verdict, ...(migration ? { migration } : {}), gates, durationMs: Date.now() - phaseStarted });
      say(`phase ${spec.phase} (${spec.revision}): ${verdict}`);
      if (verdict === 'FAIL') {
        stop = `phase ${spec.phase} failed`;
        if (options.apply) {
          rollback = {
            revision: spec.previous,
            command: `skeldir migrate downgrade ${spec.previous}`,
            message:
              `Phase ${spec.phase} (${spec.revision}) failed its exit gates; later phases were not applied. To roll it back run ` +
              `\`skeldir migrate downgrade ${spec.previous}\` (this drops the phase's columns and the data in them).`,
          };
        }
      }
    }

    // On Citus, every difference from the document outside the gates, each checked (differences.ts).
    let differences: CitusDifference[] | undefined;
    let citus: ForensicReport['citus'];
    if (d.kind === 'citus') {
      session.take();
      differences = await citusDifferences(session, d.distributed);
      session.take();
      const n = (v: CitusDifference['verdict']) => differences!.filter((x) => x.verdict === v).length;
      citus = { differences, line: `${differences.length} differences outside the gates checked: ${n('EQUIVALENT')} equivalent, ${n('NOT EQUIVALENT')} not equivalent (documented limits), ${n('FAIL')} failed` };
      for (const x of differences) say(`  ${x.verdict} ${x.kind} ${x.object} (${x.table})`);
      say(`Citus: ${citus.line}`);
    }
    const report: ForensicReport = {
      tool: 'skeldir forensics',
      document: DOCUMENT,
      mode: options.apply ? 'apply' : 'validate',
      generatedAt: new Date().toISOString(),
      durationMs: 0,
      server: { version: info.version, versionNum: Number(info.num) },
      database: info.db,
      role: info.role,
      startRevision,
      currentRevision: await migrator.current(),
      deployment: session.deployment,
      phases: results,
      summary: summarise(results, differences),
      ...(citus ? { citus } : {}),
      ...(rollback ? { rollback } : {}),
    };
    if (options.lint) report.lint = await lintSchema(session, revisions);
    report.durationMs = Date.now() - started;
    return report;
  } catch (error) {
    if (!(error instanceof ForensicsCannotRunError) && isConnectionError(error)) {
      throw new ForensicsCannotRunError(`lost the database: ${(error as Error).message}`);
    }
    throw error;
  } finally {
    client?.release();
    await pool.end().catch(() => {});
    await migrator.close().catch(() => {});
  }
}

async function appliedRevisions(client: pg.ClientBase): Promise<Set<string>> {
  const exists = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`public.${MIGRATION_TABLE}`]);
  if (!exists.rows[0]!.ok) return new Set();
  return new Set((await client.query<{ name: string }>(`SELECT name FROM ${MIGRATION_TABLE}`)).rows.map((r) => r.name));
}

async function runTest(session: Session, revisions: readonly Revision[], phase: PhaseSpec, gate: string, test: PhaseSpec['gates'][number]['tests'][number]): Promise<TestResult> {
  session.take();
  const t0 = performance.now();
  let expected: string;
  let actual: string;
  let verdict: Verdict;
  // On a distributed database a test with a documented equivalent runs that instead.
  const equivalent = session.deployment.kind === 'citus' ? test.citus : undefined;
  try {
    const checks = equivalent ? await equivalent.run({ session }) : await test.run({ session, revisions });
    if (checks.length === 0) throw new Error(`test ${test.id} made no checks`);
    expected = checks.map((c) => `${c.label}: ${c.expected}`).join('\n');
    actual = checks.map((c) => `${c.pass ? '' : '✗ '}${c.label}: ${c.actual}`).join('\n');
    verdict = !checks.every((c) => c.pass) ? 'FAIL' : equivalent ? 'EQUIVALENT' : 'PASS';
  } catch (error) {
    if (isConnectionError(error)) throw error;
    // A probe that errors out is a failed test: the error is its evidence.
    await session.client.query('ROLLBACK').catch(() => {});
    expected = test.title;
    actual = `error: ${(error as Error).message}`;
    verdict = 'FAIL';
  }
  const durationMs = Math.round((performance.now() - t0) * 100) / 100;
  return {
    id: test.id, gate, phase: phase.phase, title: test.title, kind: test.kind, lines: test.lines, sql: session.take(), expected, actual, verdict, durationMs,
    ...(equivalent ? { difference: equivalent.difference } : {}),
  };
}

function notRun(spec: PhaseSpec): GateResult[] {
  return spec.gates.map((g) => ({
    id: g.id,
    phase: spec.phase,
    title: g.title,
    line: g.line,
    foldedLines: g.foldedLines,
    verdict: 'NOT RUN' as const,
    tests: g.tests.map((t) => ({
      id: t.id, gate: g.id, phase: spec.phase, title: t.title, kind: t.kind, lines: t.lines, sql: '', expected: '', actual: '', verdict: 'NOT RUN' as const, durationMs: 0,
    })),
  }));
}

/** PASS, or EQUIVALENT: passed as the documented distributed equivalent. */
function passed(v: Verdict): boolean {
  return v === 'PASS' || v === 'EQUIVALENT';
}

function gateVerdict(tests: TestResult[]): Verdict {
  if (!tests.every((t) => passed(t.verdict))) return 'FAIL';
  return tests.some((t) => t.verdict === 'EQUIVALENT') ? 'EQUIVALENT' : 'PASS';
}

function count(verdicts: Verdict[]): Count {
  return {
    passed: verdicts.filter(passed).length,
    failed: verdicts.filter((v) => v === 'FAIL').length,
    notRun: verdicts.filter((v) => v === 'NOT RUN').length,
    total: verdicts.length,
  };
}

export function summarise(phases: PhaseResult[], differences: readonly CitusDifference[] = []): ForensicReport['summary'] {
  const gates = count(phases.flatMap((p) => p.gates.map((g) => g.verdict)));
  const equivalent = phases.flatMap((p) => p.gates.filter((g) => g.verdict === 'EQUIVALENT').map((g) => g.id));
  const tests = count(phases.flatMap((p) => p.gates.flatMap((g) => g.tests.map((t) => t.verdict))));
  const failedPhase = phases.some((p) => p.verdict === 'FAIL');
  const failedDifferences = differences.filter((x) => x.verdict === 'FAIL').length;
  const verdict = gates.passed === gates.total && !failedPhase && failedDifferences === 0 ? 'PASS' : 'FAIL';
  let line = `${gates.passed}/${gates.total} gates, ${tests.passed}/${tests.total} tests passed`;
  const extra = [
    equivalent.length ? `${equivalent.length} as Citus equivalent${equivalent.length === 1 ? '' : 's'}: ${equivalent.join(', ')}` : '',
    ...phases.filter((p) => p.migration?.error).map((p) => `phase ${p.phase} upgrade failed`),
    gates.failed ? `${gates.failed} gate${gates.failed === 1 ? '' : 's'} failed` : '',
    gates.notRun ? `${gates.notRun} not run` : '',
    failedDifferences ? `${failedDifferences} Citus difference${failedDifferences === 1 ? '' : 's'} outside the gates failed` : '',
  ].filter(Boolean);
  if (extra.length) line += ` (${extra.join(', ')})`;
  return { verdict, equivalent, gates, tests, line };
}
