import { createHash } from 'node:crypto';
import type { Queryable } from '../db/pool.js';

/**
 * Login throttling: failed sign-ins are counted per e-mail address and per client address in a
 * sliding window; past the limit, sign-in is refused (429 with Retry-After) until the oldest
 * counted failure leaves the window, before any password is checked. A success clears the
 * e-mail's count. The failures are rows of `login_failures` (revision 202612022246), so every
 * API process behind a balancer shares one budget; the application role reaches them only
 * through three SECURITY DEFINER functions, and keys are SHA-256 digests (no e-mail or address
 * stored in clear).
 */
export interface ThrottleOptions {
  /** Failures allowed per e-mail within the window (default 5). */
  perEmail?: number;
  /** Failures allowed per client address within the window (default 50: an office behind one NAT). */
  perAddress?: number;
  /** Window length (default 15 minutes). */
  windowMs?: number;
  now?: () => number;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
const emailKey = (email: string) => digest(`e:${email.toLowerCase()}`);
const addressKey = (address: string) => digest(`a:${address}`);

export class LoginThrottle {
  private readonly perEmail: number;
  private readonly perAddress: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Queryable,
    options: ThrottleOptions = {},
  ) {
    this.perEmail = options.perEmail ?? 5;
    this.perAddress = options.perAddress ?? 50;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds until another attempt is allowed, or 0 when it is allowed now. */
  async retryAfterMs(email: string, address: string): Promise<number> {
    const { rows } = await this.db.query<{ ms: string }>(`SELECT skeldir_login_wait($1, $2, $3, $4, $5, $6) AS ms`, [
      emailKey(email),
      addressKey(address),
      this.perEmail,
      this.perAddress,
      this.windowMs,
      new Date(this.now()),
    ]);
    return Math.max(0, Number(rows[0]!.ms));
  }

  async recordFailure(email: string, address: string): Promise<void> {
    await this.db.query(`SELECT skeldir_login_failed($1, $2, $3)`, [[emailKey(email), addressKey(address)], this.windowMs, new Date(this.now())]);
  }

  async recordSuccess(email: string): Promise<void> {
    await this.db.query(`SELECT skeldir_login_succeeded($1)`, [emailKey(email)]);
  }
}
