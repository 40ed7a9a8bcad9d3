import { createWriteStream, writeFileSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { runCommand, type CommandContext } from '../cli/run.js';
import { existingTenant, tenantFlag } from '../cli/tenant-flag.js';
import { DATASET_NAMES, isDatasetName } from './datasets.js';
import { FORMATS, type Format } from './encode.js';
import { ExportError } from './errors.js';
import { exportChunks, periodBound } from './stream.js';
import { checkPerformanceQuery } from '../performance/check.js';
import { performanceExport } from './performance.js';

const NAMES = [...DATASET_NAMES, 'performance'];

/** `skeldir export DATASET --tenant ID`: the same stream as GET /api/v1/exports/{dataset}, to stdout or a file. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description(`export a tenant's ${DATASET_NAMES.join(', ')} (streamed) or the performance report's lines as CSV or NDJSON (columns in docs/exports.md)`)
    .argument('<dataset>', NAMES.join(' | '))
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .option('--from <time>', 'start of the period, inclusive (RFC 3339 with offset, or a date, UTC)')
    .option('--to <time>', 'end of the period, exclusive (same form)')
    .option('--format <format>', FORMATS.join(' | '), 'ndjson')
    .option('--model <model>', 'performance: attribution model splitting conversions (default last_touch)')
    .option('--group-by <group>', 'performance: channel (default), campaign, platform or day')
    .option('--out <file>', 'write to this file instead of stdout')
    .action((dataset: string, o: { tenant: string; from?: string; to?: string; format: string; model?: string; groupBy?: string; out?: string }) =>
      runCommand(async (ctx) => {
        if (dataset !== 'performance' && !isDatasetName(dataset)) throw new ExportError('export_dataset_invalid', `unknown dataset ${JSON.stringify(dataset)}: one of ${NAMES.join(', ')}`);
        if (!(FORMATS as readonly string[]).includes(o.format)) throw new ExportError('export_format_invalid', `--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(o.format)}`);
        tenantFlag(o.tenant); // a malformed id is refused before the database is opened
        if (dataset === 'performance') return exportPerformance(ctx, o);
        if (o.model !== undefined || o.groupBy !== undefined) throw new ExportError('export_dataset_invalid', '--model and --group-by apply to the performance export only');
        const from = periodBound('from', o.from);
        const to = periodBound('to', o.to);
        const db = await ctx.database();
        // The application role, as the API: row-level security applies to every page.
        const pool = db.appPool({ max: 1, applicationName: 'skeldir-export' });
        try {
          const tenantId = await existingTenant(pool, o.tenant);
          const stats = { rows: 0 };
          const chunks = exportChunks(pool, { tenantId, dataset, format: o.format as Format, from, to }, stats);
          const first = await chunks.next(); // nothing is written (no file created) unless the export starts
          async function* body() {
            if (!first.done) yield first.value;
            yield* chunks;
          }
          const out: Writable = o.out === undefined ? process.stdout : createWriteStream(o.out);
          await pipeline(Readable.from(body(), { objectMode: false }), out, { end: o.out !== undefined });
          process.stderr.write(`exported ${stats.rows} ${dataset} rows${o.out === undefined ? '' : ` to ${o.out}`}\n`);
        } finally {
          await pool.end();
        }
      }),
    );
}

/** `skeldir export performance`: the bytes of GET /api/v1/exports/performance, checked as the report checks its parameters. */
async function exportPerformance(ctx: CommandContext, o: { tenant: string; from?: string; to?: string; format: string; model?: string; groupBy?: string; out?: string }): Promise<void> {
  const options = checkPerformanceQuery({ from: o.from, to: o.to, model: o.model, group_by: o.groupBy });
  const db = await ctx.database();
  const pool = db.appPool({ max: 1, applicationName: 'skeldir-export' });
  try {
    const tenantId = await existingTenant(pool, o.tenant);
    // Computed whole before anything is written (one row per group): a failure creates no file.
    const { text, rows } = await performanceExport(pool, tenantId, options, o.format as Format);
    if (o.out === undefined) process.stdout.write(text);
    else writeFileSync(o.out, text);
    process.stderr.write(`exported ${rows} performance rows${o.out === undefined ? '' : ` to ${o.out}`}\n`);
  } finally {
    await pool.end();
  }
}
