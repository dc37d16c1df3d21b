// The SSH gateway's defences before a login (docs/security/sshguard.md), what an sshd operator
// expects from MaxAuthTries, MaxStartups, LoginGraceTime and fail2ban:
//   - failed logins per source address lock the source out for a while (services/login-limiter.ts,
//     the /login form's limiter with a lock-out that doubles on each repeat);
//   - connections not logged in within the grace time are closed;
//   - unauthenticated connections are capped in total and per source, counted from the TCP
//     accept (before the client has sent a byte), so a slowloris of handshakes cannot starve real
//     users: a logged-in connection no longer counts.
// A source is an IPv4 address, or an IPv6 /64 (one host's usual allocation); IPv4-mapped IPv6
// addresses are their IPv4 address.
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { LoginLimiter } from '../services/login-limiter.js';

export interface SshGuardConfig {
  /** Failed logins on one connection before it is closed (FAAS_SSH_MAX_AUTH_TRIES). */
  maxAuthTries: number;
  /** Failed logins from one source within the window that lock it out (FAAS_SSH_MAX_FAILURES). */
  maxFailures: number;
  failureWindowSeconds: number;
  /** The first lock-out; each further one doubles, up to lockoutMaxSeconds. */
  lockoutSeconds: number;
  lockoutMaxSeconds: number;
  /** Seconds from the TCP accept to a successful login (FAAS_SSH_LOGIN_GRACE_SECONDS). */
  loginGraceSeconds: number;
  /** Unauthenticated connections at once, in total and per source (FAAS_SSH_MAX_STARTUPS*). */
  maxStartups: number;
  maxStartupsPerSource: number;
}

/** Why a new connection is refused, or null: it is let in. */
export type Refusal = 'total' | 'source' | null;

export class SshGuard {
  private readonly limiter: LoginLimiter;
  private readonly pending = new Map<Socket, { source: string; timer: NodeJS.Timeout }>();
  private readonly perSource = new Map<string, number>();

  constructor(
    readonly config: SshGuardConfig,
    now: () => number = Date.now,
  ) {
    this.limiter = new LoginLimiter(config.maxFailures, config.failureWindowSeconds * 1000, now, {
      ms: config.lockoutSeconds * 1000,
      maxMs: config.lockoutMaxSeconds * 1000,
    });
  }

  /**
   * A new TCP connection: counted as unauthenticated until `loggedIn` or its close, and destroyed
   * when the grace time runs out. Refused (and not counted) past either cap.
   */
  admit(socket: Socket): Refusal {
    const source = sourceOf(socket.remoteAddress);
    if (this.pending.size >= this.config.maxStartups) return 'total';
    const mine = this.perSource.get(source) ?? 0;
    if (mine >= this.config.maxStartupsPerSource) return 'source';
    this.perSource.set(source, mine + 1);
    const timer = setTimeout(() => socket.destroy(), this.config.loginGraceSeconds * 1000);
    timer.unref();
    this.pending.set(socket, { source, timer });
    socket.once('close', () => this.loggedIn(socket));
    return null;
  }

  /** The connection has logged in (or gone): it no longer counts and has no deadline. */
  loggedIn(socket: Socket): void {
    const p = this.pending.get(socket);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(socket);
    const left = (this.perSource.get(p.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(p.source, left);
    else this.perSource.delete(p.source);
  }

  /** Destroys every connection not logged in (the gateway is closing). */
  dropUnauthenticated(): void {
    for (const sock of [...this.pending.keys()]) sock.destroy();
  }

  /** Seconds this source stays locked out (0: it may log in). */
  lockedFor(source: string): number {
    return this.limiter.retryAfter(source);
  }

  /** Counts a failed login of this source; returns the seconds of the lock-out it started (0: none). */
  fail(source: string): number {
    return this.limiter.fail(source);
  }
}

/** The address a limit applies to: IPv4 as is (also when IPv4-mapped), IPv6 as its /64. */
export function sourceOf(address: string | undefined): string {
  const a = (address ?? '').replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1];
  if (isIPv4(a) || !isIPv6(a)) return a;
  return `${expand(a).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros. */
function expand(a: string): string[] {
  let s = a;
  // A trailing dotted quad (::ffff:1.2.3.4 was handled; others such as 64:ff9b::1.2.3.4) as two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    const [b0, b1, b2, b3] = quad.slice(1).map(Number);
    s = s.slice(0, quad.index) + `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
