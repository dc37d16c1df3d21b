// The API's HTTP server, with the HTTP services' proxy in front: Fastify gets every request and
// upgrade whose Host does not name a service. Fastify applies its server options only to servers
// it makes itself, so the ones buildApp relies on are set here the same way.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServiceProxy } from './service-proxy.js';

export function serviceServerFactory(proxy: ServiceProxy) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer((req, res) => {
      if (!proxy.handleRequest(req, res)) handler(req, res);
    });
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0;
    // Upgrade listeners (the terminal's) are registered on the server later, by routes; an upgrade
    // for a service must reach none of them, so the proxy sees it first and swallows it.
    const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
    server.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event === 'upgrade' && proxy.handleUpgrade(args[0] as IncomingMessage, args[1] as Duplex, args[2] as Buffer)) return true;
      return emit(event, ...args);
    }) as typeof server.emit;
    return server;
  };
}
