import { createWriteStream } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { runCommand } from '../cli/run.js';
import { existingTenant, tenantFlag } from '../cli/tenant-flag.js';
import { DATASET_NAMES, isDatasetName } from './datasets.js';
import { FORMATS, type Format } from './encode.js';
import { ExportError } from './errors.js';
import { exportChunks, periodBound } from './stream.js';

/** `skeldir export DATASET --tenant ID`: the same stream as GET /api/v1/exports/{dataset}, to stdout or a file. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description(`export a tenant's ${DATASET_NAMES.join(', ')} as CSV or NDJSON (streamed; columns in docs/exports.md)`)
    .argument('<dataset>', DATASET_NAMES.join(' | '))
    .requiredOption('--tenant <id>', 'the tenant (see `tenant list`)')
    .option('--from <time>', 'start of the period, inclusive (RFC 3339 with offset, or a date, UTC)')
    .option('--to <time>', 'end of the period, exclusive (same form)')
    .option('--format <format>', FORMATS.join(' | '), 'ndjson')
    .option('--out <file>', 'write to this file instead of stdout')
    .action((dataset: string, o: { tenant: string; from?: string; to?: string; format: string; out?: string }) =>
      runCommand(async (ctx) => {
        if (!isDatasetName(dataset)) throw new ExportError('export_dataset_invalid', `unknown dataset ${JSON.stringify(dataset)}: one of ${DATASET_NAMES.join(', ')}`);
        if (!(FORMATS as readonly string[]).includes(o.format)) throw new ExportError('export_format_invalid', `--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(o.format)}`);
        tenantFlag(o.tenant); // a malformed id is refused before the database is opened
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
