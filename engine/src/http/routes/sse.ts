// Writing text/event-stream responses: headers committed once, one frame per event, and a flag
// that says whether the socket can take more (so producers can stop instead of buffering).
import type { FastifyReply, FastifyRequest } from 'fastify';

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
