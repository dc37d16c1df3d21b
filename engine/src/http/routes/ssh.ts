// SSH public keys for the gateway (each owned by the calling API key) and the gateway's address
// and host key (docs/ssh.md).
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';
import { body, listQuery, params, query } from './common.js';

export function registerSshRoutes(r: Router, s: Services): void {
  r.op('createSshKey', async (req, reply) => {
    return reply.code(201).send(s.sshKeys.add(principalOf(req), body<{ name?: string; publicKey: string }>(req)));
  });
  r.op('listSshKeys', async (req) => {
    const q = listQuery(query(req));
    return s.sshKeys.list(principalOf(req), { limit: q.limit, cursor: q.cursor });
  });
  r.op('deleteSshKey', async (req, reply) => {
    s.sshKeys.remove(principalOf(req), params(req).id);
    return reply.code(204).send();
  });
  r.op('getSshHost', async () => s.sshHost());
}
