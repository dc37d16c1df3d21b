// The one error handler: every failure leaves the API as the same envelope with a stable code.
// 5xx internals are logged, never shown; the requestId ties the two together.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, FaasError } from '../core/errors.js';

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
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // The parser also lands here for valid JSON with a `__proto__` key (prototype pollution),
      // which its own message would call "not valid JSON".
      return new FaasError('invalid_request', 'the body is not valid JSON, or it has a key named __proto__ (refused)', null);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FaasError('invalid_request', e.message, null);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new FaasError('invalid_request', e.message, null);
  }
  return new FaasError('internal', 'internal error; see the engine log for this requestId', null);
}

export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const fe = toFaasError(err);
  if (fe.status >= 500) req.log.error({ err, requestId: req.id }, fe.message);
  if (fe.retryAfterSeconds) reply.header('retry-after', String(fe.retryAfterSeconds));
  return reply.code(fe.status).type('application/json').send(envelope(fe.code, fe.message, fe.details, req.id));
}

export const statusOf = (code: keyof typeof ERROR_STATUS) => ERROR_STATUS[code];
