// Writing text/event-stream responses: headers committed once, one frame per event, and a flag
// that says whether the socket can take more (so producers can stop instead of buffering).
import { once } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../services/logger.js';
import { envelope, logServerError, toFaasError } from '../errors.js';

export interface SseWriter {
  /** False when the socket buffer is full: wait for `drain` before writing more. */
  send(event: string, data: unknown, id?: number | string): boolean;
  comment(text: string): boolean;
  readonly res: FastifyReply['raw'];
  end(): void;
}

export function openSse(req: FastifyRequest, reply: FastifyReply): SseWriter {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': req.id,
  });
  res.flushHeaders();
  return {
    res,
    send: (event, data, id) => res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    comment: (text) => res.write(`: ${text}\n\n`),
    end: () => res.end(),
  };
}

/**
 * `send` for a producer that can wait: a slow reader slows the stream down (backpressure reaches
 * the agent) instead of filling memory. Stops waiting once `signal` aborts (the client left).
 */
export function pacedSend(sse: SseWriter, signal: AbortSignal): (event: string, data: unknown) => Promise<void> {
  return async (event, data) => {
    if (!sse.send(event, data) && !signal.aborted) await once(sse.res, 'drain', { signal }).catch(() => undefined);
  };
}

/** The last event of a stream that failed after it started: the error envelope (unless the client left). */
export async function sendStreamError(log: Logger, req: FastifyRequest, send: (event: string, data: unknown) => Promise<void>, err: unknown, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  const fe = toFaasError(err);
  logServerError(log, fe, err, req.id, `POST ${req.url.split('?')[0]} (stream)`);
  await send('error', envelope(fe.code, fe.message, fe.details, req.id));
}
