import type { Command } from 'commander';
import type pg from 'pg';
import { runCommand, type CommandContext } from '../cli/run.js';
import { validateTenantId } from '../tenants/tenants.js';
import { CollectError } from './keys.js';
import { createPublishableKey, listPublishableKeys, revokePublishableKey, updatePublishableKey, type KeySettings } from './publishable-keys.js';
import { instantsReplacer } from '../db/timestamps.js';

async function asOwner<T>(ctx: CommandContext, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const db = await ctx.database();
  const pool = db.ownerPool({ max: 1 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

function keyId(text: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) {
    throw new CollectError('publishable_key_id_invalid', `${JSON.stringify(text)} is not a publishable key id (a UUID, from publishable-key list)`);
  }
  return text.toLowerCase();
}

const print = (value: unknown) => process.stdout.write(JSON.stringify(value, instantsReplacer, 2) + '\n');
const collectOrigins = (value: string, previous: string[] = []) => [...previous, value];

interface SettingFlags {
  name?: string;
  origin?: string[];
  requireConsent?: boolean;
  gpc?: boolean;
}

function settingsOf(o: SettingFlags): KeySettings {
  return {
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.origin !== undefined ? { allowed_origins: o.origin } : {}),
    ...(o.requireConsent !== undefined ? { require_consent: o.requireConsent } : {}),
    ...(o.gpc !== undefined ? { honor_gpc: o.gpc } : {}),
  };
}

/** `skeldir publishable-key …` (alias `pk`): browser keys for the tracker (docs/collect.md). */
export function registerPublishableKey(program: Command): void {
  const pk = program.command('publishable-key').alias('pk').description('publishable (browser) keys for the tracker: issue, list, change, revoke');

  pk.command('create')
    .description('issue a publishable key; prints the key (shown only here) and the snippet to paste into the site')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--origin <origin>', 'an allowed origin, e.g. https://shop.example or https://*.shop.example (repeat for several)', collectOrigins)
    .option('--name <name>', 'a label: the site the key is for', 'website')
    .option('--require-consent', 'store nothing and send no identifier until the site calls skeldir(\'consent\', true)')
    .option('--no-gpc', 'do not treat Global Privacy Control as a refusal (honoured by default)')
    .option('--base-url <url>', 'the URL browsers reach Skeldir at, for the snippet (default SKELDIR_PUBLIC_URL, else http://localhost:PORT)')
    .action((o: SettingFlags & { tenant: string; baseUrl?: string }) =>
      runCommand(async (ctx) => {
        const tenant = validateTenantId(o.tenant);
        const base = o.baseUrl ?? ctx.config.web.publicUrl;
        print(await asOwner(ctx, (pool) => createPublishableKey(pool, tenant, settingsOf(o), base)));
      }),
    );

  pk.command('list')
    .description("a tenant's publishable keys (never the keys themselves)")
    .requiredOption('--tenant <id>', 'tenant id')
    .action((o: { tenant: string }) =>
      runCommand(async (ctx) => {
        const tenant = validateTenantId(o.tenant);
        print(await asOwner(ctx, (pool) => listPublishableKeys(pool, tenant)));
      }),
    );

  pk.command('update')
    .description("change a key's name, allowed origins (--origin replaces the list) or privacy settings")
    .argument('<key-id>', 'publishable key id')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--origin <origin>', 'an allowed origin (repeat for several; replaces the list)', collectOrigins)
    .option('--name <name>', 'a new label')
    .option('--require-consent', 'require consent from now on')
    .option('--no-require-consent', 'stop requiring consent')
    .option('--gpc', 'honour Global Privacy Control')
    .option('--no-gpc', 'stop honouring Global Privacy Control')
    .action((id: string, o: SettingFlags & { tenant: string }) =>
      runCommand(async (ctx) => {
        const tenant = validateTenantId(o.tenant);
        print(await asOwner(ctx, (pool) => updatePublishableKey(pool, tenant, keyId(id), settingsOf(o))));
      }),
    );

  pk.command('revoke')
    .description('revoke a publishable key: the collect endpoint refuses it within 5 seconds (the record stays)')
    .argument('<key-id>', 'publishable key id')
    .requiredOption('--tenant <id>', 'tenant id')
    .action((id: string, o: { tenant: string }) =>
      runCommand(async (ctx) => {
        const tenant = validateTenantId(o.tenant);
        print(await asOwner(ctx, (pool) => revokePublishableKey(pool, tenant, keyId(id))));
      }),
    );
}
