import type { Phase } from '../migrations/document.js';
import type { Deployment } from './deployment.js';

/**
 * PASS / FAIL, or NOT RUN when an earlier phase failed or the phase's revision is not applied.
 * EQUIVALENT (tests and gates, on a distributed Citus database only): the schema differs from
 * the document there in a documented way, and its distributed equivalent passed; the test names
 * the difference and why it is equivalent (`difference`). It counts as passed.
 */
export type Verdict = 'PASS' | 'FAIL' | 'NOT RUN' | 'EQUIVALENT';

/** Where a distributed schema differs from the document, and why that loses nothing. */
export interface Difference {
  /** What the document has. */
  document: string;
  /** What the distributed database has instead (and what was checked). */
  distributed: string;
  why: string;
}

/** One line of evidence inside a test: what was looked at, what the document wants, what the database has. */
export interface Check {
  label: string;
  expected: string;
  actual: string;
  pass: boolean;
}

export interface TestResult {
  /** e.g. T5.4.2 */
  id: string;
  /** e.g. G5.4 */
  gate: string;
  phase: Phase;
  title: string;
  /** catalogue: reads pg_catalog only; behaviour: inserts fixtures and provokes violations, then rolls back. */
  kind: 'catalogue' | 'behaviour';
  /** Lines of the design document this test proves. */
  lines: number[];
  /** Every statement the test sent, in order, parameters inlined. */
  sql: string;
  expected: string;
  actual: string;
  verdict: Verdict;
  durationMs: number;
  /** Set when the test ran its Citus equivalent (verdict EQUIVALENT, or FAIL when the equivalent failed). */
  difference?: Difference;
}

export interface GateResult {
  id: string;
  phase: Phase;
  /** The document's wording of the exit gate. */
  title: string;
  /** Line of the document that defines the gate. */
  line: number;
  /** Other lines whose checks this gate also carries (the folded "migration file created" gate). */
  foldedLines: number[];
  verdict: Verdict;
  tests: TestResult[];
}

export interface PhaseResult {
  phase: Phase;
  revision: string;
  previous: string;
  title: string;
  verdict: Verdict;
  /** Why the phase is NOT RUN or FAIL without tests (migration failed). */
  reason?: string;
  /** Set when `--apply` upgraded the database to this phase's revision. */
  migration?: { from: string; to: string; durationMs: number; error?: string };
  gates: GateResult[];
  durationMs: number;
}

export interface Count {
  passed: number;
  failed: number;
  notRun: number;
  total: number;
}

export interface LintFinding {
  severity: 'error' | 'warning';
  rule: string;
  /** table, table.column, or constraint/index name */
  object: string;
  message: string;
}

export interface LintSection {
  rules: { id: string; severity: 'error' | 'warning'; description: string }[];
  findings: LintFinding[];
  summary: { errors: number; warnings: number; tables: number; columns: number; line: string };
}

/**
 * A place where the distributed schema differs from the document that no gate covers (Citus only,
 * derived from src/citus/plan.ts), checked against the catalogue of the coordinator and every shard.
 * EQUIVALENT: as planned, and nothing is lost; NOT EQUIVALENT: as planned, a documented limit
 * (`consequence`), not a failure; FAIL: the catalogue does not match the plan, and the run fails.
 */
export interface CitusDifference {
  kind: 'foreign key' | 'trigger' | 'unique key' | 'primary key' | 'function' | 'index';
  object: string;
  table: string;
  document: string;
  distributed: string;
  why: string;
  consequence?: string;
  verdict: 'EQUIVALENT' | 'NOT EQUIVALENT' | 'FAIL';
  checks: Check[];
}

export interface ForensicReport {
  tool: 'skeldir forensics';
  /** Design document the protocol comes from. */
  document: string;
  mode: 'validate' | 'apply';
  generatedAt: string;
  durationMs: number;
  server: { version: string; versionNum: number };
  database: string;
  /** Role the probes ran as. */
  role: string;
  startRevision: string;
  currentRevision: string;
  /** One server, or Citus (extension version, workers, distributed and reference tables). */
  deployment: Deployment;
  phases: PhaseResult[];
  summary: {
    verdict: 'PASS' | 'FAIL';
    /** Gates passed as distributed equivalents (Citus only; empty on one server). */
    equivalent: string[];
    gates: Count;
    tests: Count;
    /** e.g. "24/24 gates, 51/51 tests passed" */
    line: string;
  };
  /** How to undo the phase that failed under --apply. */
  rollback?: { revision: string; command: string; message: string };
  lint?: LintSection;
  /** Citus only: the differences from the document outside the gates, each checked. */
  citus?: { differences: CitusDifference[]; line: string };
}
