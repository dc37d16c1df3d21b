// faas instance expose|hide|services: HTTP services of an instance behind the engine's proxy.
import type { ServiceAuth, ServiceEndpoint } from '../resources/network.js';
import { arg, int, str, type CommandGroup } from './command.js';
import { table, UsageError } from './output.js';

const AUTH: ServiceAuth[] = ['api-key', 'token', 'none'];
const showServices = (list: ServiceEndpoint[]) =>
  table(['NAME', 'PORT', 'AUTH', 'URL'], list.map((s) => [s.name, s.port, s.auth, s.tokenUrl ?? s.url]));

export const instanceServiceCommands: CommandGroup = {
  expose: {
    usage: '<instance-id> <name> --port N [--auth api-key|token|none]',
    summary: 'Serve a port of an instance at a URL (http://<name>-<id>.<service host>:<port>/)',
    options: { port: { type: 'string', short: 'p' }, auth: { type: 'string' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const name = arg(ctx, 1, 'name');
      const port = int(ctx, 'port');
      if (port === undefined) throw new UsageError('missing --port: the port the server in the instance listens on (e.g. --port 8080)');
      const auth = str(ctx, 'auth');
      if (auth !== undefined && !AUTH.includes(auth as ServiceAuth)) throw new UsageError(`--auth must be one of ${AUTH.join(', ')}`);
      const svc = await ctx.client().network.exposeHttp(id, name, port, { auth: auth as ServiceAuth | undefined });
      // For token auth the link is what a person opens; for the others the plain URL.
      ctx.out.result(svc, (s: ServiceEndpoint) => s.tokenUrl ?? s.url);
    },
  },
  hide: {
    usage: '<instance-id> <name>',
    summary: 'Stop serving an HTTP service (open connections through it close)',
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const name = arg(ctx, 1, 'name');
      await ctx.client().network.hideHttp(id, name);
      ctx.out.result({ id, name, hidden: true }, () => `hid ${name} of ${id}`);
    },
  },
  services: {
    usage: '<instance-id>',
    summary: 'List the HTTP services an instance exposes (token links are fresh)',
    async run(ctx) {
      ctx.out.result(await ctx.client().network.listServices(arg(ctx, 0, 'instance-id')), showServices);
    },
  },
};
