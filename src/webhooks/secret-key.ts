import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomainError } from '../errors.js';

export class SecretKeyError extends DomainError {}

/** The server key that encrypts webhook secrets at rest (AES-256-GCM). */
export interface SecretKey {
  readonly key: Buffer;
  /** Short public fingerprint, stored with each ciphertext so a wrong key is named, not guessed. */
  readonly id: string;
  /** Where it came from: "SKELDIR_SECRET_KEY" or the key file's path. */
  readonly origin: string;
}

export const KEY_FILE = 'secret.key';

function fromText(text: string, origin: string): SecretKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : null;
  if (!key || key.length !== 32) {
    throw new SecretKeyError('secret_key_invalid', `${origin} must be 32 random bytes as 64 hex digits or 44 base64 characters (generate one with: openssl rand -hex 32)`);
  }
  return { key, id: createHash('sha256').update('skeldir-secret-key-id').update(key).digest('hex').slice(0, 12), origin };
}

/**
 * The key from `SKELDIR_SECRET_KEY` (64 hex digits or base64 of 32 bytes) when set; otherwise
 * the key file `<SKELDIR_DATA_DIR>/secret.key`, created once with 32 random bytes and mode 0600
 * when it does not exist (so `skeldir start` works on a fresh machine). Every process that
 * reads or writes webhook secrets (the API and the `skeldir webhook` commands) must see the same
 * key: set SKELDIR_SECRET_KEY when they do not share a data directory.
 */
export function loadSecretKey(env: NodeJS.ProcessEnv, dataDir: string, options: { create?: boolean } = {}): SecretKey {
  if (env.SKELDIR_SECRET_KEY) return fromText(env.SKELDIR_SECRET_KEY, 'SKELDIR_SECRET_KEY');
  const file = join(dataDir, KEY_FILE);
  if (!existsSync(file)) {
    if (options.create === false) throw new SecretKeyError('secret_key_missing', `no SKELDIR_SECRET_KEY and no key file ${file}`);
    mkdirSync(dataDir, { recursive: true });
    try {
      // wx: never overwrite a key another process just created.
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) chmodSync(file, 0o600);
  return fromText(readFileSync(file, 'utf8'), file);
}

/**
 * Encrypts a secret. The associated data binds the ciphertext to its tenant and endpoint (not to
 * the current/previous slot: a ciphertext moved between the two slots of one endpoint still
 * decrypts), so a ciphertext copied to another endpoint or tenant does not.
 * Format: `v1.<key id>.<iv b64url>.<tag b64url>.<ciphertext b64url>`.
 */
export function encryptSecret(key: SecretKey, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', key.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

export function decryptSecret(key: SecretKey, stored: string, aad: string): string {
  const parts = stored.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') throw new SecretKeyError('secret_undecryptable', 'the stored secret has an unknown format');
  if (parts[1] !== key.id) {
    throw new SecretKeyError('secret_key_mismatch', `the secret was encrypted with key ${parts[1]}, but the configured key (${key.origin}) is ${key.id}`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(parts[2]!, 'base64url'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(parts[3]!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(parts[4]!, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretKeyError('secret_undecryptable', 'the stored secret does not decrypt with the configured key (tampered or moved between rows)');
  }
}

/** Associated data of an endpoint's secrets (both slots). */
export const secretAad = (tenantId: string, endpointId: string) => `skeldir-webhook-secret:${tenantId}:${endpointId}`;
