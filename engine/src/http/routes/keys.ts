// API keys (admin keys only) and tokens minted from the calling key. Secrets appear once, in the
// answer to the create; lists never show them (the engine keeps only their SHA-256).
import type { Services } from '../../engine.js';
import type { KeyRecord } from '../../store/sqlite/keys.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';
import { body, listQuery, params, query } from './common.js';

const publicKey = ({ revokedAt: _r, ...k }: KeyRecord) => k;

export function registerKeyRoutes(r: Router, s: Services): void {
  r.op('createKey', async (req, reply) => {
    const { secret, ...rec } = s.keys.create(principalOf(req), body<{ name: string; admin?: boolean }>(req));
    return reply.code(201).send({ ...publicKey(rec), secret });
  });
  r.op('listKeys', async (req) => {
    const q = listQuery(query(req));
    const page = s.keys.list(principalOf(req), { limit: q.limit, cursor: q.cursor });
    return { ...page, data: page.data.map(publicKey) };
  });
  r.op('revokeKey', async (req, reply) => {
    s.keys.revoke(principalOf(req), params(req).id);
    return reply.code(204).send();
  });
  r.op('createToken', async (req, reply) => {
    const b = body<{ expiresIn?: number }>(req);
    return reply.code(201).send(s.keys.mintToken(principalOf(req), b.expiresIn));
  });
}
