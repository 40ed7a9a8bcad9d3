import type { ForensicReport } from '../types.js';
import { formatLines, indent } from './common.js';

/** The human-readable report: every test with its SQL, expected and actual results. */
export function toText(r: ForensicReport): string {
  const out: string[] = [];
  out.push(`Skeldir forensic validation of ${r.document}`);
  out.push(`PostgreSQL ${r.server.version} (${r.server.versionNum}), database ${r.database}, probes run as ${r.role}`);
  if (r.deployment.kind === 'citus') {
    const d = r.deployment;
    out.push(`Citus ${d.version}: ${d.workers} workers, ${d.distributed.length} tables distributed by tenant_id, ${d.reference.length} reference tables; ` +
      'where the distributed schema differs from the document the test checks its equivalent (EQUIVALENT) and says why');
  }
  out.push(`Revision ${r.currentRevision}${r.startRevision !== r.currentRevision ? ` (was ${r.startRevision})` : ''}, mode ${r.mode}, ${r.generatedAt}, ${r.durationMs} ms`);
  for (const p of r.phases) {
    out.push('');
    out.push(`${p.title}: revision ${p.revision} (down ${p.previous}): ${p.verdict}${p.reason ? ` (${p.reason})` : ''}`);
    if (p.migration) out.push(`  upgraded ${p.migration.from} -> ${p.migration.to} in ${p.migration.durationMs} ms${p.migration.error ? `: FAILED ${p.migration.error}` : ''}`);
    for (const g of p.gates) {
      out.push(`  ${g.id} ${g.verdict}  ${g.title} (line ${formatLines([g.line, ...g.foldedLines])})`);
      if (g.verdict === 'NOT RUN') continue;
      for (const t of g.tests) {
        out.push(`    ${t.id} ${t.verdict}  ${t.title} [${t.kind}, lines ${formatLines(t.lines)}, ${t.durationMs} ms]`);
        if (t.difference) {
          out.push('      Distributed schema differs from the document:');
          out.push(`        document:    ${t.difference.document}`);
          out.push(`        distributed: ${t.difference.distributed}`);
          out.push(`        equivalent:  ${t.difference.why}`);
        }
        out.push('      SQL:');
        out.push(indent(t.sql, '        '));
        out.push('      Expected:');
        out.push(indent(t.expected, '        '));
        out.push('      Actual:');
        out.push(indent(t.actual, '        '));
      }
    }
  }
  if (r.citus) {
    out.push('');
    out.push('Citus differences outside the gates (src/citus/plan.ts), each checked on the coordinator and on every shard');
    for (const x of r.citus.differences) {
      out.push(`  ${x.verdict}  ${x.kind} ${x.object} (${x.table})`);
      out.push(`    document:    ${x.document}`);
      out.push(`    distributed: ${x.distributed}`);
      out.push(`    why:         ${x.why}`);
      if (x.consequence) out.push(`    consequence: ${x.consequence}`);
      for (const c of x.checks) out.push(`    ${c.pass ? '✓' : '✗'} ${c.label}: ${c.actual}${c.pass ? '' : ` (expected ${c.expected})`}`);
    }
    out.push(`  ${r.citus.line}`);
  }
  if (r.lint) {
    out.push('');
    out.push('Schema lint');
    for (const f of r.lint.findings) out.push(`  ${f.severity.toUpperCase()} [${f.rule}] ${f.message}`);
    out.push(`  ${r.lint.summary.line}`);
  }
  if (r.rollback) {
    out.push('');
    out.push(`Rollback: ${r.rollback.message}`);
    out.push(`  ${r.rollback.command}`);
  }
  out.push('');
  out.push(`${r.summary.verdict}: ${r.summary.line}`);
  return out.join('\n') + '\n';
}
