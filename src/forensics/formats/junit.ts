import type { ForensicReport } from '../types.js';
import { formatLines } from './common.js';

/** XML 1.0 text: escaped, and without the control characters XML cannot carry. */
export function xml(text: string): string {
  return text
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/**
 * JUnit XML (the de-facto schema Jenkins, GitLab and GitHub reporters read): one testsuite
 * per phase, one testcase per test (classname = its gate), FAIL as <failure>, NOT RUN as
 * <skipped>; the lint section is one more suite with a testcase per rule.
 */
export function toJunit(r: ForensicReport): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = r.phases.flatMap((p) => p.gates.flatMap((g) => g.tests));
  const diffFailures = r.citus ? r.citus.differences.filter((x) => x.verdict === 'FAIL').length : 0;
  const lintFailures = r.lint ? r.lint.rules.filter((rule) => r.lint!.findings.some((f) => f.rule === rule.id && f.severity === 'error')).length : 0;
  out.push(
    `<testsuites name="skeldir forensics" tests="${all.length + (r.lint?.rules.length ?? 0) + (r.citus?.differences.length ?? 0)}" failures="${all.filter((t) => t.verdict === 'FAIL').length + lintFailures + diffFailures}" ` +
      `errors="0" skipped="${all.filter((t) => t.verdict === 'NOT RUN').length}" time="${seconds(r.durationMs)}" timestamp="${xml(r.generatedAt)}">`,
  );
  for (const p of r.phases) {
    const tests = p.gates.flatMap((g) => g.tests);
    out.push(
      `  <testsuite name="${xml(`phase ${p.phase} (${p.revision})`)}" tests="${tests.length}" failures="${tests.filter((t) => t.verdict === 'FAIL').length}" ` +
        `errors="0" skipped="${tests.filter((t) => t.verdict === 'NOT RUN').length}" time="${seconds(p.durationMs)}" timestamp="${xml(r.generatedAt)}">`,
    );
    out.push('    <properties>');
    for (const [name, value] of [
      ['revision', p.revision], ['down_revision', p.previous], ['verdict', p.verdict], ['server_version', r.server.version],
      ['database_revision', r.currentRevision], ...(p.reason ? [['reason', p.reason]] : []),
    ] as [string, string][]) {
      out.push(`      <property name="${xml(name)}" value="${xml(value)}"/>`);
    }
    for (const g of p.gates) out.push(`      <property name="${xml(`gate ${g.id}`)}" value="${xml(`${g.verdict}: ${g.title}`)}"/>`);
    out.push('    </properties>');
    for (const g of p.gates) {
      for (const t of g.tests) {
        out.push(`    <testcase classname="${xml(`forensics.phase${p.phase}.${g.id}`)}" name="${xml(`${t.id} ${t.title}`)}" time="${seconds(t.durationMs)}">`);
        if (t.verdict === 'FAIL') {
          const failed = t.actual.split('\n').filter((l) => l.startsWith('✗ ') || l.startsWith('error: '));
          out.push(`      <failure type="FAIL" message="${xml(`${g.id} failed: ${failed.join('; ') || t.actual}`)}">${xml(`Expected:\n${t.expected}\n\nActual:\n${t.actual}`)}</failure>`);
        } else if (t.verdict === 'NOT RUN') {
          out.push(`      <skipped message="${xml(p.reason ?? 'not run')}"/>`);
        }
        if (t.verdict !== 'NOT RUN') {
          const diff = t.difference ? `${t.verdict === 'EQUIVALENT' ? 'EQUIVALENT' : 'Citus equivalent'}: the document has ${t.difference.document}; the distributed database has ${t.difference.distributed}; ${t.difference.why}\n\n` : '';
          out.push(`      <system-out>${xml(`${diff}Document lines ${formatLines(t.lines)} (${t.kind})\n\nSQL:\n${t.sql}\n\nExpected:\n${t.expected}\n\nActual:\n${t.actual}`)}</system-out>`);
        }
        out.push('    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  if (r.citus) {
    out.push(`  <testsuite name="Citus differences outside the gates" tests="${r.citus.differences.length}" failures="${diffFailures}" errors="0" skipped="0" time="0.000" timestamp="${xml(r.generatedAt)}">`);
    for (const x of r.citus.differences) {
      out.push(`    <testcase classname="forensics.citus" name="${xml(`${x.kind} ${x.object} (${x.table})`)}" time="0.000">`);
      const checks = x.checks.map((c) => `${c.pass ? '' : '✗ '}${c.label}: ${c.actual}${c.pass ? '' : ` (expected ${c.expected})`}`).join('\n');
      if (x.verdict === 'FAIL') out.push(`      <failure type="FAIL" message="${xml(`${x.object}: the catalogue does not match src/citus/plan.ts`)}">${xml(checks)}</failure>`);
      out.push(`      <system-out>${xml(`${x.verdict}: the document has ${x.document}; the distributed database has ${x.distributed}; ${x.why}${x.consequence ? `\nConsequence: ${x.consequence}` : ''}\n\n${checks}`)}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  if (r.lint) {
    out.push(`  <testsuite name="schema lint" tests="${r.lint.rules.length}" failures="${lintFailures}" errors="0" skipped="0" time="0.000" timestamp="${xml(r.generatedAt)}">`);
    for (const rule of r.lint.rules) {
      const findings = r.lint.findings.filter((f) => f.rule === rule.id);
      out.push(`    <testcase classname="forensics.lint" name="${xml(`${rule.id}: ${rule.description}`)}" time="0.000">`);
      if (findings.length && rule.severity === 'error') {
        out.push(`      <failure type="lint" message="${xml(`${findings.length} finding(s)`)}">${xml(findings.map((f) => f.message).join('\n'))}</failure>`);
      } else if (findings.length) {
        out.push(`      <system-out>${xml(findings.map((f) => `warning: ${f.message}`).join('\n'))}</system-out>`);
      }
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
