// client.keys (admin keys only) and client.tokens: API keys of the engine and short-lived tokens
// minted from the client's own key.
import type * as api from '../generated/api.gen.js';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { AutoPager } from '../core/pagination.js';
import { seg } from '../core/ids.js';

export type ApiKey = api.ApiKey;
export type CreatedKey = api.CreatedKey;
export type Token = api.Token;

export interface CreateKeyConfig {
  /** A label for people (1-64 of [a-zA-Z0-9._-]). */
  name: string;
  /** Admin keys see every record and manage keys (default false). */
  admin?: boolean;
}

export class KeyManager {
  constructor(private readonly http: HttpTransport) {}

  /** Creates a key; `secret` is in this answer only. Needs an admin key (not a token). */
  create(config: CreateKeyConfig, options?: RequestOptions): Promise<CreatedKey> {
    return this.http.request({ ...options, method: 'POST', path: '/v1/keys', json: config, useApiKey: true });
  }

  /** Active keys, newest first, without secrets. */
  list(filter: { pageSize?: number } = {}, options?: RequestOptions): AutoPager<ApiKey> {
    return new AutoPager<ApiKey>(
      (cursor) => this.http.request({ ...options, method: 'GET', path: '/v1/keys', query: { limit: filter.pageSize, cursor }, useApiKey: true }),
      (raw) => raw,
    );
  }

  /** Revokes a key: it and every token minted from it stop working at once. */
  revoke(id: string, options?: RequestOptions): Promise<void> {
    return this.http.request({ ...options, method: 'DELETE', path: `/v1/keys/${seg(id)}`, useApiKey: true });
  }
}

export class TokenManager {
  constructor(private readonly http: HttpTransport) {}

  /** Mints a token that acts as this client's key for `expiresIn` seconds (1..86400, default 3600). */
  create(config: { expiresIn?: number } = {}, options?: RequestOptions): Promise<Token> {
    return this.http.request({ ...options, method: 'POST', path: '/v1/tokens', json: config, useApiKey: true });
  }
}
