import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { runCommand } from '../cli/run.js';
import type { Service } from '../cli/start.js';
import { buildApp } from './app.js';

/** The HTTP API as a service: listens on PORT (all interfaces) until stopped. */
export const apiService: Service = {
  name: 'api',
  async start(db: Database, config: Config) {
    const app = await buildApp({ db, config });
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
    .action(() =>
      runCommand(async (ctx) => {
        const db = await ctx.database();
        const handle = await apiService.start(db, ctx.config);
        process.stderr.write(`api: ${handle.describe}\n`);
        const signal = await ctx.untilSignal();
        process.stderr.write(`${signal}: stopping…\n`);
        await handle.stop();
      }),
    );
}
