import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { isAdPlatform } from '../channels/classify.js';
import { tenantPool } from '../channels/cli.js';
import { stderrProgress } from '../cli/progress.js';
import { runCommand } from '../cli/run.js';
import { isCurrency } from '../money/currencies.js';
import { checkFilePlatform, decodeSpendFile, parseSpendFile, SPEND_FORMATS, type SpendFormat } from './csv.js';
import { SpendError } from './errors.js';
import { importSpend } from './import.js';
import { instantsReplacer } from '../db/timestamps.js';

/** Largest file read (a year of daily ad-level rows of a large account is far below). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

/** `skeldir spend import FILE --tenant ID --platform P`. */
export function registerSpend(program: Command): void {
  const spend = program.command('spend').description('ad spend: import the platforms\' exports (docs/spend.md)');

  spend
    .command('import')
    .description(
      'import a Google Ads report CSV, a Meta Ads Manager export or a generic CSV; every line is checked first and a file with any bad line imports nothing (each bad line named); the days the file covers are replaced (progress on stderr, summary JSON on stdout)',
    )
    .argument('<file>', 'the CSV file')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--platform <platform>', 'google_ads, meta_ads, tiktok_ads, microsoft_ads, linkedin_ads or other')
    .option('--format <format>', `${SPEND_FORMATS.join(', ')} (default: recognised from the header)`)
    .option('--account <id>', 'account id for rows the file names none for')
    .option('--currency <code>', 'currency for a file that names none (ISO 4217)')
    .option('--channel <code>', "channel for every row (default: the tenant's channel rules decide per campaign)")
    .option('--dry-run', 'check and parse the file, write nothing')
    .action((file: string, o: { tenant: string; platform: string; format?: string; account?: string; currency?: string; channel?: string; dryRun?: boolean }) =>
      runCommand(async (ctx) => {
        if (!isAdPlatform(o.platform)) throw new SpendError('spend_file_invalid', `--platform ${JSON.stringify(o.platform)} is not an ad platform`, { field: '--platform' });
        if (o.format !== undefined && !(SPEND_FORMATS as readonly string[]).includes(o.format)) {
          throw new SpendError('spend_file_invalid', `--format must be one of ${SPEND_FORMATS.join(', ')}`, { field: '--format' });
        }
        if (o.currency !== undefined && !isCurrency(o.currency)) throw new SpendError('spend_file_invalid', `--currency ${JSON.stringify(o.currency)} is not an ISO 4217 currency`, { field: '--currency' });
        let bytes: Buffer;
        try {
          if (statSync(file).size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
          bytes = readFileSync(file);
        } catch (error) {
          throw new SpendError('spend_file_invalid', `cannot read ${file}: ${(error as Error).message}`);
        }
        const parsed = parseSpendFile(decodeSpendFile(bytes), {
          platform: o.platform,
          ...(o.format ? { format: o.format as SpendFormat } : {}),
          ...(o.account ? { account: o.account } : {}),
          ...(o.currency ? { currency: o.currency } : {}),
          ...(o.channel ? { channel: o.channel } : {}),
        });
        checkFilePlatform(parsed.format, o.platform, '--platform');
        const pool = await tenantPool(ctx, o.tenant, 'skeldir-spend');
        try {
          const skipped = parsed.skipped.length;
          if (o.dryRun) {
            process.stdout.write(JSON.stringify({ dry_run: true, format: parsed.format, rows: parsed.rows.length, skipped_lines: skipped }, null, 2) + '\n');
            return;
          }
          const summary = await importSpend(pool, o.tenant, { format: parsed.format, rows: parsed.rows, sourceFile: basename(file).slice(0, 255) }, stderrProgress());
          process.stdout.write(JSON.stringify({ ...summary, skipped_lines: skipped }, instantsReplacer, 2) + '\n');
        } finally {
          await pool.end();
        }
      }),
    );
}
