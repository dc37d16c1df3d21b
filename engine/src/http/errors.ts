// The one error handler: every failure leaves the API as the same envelope with a stable code.
// 5xx internals are logged, never shown; the requestId ties the two together.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, FaasError } from '../core/errors.js';
import { bodyTooLarge } from './json-body.js';

export function envelope(code: string, message: string, details: unknown, requestId: string) {
  return { error: { code, message, details: details ?? null, requestId } };
}

export function toFaasError(err: unknown): FaasError {
  if (err instanceof FaasError) return err;
  const e = err as FastifyError & { validation?: unknown[]; validationContext?: string };
  if (e.validation) {
    const first = (e.validation as { instancePath?: string; message?: string; params?: unknown }[])[0];
    const where = `${e.validationContext ?? 'request'}${first?.instancePath ?? ''}`;
    return new FaasError('invalid_request', `${where} ${first?.message ?? 'is invalid'}`, { errors: e.validation });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FaasError('payload_too_large', 'the request body is too large', null);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new FaasError('invalid_request', e.message, null);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new FaasError('invalid_request', e.message, null);
  }
  return new FaasError('internal', 'internal error; see the engine log for this requestId', null);
}

/** How much of a refused body is read and discarded so that its sender can read the 413. */
const DRAIN_MAX = 64 * 1024 * 1024;

export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<FastifyReply> {
  const fe = (err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? tooLarge(req) : toFaasError(err);
  // A body refused part way (too large, too deep) is still arriving: answering and closing at once
  // resets the connection under the sender (EPIPE), which then never sees the envelope. Discard
  // the rest first (the connection closes after the answer), up to a bound.
  if ((fe.code === 'payload_too_large' || fe.details?.reason === 'too_deep') && !req.raw.complete && !req.raw.destroyed) {
    return drained(req.raw, DRAIN_MAX).then(() => send(fe, err, req, reply));
  }
  return send(fe, err, req, reply);
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

function send(fe: FaasError, err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (fe.status >= 500) req.log.error({ err, requestId: req.id }, fe.message);
  if (fe.retryAfterSeconds) reply.header('retry-after', String(fe.retryAfterSeconds));
  return reply.code(fe.status).type('application/json').send(envelope(fe.code, fe.message, fe.details, req.id));
}

/** A body over the route's limit (Fastify's own check, on routes without the JSON parser). */
function tooLarge(req: FastifyRequest): FaasError {
  return bodyTooLarge(req.routeOptions.bodyLimit);
}

export const statusOf = (code: keyof typeof ERROR_STATUS) => ERROR_STATUS[code];
