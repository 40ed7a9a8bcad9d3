import type { ForensicReport } from '../types.js';
import { formatLines } from './common.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, '<br>');
const fence = (s: string) => {
  const ticks = /```/.test(s) ? '~~~~' : '```';
  return `${ticks}\n${s}\n${ticks}`;
};

/** The evidence report the document's "Evidence Templates" ask for, as Markdown. */
export function toMarkdown(r: ForensicReport): string {
  const out: string[] = [];
  out.push(`# Forensic validation report — ${r.summary.verdict}`);
  out.push('');
  out.push(`**${r.summary.line}**`);
  out.push('');
  out.push('| | |');
  out.push('|---|---|');
  out.push(`| Design document | \`${r.document}\` |`);
  out.push(`| Server | PostgreSQL ${r.server.version} (${r.server.versionNum}) |`);
  out.push(`| Database / role | \`${r.database}\` / \`${r.role}\` |`);
  if (r.deployment.kind === 'citus') {
    const d = r.deployment;
    out.push(`| Deployment | Citus ${d.version}, ${d.workers} workers, ${d.distributed.length} distributed and ${d.reference.length} reference tables |`);
  }
  out.push(`| Revision | ${r.currentRevision}${r.startRevision !== r.currentRevision ? ` (started at ${r.startRevision})` : ''} |`);
  out.push(`| Mode | ${r.mode} |`);
  out.push(`| Generated | ${r.generatedAt} (${r.durationMs} ms) |`);
  out.push('');
  out.push('## Gates');
  out.push('');
  out.push('| Phase | Gate | Verdict | Document line | Tests (document lines) |');
  out.push('|---|---|---|---|---|');
  for (const p of r.phases) {
    for (const g of p.gates) {
      const tests = g.tests.map((t) => `${t.id} ${t.verdict === 'PASS' ? '✅' : t.verdict === 'EQUIVALENT' ? '✅≡' : t.verdict === 'FAIL' ? '❌' : '⏸'} (${formatLines(t.lines)})`).join('<br>');
      out.push(`| ${p.phase} | ${g.id} ${cell(g.title)} | ${g.verdict} | ${formatLines([g.line, ...g.foldedLines])} | ${tests} |`);
    }
  }
  if (r.rollback) {
    out.push('');
    out.push(`> **Rollback**: ${r.rollback.message}`);
    out.push('>');
    out.push(`> \`${r.rollback.command}\``);
  }
  for (const p of r.phases) {
    out.push('');
    out.push(`## ${p.title} — ${p.verdict}`);
    out.push('');
    out.push(`Revision ${p.revision}, down revision ${p.previous}.${p.reason ? ` ${p.reason}.` : ''}`);
    if (p.migration) out.push(`Upgraded ${p.migration.from} → ${p.migration.to} in ${p.migration.durationMs} ms${p.migration.error ? `: **failed**: ${p.migration.error}` : ''}.`);
    for (const g of p.gates) {
      out.push('');
      out.push(`### ${g.id} ${g.title} — ${g.verdict}`);
      if (g.verdict === 'NOT RUN') continue;
      for (const t of g.tests) {
        out.push('');
        out.push(`#### ${t.id} ${t.verdict}: ${t.title}`);
        out.push('');
        out.push(`Document lines ${formatLines(t.lines)}; ${t.kind}; ${t.durationMs} ms.`);
        if (t.difference) {
          out.push('');
          out.push(`**Distributed schema differs from the document.** Document: ${t.difference.document}. Distributed: ${t.difference.distributed}. Why it is equivalent: ${t.difference.why}.`);
        }
        out.push('');
        out.push(fence(t.sql).replace(/^```/, '```sql'));
        out.push('');
        out.push('| Expected | Actual |');
        out.push('|---|---|');
        out.push(`| ${cell(t.expected)} | ${cell(t.actual)} |`);
      }
    }
  }
  if (r.citus) {
    out.push('');
    out.push('## Citus differences outside the gates');
    out.push('');
    out.push(`${r.citus.line}. Each is checked on the coordinator and on every shard (src/citus/plan.ts).`);
    out.push('');
    out.push('| Verdict | Difference | Document | Distributed | Why | Checks |');
    out.push('|---|---|---|---|---|---|');
    for (const x of r.citus.differences) {
      const why = x.consequence ? `${x.why}<br>**Consequence**: ${cell(x.consequence)}` : cell(x.why);
      const checks = x.checks.map((c) => cell(`${c.pass ? '✅' : '❌'} ${c.label}: ${c.actual}${c.pass ? '' : ` (expected ${c.expected})`}`)).join('<br>');
      out.push(`| ${x.verdict} | ${x.kind} \`${x.object}\` (${x.table}) | ${cell(x.document)} | ${cell(x.distributed)} | ${why} | ${checks} |`);
    }
  }
  if (r.lint) {
    out.push('');
    out.push('## Schema lint');
    out.push('');
    out.push(r.lint.summary.line);
    if (r.lint.findings.length) {
      out.push('');
      out.push('| Severity | Rule | Object | Finding |');
      out.push('|---|---|---|---|');
      for (const f of r.lint.findings) out.push(`| ${f.severity} | ${f.rule} | \`${f.object}\` | ${cell(f.message)} |`);
    }
  }
  out.push('');
  out.push('## Sign-off');
  out.push('');
  out.push('Validation engineer: ______________________  Date: __________');
  return out.join('\n') + '\n';
}
