// HTTP transport: auth, JSON, query strings, the error envelope, per-call timeout/abort, the
// idempotency key, retries (policy in retry.ts) and the one-time token refresh on 401.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { errorFromBody, FaaSError, networkError } from './errors.js';
import { parseRetryAfter, retryDecision, sleep } from './retry.js';
import type { ResolvedConfig } from './config.js';
import { SessionTokens, type MintedToken } from './session.js';

export const SDK_VERSION = '0.1.0';

/** A request body fetch accepts (Node's global fetch types are not exported by name). */
export type BodyInit = NonNullable<RequestInit['body']>;

/** Options every SDK method accepts as its last argument. */
export interface RequestOptions {
  /** Milliseconds for this call (each attempt), overriding the client's `timeout`. */
  timeout?: number;
  /** Cancels the call (and a stream already flowing). */
  signal?: AbortSignal;
  /** Retries for this call, overriding the client's `maxRetries`. */
  maxRetries?: number;
  /**
   * Idempotency-Key for a POST. By default the SDK makes one per call and reuses it on retries;
   * pass your own to make a call safe to repeat across processes, or `null` to send none (then a
   * POST is never retried).
   */
  idempotencyKey?: string | null;
}

export type QueryValue = string | number | boolean | null | undefined | readonly string[] | Record<string, string>;

export interface RequestSpec extends RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, QueryValue>;
  /** JSON body. */
  json?: unknown;
  /** Raw body, created anew for each attempt (so a file can be re-read on retry). */
  body?: () => BodyInit | Readable | Uint8Array;
  /** A raw body that can be sent once only (a caller's stream): disables retries. */
  oneShotBody?: BodyInit | Readable | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  /** Authenticate with the API key itself even when session tokens are on (minting tokens). */
  useApiKey?: boolean;
}

/** Builds `?a=1&metadata[k]=v&types=a,b`: arrays are comma-joined, objects use deepObject style. */
export function buildQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) params.append(key, value.join(','));
    else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) params.append(`${key}[${k}]`, v);
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export class HttpTransport {
  /** Session tokens minted from the API key, when `useSessionTokens` is on. */
  readonly session: SessionTokens | undefined;

  constructor(private readonly config: ResolvedConfig) {
    if (config.useSessionTokens) {
      this.session = new SessionTokens(() =>
        this.request<MintedToken>({ method: 'POST', path: '/v1/tokens', json: { expiresIn: config.tokenExpiresIn }, useApiKey: true }),
      );
    }
  }

  get endpoint(): string {
    return this.config.endpoint;
  }

  get apiKey(): string {
    return this.config.apiKey;
  }

  /** OptimizationHints.reuseSnapshots: whether creates and chain steps may be answered from the step cache. */
  get reuseSnapshots(): boolean {
    return this.config.reuseSnapshots;
  }

  /** The client's OptimizationHints other than reuseSnapshots (docs/storage.md). */
  get hints(): ResolvedConfig['hints'] {
    return this.config.hints;
  }

  url(path: string, query?: Record<string, QueryValue>): string {
    return `${this.config.endpoint}${path}${buildQuery(query)}`;
  }

  /** Sends the request and parses a JSON answer (`undefined` for 204). */
  async request<T>(spec: RequestSpec): Promise<T> {
    return this.send(spec, async (response) => {
      if (response.status === 204) return undefined as T;
      const text = await response.text();
      return (text ? JSON.parse(text) : undefined) as T;
    });
  }

  /** Sends the request and returns the successful Response unread (streams, binary bodies). */
  async requestRaw(spec: RequestSpec): Promise<Response> {
    return this.send(spec, async (response) => response, { keepOpen: true });
  }

  /** Headers for a request made outside fetch (the WebSocket terminal): a session token when on. */
  async authHeaders(useApiKey = false): Promise<Record<string, string>> {
    const bearer = this.session && !useApiKey ? await this.session.bearer() : this.config.apiKey;
    return { Authorization: `Bearer ${bearer}`, 'User-Agent': `faas-sdk-typescript/${SDK_VERSION}` };
  }

  /** Refreshes the key through the tokenProvider; false when there is none. */
  async refreshToken(): Promise<boolean> {
    if (!this.config.tokenProvider) return false;
    this.config.apiKey = await this.config.tokenProvider();
    return true;
  }

  private async send<T>(spec: RequestSpec, read: (r: Response) => Promise<T>, opts: { keepOpen?: boolean } = {}): Promise<T> {
    const idempotencyKey = spec.method === 'POST' && spec.idempotencyKey !== null ? (spec.idempotencyKey ?? randomUUID()) : undefined;
    const maxRetries = spec.maxRetries ?? this.config.maxRetries;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(spec, idempotencyKey, read, opts.keepOpen === true);
      } catch (error) {
        if (!(error instanceof FaaSError)) throw error;
        // An expired session token: mint a fresh one and try once more.
        if (error.code === 'token_expired' && this.session && !spec.useApiKey && !refreshed && spec.oneShotBody === undefined) {
          refreshed = true;
          await this.session.refresh();
          attempt--;
          continue;
        }
        if (error.statusCode === 401 && !refreshed && spec.oneShotBody === undefined && (await this.refreshToken())) {
          refreshed = true;
          attempt--; // the refresh retry is not one of the maxRetries
          continue;
        }
        const delay = retryDecision(error, {
          method: spec.method,
          idempotencyKey,
          bodyReplayable: spec.oneShotBody === undefined,
          attempt,
          maxRetries,
          retryAfter: error.retryAfter === undefined ? undefined : String(error.retryAfter),
        });
        if (delay === undefined) throw error;
        await sleep(delay, spec.signal);
      }
    }
  }

  private async attempt<T>(spec: RequestSpec, idempotencyKey: string | undefined, read: (r: Response) => Promise<T>, keepOpen: boolean): Promise<T> {
    const timeoutMs = spec.timeout ?? this.config.timeout;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, timeoutMs);
    const onUserAbort = () => controller.abort(spec.signal!.reason);
    if (spec.signal?.aborted) onUserAbort();
    spec.signal?.addEventListener('abort', onUserAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onUserAbort);
    };
    let handedOver = false;
    try {
      const response = await this.config.fetch(this.url(spec.path, spec.query), this.init(spec, idempotencyKey, controller.signal, await this.authHeaders(spec.useApiKey)));
      if (!response.ok) throw await errorFromResponse(response);
      if (keepOpen) {
        // The caller now owns the body; the timeout covered the wait for headers only, but the
        // caller's signal still cancels the stream.
        clearTimeout(timer);
        handedOver = true;
      }
      return await read(response);
    } catch (error) {
      if (error instanceof FaaSError) throw error;
      if (spec.signal?.aborted) throw spec.signal.reason;
      if (timedOut) throw networkError(`no answer from ${this.config.endpoint} within ${timeoutMs} ms (${spec.method} ${spec.path})`, error);
      throw networkError(describeNetworkFailure(this.config.endpoint, error), error);
    } finally {
      if (!handedOver) cleanup();
      else clearTimeout(timer);
    }
  }

  private init(spec: RequestSpec, idempotencyKey: string | undefined, signal: AbortSignal, auth: Record<string, string>): RequestInit {
    const headers: Record<string, string> = { ...auth, Accept: 'application/json', ...spec.headers };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    let body: BodyInit | Readable | Uint8Array | undefined;
    if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.body || spec.oneShotBody) {
      headers['Content-Type'] = spec.contentType ?? 'application/octet-stream';
      body = spec.body ? spec.body() : spec.oneShotBody;
    }
    const init: RequestInit & { duplex?: 'half' } = { method: spec.method, headers, signal };
    if (body instanceof Readable) {
      init.body = Readable.toWeb(body) as unknown as ReadableStream;
      init.duplex = 'half';
    } else if (body !== undefined) {
      init.body = body;
      if (body instanceof ReadableStream) init.duplex = 'half';
    }
    return init;
  }
}

export async function errorFromResponse(response: Response): Promise<FaaSError> {
  const requestId = response.headers.get('x-request-id') ?? undefined;
  const retryAfterHeader = response.headers.get('retry-after');
  // Seconds, from either form of the header (whole seconds or an HTTP date).
  const retryAfterMs = parseRetryAfter(retryAfterHeader);
  const retryAfter = retryAfterMs === undefined ? undefined : retryAfterMs / 1000;
  let body: { error?: Record<string, unknown> } | undefined;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = undefined;
  }
  const envelope = body?.error ?? { message: `engine answered HTTP ${response.status} without an error body` };
  return errorFromBody({ requestId, ...envelope }, response.status, { retryAfter });
}

function describeNetworkFailure(endpoint: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? '';
  if (code === 'ECONNREFUSED') return `cannot reach the engine at ${endpoint} (connection refused); is it running? Start it with \`faas engine start\``;
  return `cannot reach the engine at ${endpoint}: ${cause?.message ?? (error as Error)?.message ?? String(error)}`;
}
