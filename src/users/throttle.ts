/**
 * Login throttling: failed sign-ins are counted per e-mail address and per client address in a
 * sliding window; past the limit, sign-in is refused (429 with Retry-After) until the oldest
 * failure leaves the window, before any password is checked. A success clears the e-mail's
 * count. Per API process, like the request rate limit (src/http/rate-limit.ts): with N processes
 * behind a balancer an attacker gets at most N times the budget, still a handful of guesses a
 * minute against one account, each costing an argon2id verification.
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

const MAX_KEYS = 100_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly perEmail: number;
  private readonly perAddress: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(options: ThrottleOptions = {}) {
    this.perEmail = options.perEmail ?? 5;
    this.perAddress = options.perAddress ?? 50;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds until another attempt is allowed, or 0 when it is allowed now. */
  retryAfterMs(email: string, address: string): number {
    return Math.max(this.wait(`e:${email.toLowerCase()}`, this.perEmail), this.wait(`a:${address}`, this.perAddress));
  }

  recordFailure(email: string, address: string): void {
    for (const key of [`e:${email.toLowerCase()}`, `a:${address}`]) {
      const list = this.recent(key);
      list.push(this.now());
      if (!this.failures.has(key) && this.failures.size >= MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(key, list);
    }
  }

  recordSuccess(email: string): void {
    this.failures.delete(`e:${email.toLowerCase()}`);
  }

  private recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > since);
  }

  private wait(key: string, limit: number): number {
    const list = this.recent(key);
    if (list.length < limit) return 0;
    return list[list.length - limit]! + this.windowMs - this.now();
  }
}
