import type { Readable } from 'node:stream';
import { invalid } from '../../core/errors.js';
import type { Metadata } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { body, listOwner, listQuery, ownerOf, params, query } from './common.js';
import { closeOnError } from './files.js';
import { publicImage } from './views.js';

export function registerImageRoutes(r: Router, s: Services): void {
  r.op('listImages', async (req) => {
    const page = s.images.list({ ...listQuery(query(req)), name: query(req).name, owner: listOwner(req) });
    return { ...page, data: page.data.map(publicImage) };
  });
  r.op('getImage', async (req) => publicImage(s.images.get(params(req).id)));
  r.op('setImageMetadata', async (req) => publicImage(s.images.setMetadata(params(req).id, body<Metadata>(req))));
  r.op('importImage', async (req, reply) => {
    const q = query(req);
    if (!q.name) throw invalid('query parameter name is required');
    if (!req.body || typeof (req.body as Readable).pipe !== 'function') throw invalid('send the root filesystem as an application/x-tar body');
    const length = req.headers['content-length'];
    // A refused import stops reading the body: closeOnError answers and drops the connection.
    const img = await closeOnError(reply, s.images.import(q.name, req.body as Readable, q.metadata ?? {}, ownerOf(req), length === undefined ? undefined : Number(length)));
    return reply.code(201).send(publicImage(img));
  });
  r.op('deleteImage', async (req, reply) => {
    await s.images.delete(params(req).id);
    return reply.code(204).send();
  });
}
