import type { Command } from 'commander';
import { tenantPool } from '../channels/cli.js';
import { runCommand } from '../cli/run.js';
import { withTenant } from '../db/tenant-context.js';
import { checkPerformanceQuery } from './check.js';
import { performanceReport } from './report.js';

/** `skeldir report performance`: GET /api/v1/performance's report as JSON on stdout. */
export function registerReport(program: Command): void {
  const report = program.command('report').description('reports (docs/spend.md)');
  report
    .command('performance')
    .description(
      "spend against attributed and ledger-verified revenue for [--from, --to) (days in the tenant's reporting time zone) per channel, campaign, platform or day: ROAS with its interval, CPA, refund and chargeback rates, MER, FX gaps (GET /api/v1/performance's JSON)",
    )
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--from <day>', 'first day, YYYY-MM-DD')
    .requiredOption('--to <day>', 'day after the last (exclusive), YYYY-MM-DD')
    .option('--model <model>', 'attribution model splitting conversions', 'last_touch')
    .option('--group-by <group>', 'channel, campaign, platform or day', 'channel')
    .action((o: { tenant: string; from: string; to: string; model: string; groupBy: string }) =>
      runCommand(async (ctx) => {
        const options = checkPerformanceQuery({ from: o.from, to: o.to, model: o.model, group_by: o.groupBy });
        const pool = await tenantPool(ctx, o.tenant, 'skeldir-report');
        try {
          const r = await withTenant(pool, o.tenant, (c) => performanceReport(c, o.tenant, options));
          process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );
}
