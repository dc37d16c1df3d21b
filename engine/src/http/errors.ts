// The one error handler: every failure leaves the API as the same envelope with a stable code and
// the request's id in both the body and X-Request-Id. 5xx internals are logged (with that id),
// never shown. Answers made before Fastify has a request (clientError: 400/408/414/431) use the
// same envelope through rawErrorResponse.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { ERROR_STATUS, FaasError } from '../core/errors.js';
import type { Logger } from '../services/logger.js';
import { bodyTooLarge } from './json-body.js';
import { validationMessage } from './validation-messages.js';

export function envelope(code: string, message: string, details: unknown, requestId: string) {
  return { error: { code, message, details: details ?? null, requestId } };
}

export const newRequestId = () => `req_${randomBytes(8).toString('hex')}`;

/** The parts of the request a schema error can be about, to quote the refused value. */
export type RequestParts = { params?: unknown; querystring?: unknown; body?: unknown; headers?: unknown };

export function toFaasError(err: unknown, part?: RequestParts): FaasError {
  if (err instanceof FaasError) return err;
  const e = err as FastifyError & { validation?: unknown[]; validationContext?: string };
  if (e.validation) {
    const errors = e.validation as Parameters<typeof validationMessage>[1];
    const message = validationMessage(e.validationContext, errors, part?.[e.validationContext as keyof RequestParts]);
    return new FaasError('invalid_request', message, { errors: e.validation, in: e.validationContext ?? null });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FaasError('payload_too_large', 'the request body is too large', null);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // The parser also lands here for valid JSON with a `__proto__` key (prototype pollution),
      // which its own message would call "not valid JSON".
      return new FaasError('invalid_request', 'the body is not valid JSON, or it has a key named __proto__ (refused)', null);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FaasError('invalid_request', e.message, null);
    case 'FST_ERR_BAD_URL':
      return new FaasError('invalid_request', 'the URL is not valid (a malformed %-escape in the path?)', null);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new FaasError('invalid_request', 'a path parameter is too long', null, { status: 414 });
    // A full disk met outside the checkpoint path (a bundle, a temp file, the state database) is
    // still the engine's disk being full, not an internal error.
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SQLITE_FULL':
      return new FaasError('storage_full', "the engine's disk is full; delete snapshots or free disk space, then retry", { cause: e.code });
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new FaasError('invalid_request', e.message, null);
  }
  return new FaasError('internal', 'internal error; the engine log has the cause under this requestId', null);
}

/** Logs a 5xx with its request id (the client is only told to quote the id). */
export function logServerError(log: Logger, fe: FaasError, err: unknown, requestId: string, where: string): void {
  if (fe.status < 500) return;
  const e = err as Error;
  log.error({ requestId, where, code: fe.code, err: { message: e?.message ?? String(err), stack: e?.stack } }, fe.message);
}

/** Retry-After for answers that promise a retry can work: every 429 and 503 has one. */
export function retryAfterOf(fe: FaasError): number | undefined {
  return fe.retryAfterSeconds ?? (fe.status === 429 || fe.status === 503 ? 1 : undefined);
}

/** How much of a refused body is read and discarded so that its sender can read the 413. */
const DRAIN_MAX = 64 * 1024 * 1024;

export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, log: Logger): FastifyReply | Promise<FastifyReply> {
  const fe = (err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? tooLarge(req) : toFaasError(err, { params: req.params, querystring: req.query, body: req.body, headers: req.headers });
  // A body refused part way (too large, too deep) is still arriving: answering and closing at once
  // resets the connection under the sender (EPIPE), which then never sees the envelope. Discard
  // the rest first (the connection closes after the answer), up to a bound.
  if ((fe.code === 'payload_too_large' || fe.details?.reason === 'too_deep') && !req.raw.complete && !req.raw.destroyed) {
    return drained(req.raw, DRAIN_MAX).then(() => send(fe, err, req, reply, log));
  }
  return send(fe, err, req, reply, log);
}

function drained(body: FastifyRequest['raw'], max: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      body.off('data', onData).off('end', done).off('error', done).off('close', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > max) done();
    };
    body.on('data', onData).once('end', done).once('error', done).once('close', done);
    body.resume();
  });
}

function send(fe: FaasError, err: unknown, req: FastifyRequest, reply: FastifyReply, log: Logger): FastifyReply {
  logServerError(log, fe, err, req.id, `${req.method} ${req.url.split('?')[0]}`);
  // Errors raised before the onRequest hooks (bad URLs, over-long params) have no header yet.
  reply.header('x-request-id', req.id);
  const retryAfter = retryAfterOf(fe);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply.code(fe.status).type('application/json').send(envelope(fe.code, fe.message, fe.details, req.id));
}

/** A complete HTTP/1.1 error answer for a raw socket (no Fastify request exists), then close. */
export function rawErrorResponse(fe: FaasError, requestId: string): string {
  const body = JSON.stringify(envelope(fe.code, fe.message, fe.details, requestId));
  const retryAfter = retryAfterOf(fe);
  return (
    `HTTP/1.1 ${fe.status} ${STATUS_CODES[fe.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Request-Id: ${requestId}\r\n${retryAfter !== undefined ? `Retry-After: ${retryAfter}\r\n` : ''}Connection: close\r\n\r\n${body}`
  );
}

/** A body over the route's limit (Fastify's own check, on routes without the JSON parser). */
function tooLarge(req: FastifyRequest): FaasError {
  return bodyTooLarge(req.routeOptions.bodyLimit);
}

export const statusOf = (code: keyof typeof ERROR_STATUS) => ERROR_STATUS[code];
