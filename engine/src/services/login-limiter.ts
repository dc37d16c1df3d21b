// Failed logins per client address: the /login form (http/routes/web.ts) and the SSH gateway
// (ssh/guard.ts) both refuse an address that has failed too often, so nobody can guess API keys
// as fast as the engine answers. docs/security/web.md, docs/security/sshguard.md.
//
// Two policies on one table:
//   - sliding window (no `lock`): an address with `maxFailures` failures in the last `windowMs`
//     is refused until the oldest of them leaves the window (the /login form);
//   - lock-out (`lock` set, fail2ban-style): the failure that reaches `maxFailures` within the
//     window locks the address for `lock.ms`, doubled for each further lock-out while the address
//     is remembered (up to `lock.maxMs`), and starts a fresh count (the SSH gateway).
// Only the failing address is ever refused: another address's failures never delay a login.

interface Entry {
  failures: number[];
  lockedUntil: number;
  /** Lock-outs so far; each doubles the next one. */
  strikes: number;
}

/** The table is bounded: past this many addresses the longest-known one is forgotten. */
const MAX_ADDRESSES = 10_000;

export class LoginLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxFailures = 10,
    private readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly lock: { ms: number; maxMs: number } | null = null,
  ) {}

  /** Seconds until this address may try again (0: it may now). */
  retryAfter(address: string): number {
    const e = this.entries.get(address);
    if (!e) return 0;
    const now = this.now();
    if (e.lockedUntil > now) return Math.max(1, Math.ceil((e.lockedUntil - now) / 1000));
    const recent = this.recent(e);
    if (this.lock || recent.length < this.maxFailures) return 0;
    return Math.max(1, Math.ceil((recent[0] + this.windowMs - now) / 1000));
  }

  /** Counts a failure; returns the seconds of the lock-out it started (0: none). */
  fail(address: string): number {
    const e = this.entries.get(address) ?? { failures: [], lockedUntil: 0, strikes: 0 };
    // Re-inserted so that the Map's order is least-recently-failed first (what eviction drops).
    this.entries.delete(address);
    this.entries.set(address, e);
    if (this.entries.size > MAX_ADDRESSES) this.entries.delete(this.entries.keys().next().value!);
    e.failures = this.recent(e);
    e.failures.push(this.now());
    // An address quiet for the longest lock-out after its last one starts again at the base.
    if (this.lock && e.strikes && this.now() > e.lockedUntil + this.lock.maxMs) e.strikes = 0;
    if (!this.lock || e.failures.length < this.maxFailures) return 0;
    const ms = Math.min(this.lock.maxMs, this.lock.ms * 2 ** Math.min(e.strikes, 30));
    e.strikes++;
    e.failures = [];
    e.lockedUntil = this.now() + ms;
    return Math.ceil(ms / 1000);
  }

  private recent(e: Entry): number[] {
    const since = this.now() - this.windowMs;
    return e.failures.filter((t) => t > since);
  }
}
