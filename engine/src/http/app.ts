// buildApp(deps): the HTTP API, separate from listening so tests can drive it too.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { FaasError } from '../core/errors.js';
import type { Services } from '../engine.js';
import { makeAuth } from './auth.js';
import { sendError } from './errors.js';
import { registerIdempotency } from './idempotency.js';
import type { Contract } from './spec.js';
import { registerExecRoutes } from './routes/exec.js';
import { registerImageRoutes } from './routes/images.js';
import { registerInstanceRoutes } from './routes/instances.js';
import { registerSnapshotRoutes } from './routes/snapshots.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerEventRoutes } from './routes/events.js';
import { registerFileRoutes } from './routes/files.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerProcessRoutes } from './routes/processes.js';
import { registerTerminalRoutes } from './routes/terminal.js';

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface Router {
  /** Registers the handler of one operation of the contract. */
  op(operationId: string, handler: Handler): void;
}

export interface AppDeps {
  services: Services;
  contract: Contract;
  apiKey: string;
  version: string;
  logger?: boolean | object;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    genReqId: () => `req_${randomBytes(8).toString('hex')}`,
    bodyLimit: 16 * 1024 * 1024,
    requestTimeout: 0, // long waits, branches and streams are legitimate
    keepAliveTimeout: 65_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false } },
    routerOptions: { querystringParser: parseQuery },
  });

  const auth = makeAuth(deps.apiKey);
  // A path the contract knows, asked with a method it does not serve, is 405 with `Allow` (RFC 9110),
  // not 404: the resource exists, the method does not. Decided before the body is parsed (a QUERY
  // without Content-Type would otherwise be a parser error), after auth (401 comes first).
  const allowedMethods = methodsByPath(deps.contract);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    auth(req);
    const path = req.url.split('?')[0];
    const methods = allowedMethods(path);
    if (methods.length && !methods.includes(req.method)) {
      reply.header('allow', methods.join(', '));
      throw new FaasError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${methods.join(', ')}`, { allow: methods });
    }
  });
  // A request on an instance's exec/files/processes/terminal routes keeps it from being idle
  // (autoStop) until its response is finished (so an open stream counts as activity).
  app.addHook('onRequest', async (req, reply) => {
    const release = deps.services.lifetimes.touchUrl(req.url);
    if (release) reply.raw.once('close', release);
  });
  // Bodies that are streams (tar, raw file bytes) reach handlers unread.
  app.addContentTypeParser(['application/octet-stream', 'application/x-tar', 'application/gzip'], (_req, payload, done) => done(null, payload));
  registerIdempotency(app, deps.services.idempotency);
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) =>
    sendError(new FaasError('not_found', `no route ${req.method} ${req.url.split('?')[0]}; see /v1/openapi.json`), req, reply),
  );

  const registered = new Set<string>();
  const router: Router = {
    op(operationId, handler) {
      const op = deps.contract.operations.get(operationId);
      if (!op) throw new Error(`operation ${operationId} is not in spec/openapi.yaml`);
      registered.add(operationId);
      app.route({ method: op.method as 'GET', url: op.url, schema: op.schema, handler });
    },
  };
  registerSystemRoutes(app, router, deps);
  registerImageRoutes(router, deps.services);
  registerSnapshotRoutes(router, deps.services);
  registerInstanceRoutes(router, deps.services);
  registerExecRoutes(router, deps.services);
  registerFileRoutes(router, deps.services);
  registerProcessRoutes(router, deps.services);
  registerEventRoutes(app, router, deps.services);
  registerTerminalRoutes(app, router, deps.services, deps.apiKey);
  registerMetricsRoutes(router, deps.services);
  // The contract and the engine agree both ways: no route outside the spec, no operation unserved.
  const missing = [...deps.contract.operations.keys()].filter((id) => !registered.has(id));
  if (missing.length) throw new Error(`spec/openapi.yaml operations without a route: ${missing.join(', ')}`);
  return app;
}

/**
 * The methods the contract serves on a concrete path (GET also answers HEAD); empty for a path it
 * does not know. A path written out in the spec (`/v1/images/import`) is that path item only, even
 * where a templated one (`/v1/images/{id}`) would also match it.
 */
export function methodsByPath(contract: Contract): (path: string) => string[] {
  const routes = [...contract.operations.values()].map((op) => ({
    method: op.method,
    literal: !op.url.includes(':'),
    re: new RegExp(`^${op.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}$`),
  }));
  return (path) => {
    const matching = routes.filter((r) => r.re.test(path));
    const literal = matching.filter((r) => r.literal);
    const methods = new Set((literal.length ? literal : matching).map((r) => r.method));
    if (methods.has('GET')) methods.add('HEAD');
    return ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => methods.has(m));
  };
}

/** `metadata[k]=v` (deepObject) becomes `{ metadata: { k: v } }`; everything else stays flat. */
export function parseQuery(qs: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    const m = /^(\w+)\[([^\]]+)\]$/.exec(k);
    if (m) {
      // A repeated key is kept as an array, which the schema (one string per key) then refuses;
      // silently keeping the last value would filter on something the client did not ask for.
      const obj = (out[m[1]] ??= {}) as Record<string, unknown>;
      obj[m[2]] = m[2] in obj ? ([] as unknown[]).concat(obj[m[2]], v) : v;
    } else if (k in out) {
      out[k] = ([] as unknown[]).concat(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}
