import type { Command } from 'commander';
import { runCommand } from '../cli/run.js';
import { createEndpoint, deleteEndpoint, listEndpoints, rotateEndpoint } from './endpoints.js';
import { loadSecretKey } from './secret-key.js';
import { instantsReplacer } from '../db/timestamps.js';

/** `skeldir webhook create|list|rotate|delete`: a tenant's payment-provider webhook endpoints. */
export function registerWebhook(program: Command): void {
  const webhook = program.command('webhook').description("manage a tenant's payment-provider webhook endpoints (secrets encrypted at rest)");

  const withOwner = <T>(body: (pool: import('pg').Pool, ctx: { config: import('../config.js').Config }) => Promise<T>) =>
    runCommand(async (ctx) => {
      const db = await ctx.database();
      const pool = db.ownerPool({ max: 1 });
      try {
        const out = await body(pool, ctx);
        process.stdout.write(JSON.stringify(out, instantsReplacer) + '\n');
      } finally {
        await pool.end();
      }
    });

  webhook
    .command('create')
    .description('create an endpoint; prints {"endpoint_id","url_path","secret"} (the secret is shown only here and by rotate)')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--provider <name>', 'stripe, shopify, paypal or woocommerce')
    .option('--secret <secret>', "the provider's signing secret (PayPal: the webhook ID); generated when omitted")
    .option('--description <text>', 'a note for operators')
    .action((o: { tenant: string; provider: string; secret?: string; description?: string }) =>
      withOwner((pool, ctx) =>
        createEndpoint(pool, loadSecretKey(process.env, ctx.config.dataDir), {
          tenantId: o.tenant,
          provider: o.provider,
          ...(o.secret !== undefined ? { secret: o.secret } : {}),
          ...(o.description !== undefined ? { description: o.description } : {}),
        }),
      ),
    );

  webhook
    .command('list')
    .description("list a tenant's endpoints as JSON (never their secrets)")
    .requiredOption('--tenant <id>', 'tenant id')
    .action((o: { tenant: string }) => withOwner((pool) => listEndpoints(pool, o.tenant)));

  webhook
    .command('rotate')
    .description('replace the secret; the previous one stays valid for --grace-hours (default 24)')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<endpoint_id>', 'the endpoint')
    .option('--secret <secret>', 'the new secret (generated when omitted)')
    .option('--grace-hours <hours>', 'hours the previous secret is still accepted (0: not at all)', '24')
    .action((endpointId: string, o: { tenant: string; secret?: string; graceHours: string }) =>
      withOwner((pool, ctx) =>
        rotateEndpoint(pool, loadSecretKey(process.env, ctx.config.dataDir), {
          tenantId: o.tenant,
          endpointId,
          graceHours: /^\d+(\.\d+)?$/.test(o.graceHours) ? Number(o.graceHours) : NaN,
          ...(o.secret !== undefined ? { secret: o.secret } : {}),
        }),
      ),
    );

  webhook
    .command('delete')
    .description('delete an endpoint (its deliveries are kept for deduplication and audit)')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<endpoint_id>', 'the endpoint')
    .action((endpointId: string, o: { tenant: string }) => withOwner((pool) => deleteEndpoint(pool, { tenantId: o.tenant, endpointId })));
}
