// Session tokens (the seed's "session token refresh mechanism"): with `useSessionTokens` the client
// sends short-lived tokens minted from its API key instead of the key itself, so the long-lived
// secret crosses the wire once per token lifetime. A token is refreshed before it expires (at 80 %
// of its life, and at least 30 s before the end when it lives longer than that), and once more if
// the engine still answers `401 token_expired` (clock skew, a suspended laptop). Concurrent calls
// share one refresh.

export interface MintedToken {
  token: string;
  expiresAt: string;
}

/** Default lifetime of a session token, seconds (the engine's default too). */
export const DEFAULT_TOKEN_EXPIRES_IN = 3600;

export class SessionTokens {
  private current: { token: string; refreshAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly mint: () => Promise<MintedToken>,
    private readonly now: () => number = Date.now,
  ) {}

  /** A token that is not about to expire, minting one when needed. */
  async bearer(): Promise<string> {
    if (this.current && this.now() < this.current.refreshAt) return this.current.token;
    return this.refresh();
  }

  /** Mints a new token now (one at a time: concurrent callers wait for the same one). */
  refresh(): Promise<string> {
    this.pending ??= (async () => {
      try {
        const started = this.now();
        const minted = await this.mint();
        const expiresAt = Date.parse(minted.expiresAt);
        const life = Math.max(0, expiresAt - started);
        this.current = { token: minted.token, refreshAt: started + Math.max(life * 0.8, life - 30_000) };
        return minted.token;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }
}
