// The one retry policy of the SDK. A request is retried only when repeating it cannot do the work
// twice: GET/PUT/DELETE, or a POST carrying an Idempotency-Key (the engine replays the first
// answer). Retries wait 0.5 s, 1 s, 2 s … up to 8 s with jitter, or what Retry-After says.
// A stream whose response has started is never retried (its events may already be consumed).
import type { FaaSError } from './errors.js';

export const INITIAL_RETRY_DELAY_MS = 500;
export const MAX_RETRY_DELAY_MS = 8000;
/** A Retry-After beyond this is not waited for: the error is returned to the caller instead. */
export const MAX_RETRY_AFTER_MS = 60_000;

export function isRetryableRequest(method: string, hasIdempotencyKey: boolean, bodyReplayable: boolean): boolean {
  if (!bodyReplayable) return false;
  const m = method.toUpperCase();
  return m === 'GET' || m === 'PUT' || m === 'DELETE' || m === 'HEAD' || (m === 'POST' && hasIdempotencyKey);
}

/**
 * Whether an error answer is transient. 408, 429 and 5xx are; a 409 is only when it says our own
 * Idempotency-Key is still being worked on (a retry of the same body that overtook the first
 * attempt) — the engine marks it with `details.key`, and the body is the same by construction.
 */
export function isRetryableError(error: FaaSError, ctx: { idempotencyKey?: string; attempt: number }): boolean {
  const status = error.statusCode;
  if (status === undefined) return error.code === 'network_error';
  if (status === 408 || status === 429 || status >= 500) return true;
  if (status === 409 && error.code === 'conflict' && ctx.attempt > 0 && ctx.idempotencyKey !== undefined) {
    return error.details?.key === ctx.idempotencyKey;
  }
  return false;
}

/**
 * The whole decision after a failed attempt: milliseconds to wait before trying again, or
 * undefined to give up. `retryAfter` is the raw header. Python's twin is `RetryPolicy.decide`;
 * both are checked against tests/conformance/retry-policy.json.
 */
export function retryDecision(
  error: FaaSError,
  ctx: { method: string; idempotencyKey?: string; bodyReplayable?: boolean; attempt: number; maxRetries: number; retryAfter?: string | null },
  random: () => number = Math.random,
): number | undefined {
  if (!isRetryableRequest(ctx.method, ctx.idempotencyKey !== undefined, ctx.bodyReplayable ?? true)) return undefined;
  if (ctx.attempt >= ctx.maxRetries || !isRetryableError(error, ctx)) return undefined;
  return retryDelayMs(ctx.attempt, ctx.retryAfter, random);
}

/** Milliseconds to wait before retry number `attempt` (0-based), honouring Retry-After when sent. */
export function retryDelayMs(attempt: number, retryAfter: string | null | undefined, random: () => number = Math.random): number | undefined {
  const fromHeader = parseRetryAfter(retryAfter);
  if (fromHeader !== undefined) return fromHeader <= MAX_RETRY_AFTER_MS ? fromHeader : undefined;
  const base = Math.min(INITIAL_RETRY_DELAY_MS * 2 ** attempt, MAX_RETRY_DELAY_MS);
  // Up to 25% less, so many clients that failed together do not retry together.
  return Math.round(base * (1 - random() * 0.25));
}

/** Retry-After is whole seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
