import { accessSync, constants, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { stderrProgress } from '../cli/progress.js';
import { CommandFailed, runCommand } from '../cli/run.js';
import { FORMATS, render, type Format } from './formats/index.js';
import { ForensicsCannotRunError, runForensics } from './runner.js';

export function registerForensics(program: Command): void {
  program
    .command('forensics')
    .description("run the design document's forensic validation protocol (24 exit gates, 51 SQL tests) against the database")
    .option('--apply', 'apply each phase\'s revision in turn (4, 5, 6, 7, 8a, 8b), validating it before the next; stop at the first failure')
    .addOption(new Option('--format <format>', 'report format').choices(FORMATS).default('text'))
    .option('--out <file>', 'write the report to FILE instead of stdout')
    .option('--lint', 'add a schema lint section (comments, row-level security, money types, names, INVARIANT tags)')
    .action((options: { apply?: boolean; format: Format; out?: string; lint?: boolean }) =>
      runCommand(async (ctx) => {
        const out = options.out ? resolve(options.out) : undefined;
        if (out) {
          // Refuse before touching the database rather than lose a run's evidence at the end.
          try {
            accessSync(dirname(out), constants.W_OK);
          } catch {
            throw new CommandFailed(`cannot write the report to ${out}: directory ${dirname(out)} is not writable or does not exist`, 2);
          }
        }
        const db = await ctx.database();
        let report;
        try {
          report = await runForensics(db, {
            apply: options.apply,
            lint: options.lint,
            onProgress: (line) => process.stderr.write(line + '\n'),
            migrationProgress: stderrProgress(),
            batchSize: ctx.config.migrationBatchSize,
          });
        } catch (error) {
          if (error instanceof ForensicsCannotRunError) throw new CommandFailed(error.message, 2);
          throw error;
        }
        const text = render(report, options.format);
        if (out) {
          writeFileSync(out, text);
          process.stderr.write(`report written to ${out}\n`);
        } else {
          process.stdout.write(text);
        }
        process.stderr.write(`${report.summary.verdict}: ${report.summary.line}\n`);
        if (report.lint) process.stderr.write(`${report.lint.summary.line}\n`);
        if (report.rollback) process.stderr.write(`${report.rollback.message}\n  ${report.rollback.command}\n`);
        const lintErrors = report.lint?.summary.errors ?? 0;
        return report.summary.verdict === 'PASS' && lintErrors === 0 ? 0 : 1;
      }),
    );
}
