// Where the client finds its endpoint and API key: explicit options first, then FAAS_API_KEY /
// FAAS_ENDPOINT (the endpoint also from FAAS_HOST/FAAS_PORT, as the engine listens), then the credentials.json the engine writes into its state directory
// ($FAAS_STATE_DIR, default /var/lib/faas), so a local engine needs no configuration at all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaaSError } from './errors.js';
import { DEFAULT_TOKEN_EXPIRES_IN } from './session.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:7440';
export const DEFAULT_STATE_DIR = '/var/lib/faas';
/** Long enough for a snapshot create or a default 5-minute exec; per-call `timeout` overrides it. */
export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/** Called when the engine answers 401: return a fresh key (session token) and the call is retried once. */
export type TokenProvider = () => string | Promise<string>;

export interface ClientConfig {
  /** Engine API key. Default: FAAS_API_KEY, else credentials.json of the local engine. */
  apiKey?: string;
  /** Base URL, e.g. `http://127.0.0.1:7440`. Default: FAAS_ENDPOINT, else FAAS_HOST/FAAS_PORT, else credentials.json, else port 7440 on localhost. */
  endpoint?: string;
  /** Per-request timeout in milliseconds (default 10 minutes). */
  timeout?: number;
  /** Retries of a failed idempotent request (default 2). */
  maxRetries?: number;
  /** Session-token refresh hook, used once when the engine answers 401. */
  tokenProvider?: TokenProvider;
  /**
   * Send short-lived tokens minted from `apiKey` (`POST /v1/tokens`) instead of the key itself,
   * refreshed before they expire and once on `401 token_expired`. Default false.
   */
  useSessionTokens?: boolean;
  /** Lifetime of each session token in seconds (1..86400, default 3600). */
  tokenExpiresIn?: number;
  /** Replaces global fetch (tests, proxies). */
  fetch?: typeof fetch;
  /** How the engine may save work (the seed's OptimizationHints). */
  optimizationHints?: OptimizationHints;
}

/**
 * The seed's OptimizationHints, on the client (every call) or in one call's body. `reuseSnapshots`
 * (default true): `snapshots.create` and the chain steps `exec`/`upload` are answered from the
 * engine's step cache when the same create or step already ran (docs/step-cache.md); false sends
 * `fresh`. The others (unset: the engine's default) travel as `optimizationHints` on
 * `snapshots.create`, `instances.snapshot` and `instances.branch` (docs/storage.md):
 * `parallelExecution: false` restores a branch's children one after another; `lazyLoading: false`
 * pins the image's materialized copy (restores never assemble it); `incrementalSnapshots: false`
 * keeps the image whole instead of deduplicated.
 */
export interface OptimizationHints {
  reuseSnapshots?: boolean;
  parallelExecution?: boolean;
  lazyLoading?: boolean;
  incrementalSnapshots?: boolean;
}

export interface ResolvedConfig {
  apiKey: string;
  endpoint: string;
  timeout: number;
  maxRetries: number;
  tokenProvider?: TokenProvider;
  useSessionTokens: boolean;
  tokenExpiresIn: number;
  fetch: typeof fetch;
  reuseSnapshots: boolean;
  /** The client's hints other than reuseSnapshots, sent with every snapshot-making call. */
  hints: Omit<OptimizationHints, 'reuseSnapshots'>;
}

export interface Credentials {
  endpoint?: string;
  apiKey?: string;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FAAS_STATE_DIR || DEFAULT_STATE_DIR;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), 'credentials.json');
}

/** Reads credentials.json; undefined when it is missing or unreadable (then other sources apply). */
export function readCredentials(env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  try {
    return JSON.parse(readFileSync(credentialsPath(env), 'utf8')) as Credentials;
  } catch {
    return undefined;
  }
}

/**
 * The engine's address from FAAS_HOST / FAAS_PORT, the variables the engine itself listens on
 * (so a client beside an engine started with FAAS_PORT=7500 finds it with no state dir); undefined
 * when neither is set. A wildcard listen address means this host's loopback.
 */
export function endpointFromHostPort(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = env.FAAS_HOST || undefined;
  const port = env.FAAS_PORT || undefined;
  if (!host && !port) return undefined;
  const name = !host || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port ?? 7440}`;
}

export function resolveConfig(config: ClientConfig = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  // An empty value (FAAS_API_KEY=) counts as unset, as shells make it easy to export one.
  const keyFromEnv = env.FAAS_API_KEY || undefined;
  const endpointFromEnv = env.FAAS_ENDPOINT || endpointFromHostPort(env);
  const file = !config.apiKey && !keyFromEnv ? readCredentials(env) : !config.endpoint && !endpointFromEnv ? readCredentials(env) : undefined;
  const apiKey = config.apiKey || keyFromEnv || file?.apiKey;
  if (!apiKey) {
    throw new FaaSError(
      `no API key: pass { apiKey }, set FAAS_API_KEY, or start a local engine (\`faas engine start\`), which writes ${credentialsPath(env)}`,
      { code: 'missing_api_key' },
    );
  }
  const endpoint = (config.endpoint || endpointFromEnv || file?.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  return {
    apiKey,
    endpoint,
    timeout: config.timeout ?? DEFAULT_TIMEOUT_MS,
    maxRetries: config.maxRetries ?? 2,
    tokenProvider: config.tokenProvider,
    useSessionTokens: config.useSessionTokens ?? false,
    tokenExpiresIn: config.tokenExpiresIn ?? DEFAULT_TOKEN_EXPIRES_IN,
    fetch: config.fetch ?? globalThis.fetch.bind(globalThis),
    reuseSnapshots: config.optimizationHints?.reuseSnapshots ?? true,
    hints: (({ reuseSnapshots: _r, ...rest }) => rest)(config.optimizationHints ?? {}),
  };
}

/** A snapshot-making body with the client's hints under its own (docs/storage.md). */
export function withHints<T extends { optimizationHints?: OptimizationHints }>(hints: Omit<OptimizationHints, 'reuseSnapshots'>, body: T): T {
  const merged = { ...hints, ...body.optimizationHints };
  return Object.keys(merged).length ? { ...body, optimizationHints: merged } : body;
}
