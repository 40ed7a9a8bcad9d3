import { Command } from 'commander';
import { registerMigrate } from './migrate.js';
import { registerStart } from './start.js';
import { registerTenant } from '../tenants/cli.js';
import { registerServe } from '../http/server.js';
import { registerWorker } from '../worker/cli.js';
import { registerDlq } from '../dlq/cli.js';
import { registerForensics } from '../forensics/cli.js';
import { registerWebhook } from '../webhooks/cli.js';
import { registerFx } from '../money/cli.js';
import { registerAttribution } from '../attribution/cli.js';

export function buildProgram(): Command {
  const program = new Command('skeldir')
    .description('Skeldir: multi-tenant marketing attribution and revenue ledger on PostgreSQL')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride((err) => {
      // Usage errors (unknown command or option, missing argument) exit 2; --help and --version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  registerStart(program);
  registerMigrate(program);
  registerTenant(program);
  registerServe(program);
  registerWorker(program);
  registerDlq(program);
  registerForensics(program);
  registerWebhook(program);
  registerFx(program);
  registerAttribution(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
