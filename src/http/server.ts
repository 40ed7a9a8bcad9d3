import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { BASE_FIELDS, serviceLogger, type Logger } from '../cli/log.js';
import { runCommand } from '../cli/run.js';
import type { Service } from '../cli/start.js';
import { buildApp } from './app.js';

/** The HTTP API as a service: listens on PORT (all interfaces) until stopped. */
export const apiService: Service = {
  name: 'api',
  async start(db: Database, config: Config, _log: Logger) {
    // Fastify builds its own pino logger (redaction, request serializers): on stdout too, with the same fields.
    const app = await buildApp({ db, config, logger: { base: { ...BASE_FIELDS, service: 'api' } } });
    const address = await app.listen({ port: config.port, host: process.env.HOST || '0.0.0.0' });
    return {
      describe: `listening on ${address} (OpenAPI at /openapi.json, docs at /docs)`,
      stop: () => app.close(),
    };
  },
};

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('the HTTP API alone, against DATABASE_URL (or the embedded database); does not migrate')
    .action(() => {
      const log = serviceLogger('api');
      return runCommand(
        async (ctx) => {
          const signalled = ctx.untilSignal();
          const db = await ctx.database();
          const handle = await apiService.start(db, ctx.config, log);
          log.info({}, handle.describe);
          const signal = await signalled;
          log.info({ signal }, `${signal}: stopping`);
          await handle.stop();
          log.info({}, 'stopped');
        },
        { service: { log } },
      );
    });
}
