import { PHASES } from '../protocol.js';
import { formatLines } from './common.js';

/**
 * The gate → tests → document lines mapping as a Markdown table (docs/forensics.md carries
 * it verbatim; a test keeps the two equal).
 */
export function mappingTable(): string {
  const out = ['| Phase (revision) | Gate (document line) | Test | Kind | Document lines |', '|---|---|---|---|---|'];
  for (const p of PHASES) {
    let firstOfPhase = true;
    for (const g of p.gates) {
      let firstOfGate = true;
      for (const t of g.tests) {
        const phase = firstOfPhase ? `${p.phase} (${p.revision})` : '';
        const gate = firstOfGate ? `**${g.id}** ${g.title} (${g.line}${g.foldedLines.length ? `; folds ${formatLines(g.foldedLines)}` : ''})` : '';
        out.push(`| ${phase} | ${gate} | ${t.id} ${t.title} | ${t.kind} | ${formatLines(t.lines)} |`);
        firstOfPhase = false;
        firstOfGate = false;
      }
    }
  }
  return out.join('\n');
}
