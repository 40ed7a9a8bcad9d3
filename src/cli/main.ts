import { Command } from 'commander';
import { registerMigrate } from './migrate.js';
import { registerStart } from './start.js';
import { registerTenant } from '../tenants/cli.js';
import { registerServe } from '../http/server.js';
import { registerForensics } from '../forensics/cli.js';

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
  registerForensics(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
