import { Algorithm, hash, verify } from '@node-rs/argon2';
import { UserError } from './errors.js';

/**
 * Passwords are hashed with argon2id (RFC 9106), memory-hard, through @node-rs/argon2 (Rust,
 * prebuilt for every platform npm serves, runs on libuv's thread pool). Parameters: OWASP's
 * first recommendation, m = 19 MiB, t = 2, p = 1; measured here ~60 ms per hash on a quiet core
 * (200 ms while the machine was busy), which also bounds guessing per CPU.
 */
const OPTIONS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD = 12;
export const MAX_PASSWORD = 256;

/** Length rules only (NIST SP 800-63B §5.1.1.2: no composition rules), and not the e-mail itself. */
export function validatePassword(password: unknown, email: string): string {
  if (typeof password !== 'string') throw new UserError('password_invalid', 'the password must be a string', { field: 'body/password' });
  const length = [...password].length;
  if (length < MIN_PASSWORD) throw new UserError('password_invalid', `the password must have at least ${MIN_PASSWORD} characters`, { field: 'body/password' });
  if (length > MAX_PASSWORD) throw new UserError('password_invalid', `the password must have at most ${MAX_PASSWORD} characters`, { field: 'body/password' });
  if (password.trim().toLowerCase() === email.toLowerCase()) {
    throw new UserError('password_invalid', 'the password must not be the e-mail address', { field: 'body/password' });
  }
  return password;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;
/** Spends the time of one verification when no user matched, so timing does not tell which e-mails exist. */
export async function verifyNothing(password: string): Promise<void> {
  dummy ??= hashPassword('skeldir-no-such-user-password');
  await verifyPassword(await dummy, password);
}
