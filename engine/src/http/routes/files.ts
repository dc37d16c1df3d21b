// Files of an instance. Raw bodies (file bytes, tar) reach the handlers as unread streams (see the
// content-type parser in app.ts) and go to the agent as they arrive; downloads are streamed back.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { body, bool, closedSignal, params, query } from './common.js';

export function registerFileRoutes(r: Router, s: Services): void {
  const f = s.files;
  const path = (req: FastifyRequest) => String(query(req).path);
  r.op('statFile', async (req) => f.stat(params(req).id, path(req)));
  r.op('listFiles', async (req) => f.list(params(req).id, path(req)));
  r.op('readFile', async (req, reply) => {
    const { body: stream, length } = await f.read(params(req).id, path(req), closedSignal(reply));
    reply.type('application/octet-stream');
    if (length !== null) reply.header('content-length', length);
    return reply.send(stream);
  });
  r.op('writeFile', async (req, reply) => {
    const q = query(req);
    const length = /^[0-9]{1,15}$/.test(req.headers['content-length'] ?? '') ? Number(req.headers['content-length']) : undefined;
    return closeOnError(reply, f.write(params(req).id, path(req), req.body as Readable, { mode: q.mode, parents: bool(q.parents, true), length }));
  });
  r.op('mkdir', async (req) => f.mkdir(params(req).id, body(req)));
  r.op('removeFile', async (req, reply) => {
    await f.remove(params(req).id, body(req));
    return reply.code(204).send();
  });
  r.op('renameFile', async (req) => f.rename(params(req).id, body(req)));
  r.op('uploadTar', async (req, reply) => closeOnError(reply, f.uploadTar(params(req).id, path(req), req.body as Readable)));
  r.op('downloadTar', async (req, reply) => {
    const stream = await f.downloadTar(params(req).id, path(req), closedSignal(reply));
    return reply.type('application/x-tar').send(stream);
  });
  r.op('copyFiles', async (req) => f.copy(params(req).id, body(req)));
}

/**
 * An upload refused part way leaves the client's body unread (the agent stopped reading it): answer
 * with `Connection: close` so the error is delivered and the half-read connection is not reused.
 */
export async function closeOnError<T>(reply: FastifyReply, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    reply.header('connection', 'close');
    throw err;
  }
}
