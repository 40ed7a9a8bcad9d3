import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { runCommand } from '../cli/run.js';
import { FxError, importFxRates, parseFxCsv } from './fx.js';
import { reportingCurrency } from './reporting.js';
import { stampLedgerFx } from '../ledger/fx-stamp.js';

/** `skeldir fx import FILE.csv` and `skeldir fx reporting-currency`. */
export function registerFx(program: Command): void {
  const fx = program.command('fx').description('foreign-exchange rates and reporting currencies');

  fx.command('import')
    .description('import rates from a CSV of date,base,quote,rate (1 base = rate quote); all lines are checked first, nothing is imported if one is bad; then records the rate on ledger payments that had none')
    .argument('<file>', 'the CSV file')
    .option('--source <name>', 'where the rates come from, recorded with each conversion (default: the file name)')
    .action((file: string, o: { source?: string }) =>
      runCommand(async (ctx) => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (error) {
          throw new FxError('fx_file_invalid', `cannot read ${file}: ${(error as Error).message}`);
        }
        const rows = parseFxCsv(text);
        const source = (o.source ?? basename(file)).slice(0, 100);
        if (source.trim() === '') throw new FxError('fx_source_invalid', 'the source must not be blank');
        const db = await ctx.database();
        const pool = db.ownerPool({ max: 1 });
        try {
          const r = await importFxRates(pool, rows, source);
          // Payments that arrived before their date's rate get it recorded now.
          const ledger = await stampLedgerFx(pool);
          process.stdout.write(JSON.stringify({ rates: rows.length, ...r, source, ledger_rows_stamped: ledger.stamped, ledger_rows_without_rate: ledger.without_rate }) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );

  fx.command('reporting-currency')
    .description("show, or with --set change, the currency a tenant's reports are converted into")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--set <code>', 'ISO 4217 code, e.g. EUR')
    .action((o: { tenant: string; set?: string }) =>
      runCommand(async (ctx) => {
        const db = await ctx.database();
        const pool = db.ownerPool({ max: 1 });
        try {
          process.stdout.write(JSON.stringify(await reportingCurrency(pool, o.tenant, o.set)) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );
}
