// Browser sessions of the login page and dashboard (docs/security/web.md). Lifecycle: a person
// posts a key at /login → `create` keeps the key (or token) in this process's memory under a
// random 256-bit id, which becomes the HttpOnly cookie; every request with that cookie → `get`
// (expired or unknown ids are nothing) and the HTTP layer re-authenticates the kept key, so a key
// revoked after the login ends its sessions too; logout → `delete`. Nothing is written to disk:
// an engine restart logs every browser out, which is the safe direction.
// The login limiter (services/login-limiter.ts) counts failed logins per client address.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface WebSession {
  id: string;
  /** The key or token that was entered; re-authenticated on every request. */
  secret: string;
  keyId: string;
  /** Sent back by the page as X-Faas-Csrf on every state-changing request. */
  csrfToken: string;
  expiresAt: number;
}

const MAX_SESSIONS = 10_000;

export class WebSessions {
  private readonly sessions = new Map<string, WebSession>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  create(secret: string, keyId: string): WebSession {
    this.sweep();
    // A flood of logins (each needs a valid key) must not grow memory without bound: the oldest go.
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const session: WebSession = {
      id: randomBytes(32).toString('base64url'),
      secret,
      keyId,
      csrfToken: randomBytes(32).toString('base64url'),
      expiresAt: this.now() + this.ttlSeconds * 1000,
    };
    this.sessions.set(digest(session.id), session);
    return session;
  }

  /** The live session of a cookie value, or undefined (unknown, forged or expired). */
  get(id: string): WebSession | undefined {
    // Looked up by a digest of the id, so the map's own lookup time says nothing about the id.
    const session = this.sessions.get(digest(id));
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(digest(id));
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(digest(id));
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
  }
}

/** Whether the CSRF token a page sent is its session's (constant time). */
export function csrfMatches(session: WebSession, sent: string | undefined): boolean {
  if (!sent) return false;
  const a = Buffer.from(digest(session.csrfToken));
  const b = Buffer.from(digest(sent));
  return timingSafeEqual(a, b);
}

const digest = (s: string) => createHash('sha256').update(s).digest('base64url');

// Kept here for the importers of its first home.
export { LoginLimiter } from './login-limiter.js';
