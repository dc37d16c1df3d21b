// Idempotency-Key: a repeat of a mutating request with the same key, method and path returns the
// first response without doing the work again; the same key with another body is `conflict`
// (details.reason `body_mismatch`), and so is a repeat while the first is still running
// (`in_progress`, with Retry-After). A streamed response cannot be replayed: a repeat of a stream's
// key is `conflict` (`stream_not_replayable`). Requests with streamed bodies (uploads) skip it.
// Keys are scoped per API key (stored as `<keyId>:<key>`): one key can never replay, or collide
// with, another key's answer under the same Idempotency-Key.
//
// Only final answers are kept (`storable`): a 429 or an `in_progress`/state 409 says "not now", and
// a 5xx says "failed before finishing"; replaying those for 24 h would turn the retry that
// docs/errors.md recommends into the same refusal forever. A replay is a new request: it carries
// its own X-Request-Id, and a stored error body's requestId is rewritten to match it, so a client
// can always correlate the header with the body.
//
// A JSON answer sent as a stream (one-shot exec results, routes/exec-result.ts) is stored
// deflated, as `deflate:<base64>`: it is read once into the compressor, never held whole, and
// replayed by inflating it as the socket takes it.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDeflateRaw, createInflateRaw } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { conflict, FaasError, invalid } from '../core/errors.js';
import type { IdempotencyRepo } from '../store/sqlite/repos.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const TTL_MS = 24 * 3600 * 1000;
const STREAMS = /\/exec\/stream$/;
const STREAM_MARKER = 'stream';
const KEY_SHAPE = /^[\x20-\x7e]{1,255}$/;

/** Answers worth replaying: done, and the same if asked again. */
export const storable = (status: number) => status < 500 && status !== 408 && status !== 409 && status !== 429;
const DEFLATED = 'deflate:';

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: { key: string; path: string; bodyHash: string };
  }
}

export function registerIdempotency(app: FastifyInstance, repo: IdempotencyRepo): void {
  const inFlight = new Set<string>();
  let lastExpiry = 0;

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const key = req.headers['idempotency-key'];
    if (key === undefined || !MUTATING.has(req.method)) return;
    if (typeof key !== 'string' || !KEY_SHAPE.test(key)) {
      throw invalid('Idempotency-Key must be 1 to 255 printable ASCII characters (e.g. a UUID), sent once', { field: 'Idempotency-Key' });
    }
    if (!isReplayable(req)) return;
    const path = req.url;
    const bodyHash = createHash('sha256').update(JSON.stringify(req.body ?? null)).digest('hex');
    if (Date.now() - lastExpiry > 60_000) {
      lastExpiry = Date.now();
      repo.expire(new Date(Date.now() - TTL_MS).toISOString());
    }
    const scoped = `${req.principal?.keyId ?? '-'}:${key}`;
    const stored = repo.get(scoped, req.method, path);
    if (stored) {
      if (stored.response === STREAM_MARKER) {
        throw conflict('a streamed response cannot be replayed; send a new Idempotency-Key', { key, reason: 'stream_not_replayable' });
      }
      if (stored.bodyHash !== bodyHash) throw conflict('this Idempotency-Key was used with a different request body', { key, reason: 'body_mismatch' });
      reply.header('idempotent-replayed', 'true');
      return reply.code(stored.status).type('application/json').send(unpack(withRequestId(stored.response, req.id)));
    }
    const slot = `${scoped} ${req.method} ${path}`;
    if (inFlight.has(slot)) {
      throw new FaasError('conflict', 'a request with this Idempotency-Key is still in progress; retry later', { key, reason: 'in_progress' }, { retryAfterSeconds: 1 });
    }
    inFlight.add(slot);
    req.idempotency = { key: scoped, path, bodyHash };
    if (STREAMS.test(path.split('?')[0])) {
      // The handler hijacks the socket, so onSend never sees a body to store: record the refusal now.
      repo.put(scoped, req.method, path, { bodyHash, status: 409, response: STREAM_MARKER });
    }
    reply.raw.once('close', () => inFlight.delete(slot));
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const idem = req.idempotency;
    if (!idem || !storable(reply.statusCode) || reply.getHeader('idempotent-replayed')) return payload;
    if (typeof payload === 'string') {
      repo.put(idem.key, req.method, idem.path, { bodyHash: idem.bodyHash, status: reply.statusCode, response: payload });
    } else if (payload instanceof Readable && String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
      const stored = DEFLATED + (await deflate(payload)).toString('base64');
      repo.put(idem.key, req.method, idem.path, { bodyHash: idem.bodyHash, status: reply.statusCode, response: stored });
      return unpack(stored);
    }
    return payload;
  });
}

/** A stored error envelope answers under the replaying request's id. */
function withRequestId(response: string, requestId: string): string {
  try {
    const body = JSON.parse(response) as { error?: { requestId?: string } };
    if (!body?.error || typeof body.error !== 'object') return response;
    body.error.requestId = requestId;
    return JSON.stringify(body);
  } catch {
    return response;
  }
}

async function deflate(body: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(body, createDeflateRaw(), async function* (packed) {
    for await (const chunk of packed) out.push(chunk as Buffer);
  });
  return Buffer.concat(out);
}

function unpack(stored: string): string | Readable {
  if (!stored.startsWith(DEFLATED)) return stored;
  return Readable.from([Buffer.from(stored.slice(DEFLATED.length), 'base64')]).pipe(createInflateRaw());
}

function isReplayable(req: FastifyRequest): boolean {
  // A login's answer carries a session cookie meant for its caller alone: never stored, never replayed.
  if (req.routeOptions.url === '/v1/session') return false;
  const type = String(req.headers['content-type'] ?? '');
  return !type || type.startsWith('application/json');
}
