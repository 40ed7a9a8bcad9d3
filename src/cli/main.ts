import { Command } from 'commander';
import { exitQuietlyOnClosedOutput } from './run.js';

type Register = (program: Command) => void;

/**
 * Each top-level command's module, loaded only when that command runs (or for --help): a
 * `skeldir migrate current` need not load the HTTP server, the attribution models and the
 * webhook providers, which halves its start-up time.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  start: async () => (await import('./start.js')).registerStart,
  migrate: async () => (await import('./migrate.js')).registerMigrate,
  tenant: async () => (await import('../tenants/cli.js')).registerTenant,
  serve: async () => (await import('../http/server.js')).registerServe,
  worker: async () => (await import('../worker/cli.js')).registerWorker,
  dlq: async () => (await import('../dlq/cli.js')).registerDlq,
  forensics: async () => (await import('../forensics/cli.js')).registerForensics,
  webhook: async () => (await import('../webhooks/cli.js')).registerWebhook,
  fx: async () => (await import('../money/cli.js')).registerFx,
  attribution: async () => (await import('../attribution/cli.js')).registerAttribution,
  channels: async () => (await import('../channels/cli.js')).registerChannels,
  spend: async () => (await import('../spend/cli.js')).registerSpend,
  report: async () => (await import('../performance/cli.js')).registerReport,
  user: async () => (await import('../users/cli.js')).registerUser,
  export: async () => (await import('../exports/cli.js')).registerExport,
  people: async () => (await import('../erasure/cli.js')).registerPeople,
  retention: async () => (await import('../retention/cli.js')).registerRetention,
  'publishable-key': async () => (await import('../collect/cli.js')).registerPublishableKey,
  identity: async () => (await import('../identity/cli.js')).registerIdentity,
  citus: async () => (await import('../citus/cli.js')).registerCitus,
};
/** Short names of top-level commands (commander knows them too, through .alias()). */
const ALIASES: Record<string, string> = { pk: 'publishable-key' };

export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('skeldir')
    .description('Skeldir: multi-tenant marketing attribution and revenue ledger on PostgreSQL')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride((err) => {
      // Usage errors (unknown command or option, missing argument) exit 2; --help and --version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  const name = argv[2] !== undefined ? (ALIASES[argv[2]] ?? argv[2]) : undefined;
  const wanted = name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
  for (const command of wanted) (await COMMANDS[command]!())(program);
  return program;
}

exitQuietlyOnClosedOutput();
await (await buildProgram()).parseAsync(process.argv);
