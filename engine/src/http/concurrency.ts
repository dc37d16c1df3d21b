// Concurrency limits on the work that costs the engine memory and the instance CPU: requests in
// flight on an instance's exec, files and processes routes, counted per instance and per API
// credential. Beyond a limit the answer is `429 resource_limit` with `Retry-After`, given in
// onRequest: before the body is read and before anything reaches the sandbox. A slot is held until
// the response is finished or the client is gone (handlers abort their agent call then).
// Not counted: `…/processes/{pid}/wait` (a wait holds nothing), the terminal WebSocket (its
// upgrade bypasses these hooks; terminals are counted in metrics), port forwards and tunnels
// (WebSockets too, with limits of their own in routes/network.ts), and every other route.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FaasError } from '../core/errors.js';

export interface ConcurrencyLimits {
  /** Requests in flight per instance. */
  perInstance: number;
  /** Requests in flight per API credential, across its instances. */
  perCredential: number;
}

const COUNTED = /^\/v1\/instances\/([^/?]+)\/(?:exec|files|processes)(?:[/?]|$)/;
const NOT_COUNTED = /^\/v1\/instances\/[^/?]+\/processes\/[^/?]+\/wait(?:\?|$)/;
const RETRY_AFTER_SECONDS = 1;

/**
 * The identity a per-credential limit is keyed on: the API key's id, so a key and every token
 * minted from it share one limit (minting more tokens buys no more concurrency). Before auth has
 * run (it always has, on these routes) a hash of the bearer value stands in — never the value itself.
 */
export function credentialOf(req: FastifyRequest): string {
  if (req.principal) return req.principal.keyId;
  const header = req.headers.authorization ?? '';
  return createHash('sha256').update(header).digest('hex').slice(0, 16);
}

export class InFlight {
  private readonly counts = new Map<string, number>();

  /** Takes a slot under every key, or none: returns the key that is full. */
  tryAcquire(keys: [string, number][]): string | null {
    for (const [key, max] of keys) if ((this.counts.get(key) ?? 0) >= max) return key;
    for (const [key] of keys) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return null;
  }

  release(keys: string[]): void {
    for (const key of keys) {
      const n = (this.counts.get(key) ?? 1) - 1;
      if (n > 0) this.counts.set(key, n);
      else this.counts.delete(key);
    }
  }
}

/** Registers the onRequest hook; call after authentication, so a bad key is 401, not 429. */
export function registerConcurrencyLimits(app: FastifyInstance, limits: ConcurrencyLimits): InFlight {
  const inFlight = new InFlight();
  app.addHook('onRequest', async (req, reply) => {
    const m = COUNTED.exec(req.url);
    if (!m || NOT_COUNTED.test(req.url)) return;
    const instance = `instance:${m[1]}`;
    const credential = `credential:${credentialOf(req)}`;
    const full = inFlight.tryAcquire([[instance, limits.perInstance], [credential, limits.perCredential]]);
    if (full === instance) {
      throw busy(`instance ${m[1]} already has ${limits.perInstance} exec/files/processes requests in flight`, 'instance', limits.perInstance);
    }
    if (full) {
      throw busy(`this API key already has ${limits.perCredential} exec/files/processes requests in flight`, 'credential', limits.perCredential);
    }
    reply.raw.once('close', () => inFlight.release([instance, credential]));
  });
  return inFlight;
}

function busy(what: string, scope: string, limit: number): FaasError {
  return new FaasError(
    'resource_limit',
    `${what}; wait for some to finish and retry after ${RETRY_AFTER_SECONDS} s (for long output use POST …/exec/stream, which holds one slot however much it prints)`,
    { reason: 'too_many_requests', scope, limit },
    { status: 429, retryAfterSeconds: RETRY_AFTER_SECONDS },
  );
}
