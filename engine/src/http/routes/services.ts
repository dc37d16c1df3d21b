// HTTP services of an instance (services/http-services.ts): expose, hide, list. The ownership guard
// covers these routes through their /v1/instances/:id prefix.
import type { Services } from '../../engine.js';
import type { ServiceAuth } from '../../store/sqlite/http-services.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';
import { body } from './common.js';

export function registerServiceRoutes(r: Router, s: Services): void {
  const svc = s.httpServices;
  const named = (req: Parameters<Parameters<Router['op']>[1]>[0]) => req.params as { id: string; name: string };
  r.op('listServices', async (req) => {
    const { id } = named(req);
    s.instances.get(id);
    return { data: svc.list(id).map((x) => svc.view(x, principalOf(req))) };
  });
  r.op('getService', async (req) => {
    const { id, name } = named(req);
    s.instances.get(id);
    return svc.view(svc.get(id, name), principalOf(req));
  });
  r.op('exposeService', async (req) => {
    const { id, name } = named(req);
    const b = body<{ port: number; auth?: ServiceAuth }>(req);
    return svc.view(svc.expose(id, name, b.port, b.auth), principalOf(req));
  });
  r.op('hideService', async (req, reply) => {
    const { id, name } = named(req);
    svc.hide(id, name);
    return reply.code(204).send();
  });
}
