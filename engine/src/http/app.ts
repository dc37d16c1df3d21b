// buildApp(deps): the HTTP API, separate from listening so tests can drive it too.
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { FaasError, invalid } from '../core/errors.js';
import type { Services } from '../engine.js';
import type { Logger } from '../services/logger.js';
import { makeAuth } from './auth.js';
import { clientErrorHandler, refuseNul } from './boundary.js';
import { registerConcurrencyLimits } from './concurrency.js';
import { bodyLimitOf, registerJsonParser, type JsonBodyLimits } from './json-body.js';
import { newRequestId, sendError } from './errors.js';
import { registerIdempotency } from './idempotency.js';
import type { Contract } from './spec.js';
import type { ServiceProxy } from './service-proxy.js';
import { registerExecRoutes } from './routes/exec.js';
import { registerImageRoutes } from './routes/images.js';
import { registerInstanceRoutes } from './routes/instances.js';
import { registerSnapshotRoutes } from './routes/snapshots.js';
import { registerBranchDiffRoutes, registerDiffRoutes } from './routes/diff.js';
import { registerStateRoutes } from './routes/state.js';
import { registerStepRoutes } from './routes/steps.js';
import { registerSystemRoutes } from './routes/system.js';
import { loginRedirect, registerFormParser, registerWebRoutes } from './routes/web.js';
import { registerEventRoutes } from './routes/events.js';
import { registerFileRoutes } from './routes/files.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerProcessRoutes } from './routes/processes.js';
import { registerTerminalRoutes } from './routes/terminal.js';
import { registerNetworkRoutes } from './routes/network.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerBranchRoutes } from './routes/branches.js';
import { registerSshRoutes } from './routes/ssh.js';
import { registerOwnership } from './ownership.js';
import { registerServiceRoutes } from './routes/services.js';
import { serviceServerFactory } from './service-proxy-server.js';

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface Router {
  /** Registers the handler of one operation of the contract. */
  op(operationId: string, handler: Handler): void;
  /** The engine's logger (5xx inside streams are logged with their request id). */
  log: Logger;
}

export interface AppDeps {
  services: Services;
  contract: Contract;
  version: string;
  /** Where 5xx causes go, with their request id (the client only sees the id). */
  log: Logger;
  limits?: AppLimits;
  /** The HTTP services' reverse proxy, served on the same listener by Host (service-proxy.ts). */
  proxy?: ServiceProxy;
}

const Ajv = AjvModule.default ?? AjvModule;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as typeof addFormatsModule.default;
const ajvOptions = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
// Two validators: query strings and path parameters are text by nature, so `?limit=5` is coerced
// to a number; a JSON body already has types, and `{"count":"2"}` is a wrong type, not a 2.
const coercing = addFormats(new Ajv({ ...ajvOptions, coerceTypes: 'array' }));
const exact = addFormats(new Ajv({ ...ajvOptions, coerceTypes: false }));

export interface AppLimits extends JsonBodyLimits {
  instanceConcurrency: number;
  credentialConcurrency: number;
  forwardConcurrency: number;
  forwardCredentialConcurrency: number;
}

/** The defaults of engine/src/config.ts, for apps built without a config. */
export const DEFAULT_LIMITS: AppLimits = {
  instanceConcurrency: 16, credentialConcurrency: 64, forwardConcurrency: 256, forwardCredentialConcurrency: 1024,
  execBodyMax: 16 * 1024 * 1024, jsonBodyMax: 1024 * 1024, jsonDepthMax: 32,
};

export function buildApp(deps: AppDeps): FastifyInstance {
  const limits = deps.limits ?? DEFAULT_LIMITS;
  const app = Fastify({
    logger: false,
    genReqId: newRequestId,
    // JSON operations set their own (json-body.ts); this covers everything else.
    bodyLimit: limits.jsonBodyMax,
    requestTimeout: 0, // long waits, branches and streams are legitimate
    keepAliveTimeout: 65_000,
    // Ids are short; a long one is simply unknown (404), not a 414 before validation can say so.
    routerOptions: { querystringParser: parseQuery, maxParamLength: 1024 },
    // Errors Fastify raises before a route is found (bad %-escapes, over-long params).
    frameworkErrors: (err, req, reply) => sendError(err, req, reply, deps.log),
    // Answers Node makes before a request exists (malformed HTTP, 414/431): same envelope.
    clientErrorHandler,
    // Requests for exposed HTTP services (by Host) go to the proxy before routing (service-proxy.ts).
    ...(deps.proxy ? { serverFactory: serviceServerFactory(deps.proxy) } : {}),
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : coercing).compile(schema));

  const auth = makeAuth(deps.services.keys, deps.services.webSessions);
  // A path the contract knows, asked with a method it does not serve, is 405 with `Allow` (RFC 9110),
  // not 404: the resource exists, the method does not. Decided before the body is parsed (a QUERY
  // without Content-Type would otherwise be a parser error), after auth (401 comes first).
  const allowedMethods = methodsByPath(deps.contract);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    const path = req.url.split('?')[0];
    try {
      auth(req);
    } catch (err) {
      // A person opening /docs or /dashboard without a session gets the login page, not JSON.
      if (loginRedirect(req, path, err)) return reply.code(303).header('location', `/login?next=${encodeURIComponent(path)}`).send();
      throw err;
    }
    const methods = allowedMethods(path);
    if (methods.length && !methods.includes(req.method)) {
      reply.header('allow', methods.join(', '));
      throw new FaasError('method_not_allowed', `${req.method} is not allowed on ${path}; use ${methods.join(', ')}`, { allow: methods });
    }
  });
  registerConcurrencyLimits(app, { perInstance: limits.instanceConcurrency, perCredential: limits.credentialConcurrency });
  // A request on an instance's exec/files/processes/terminal routes keeps it from being idle
  // (autoStop) until its response is finished (so an open stream counts as activity).
  app.addHook('onRequest', async (req, reply) => {
    const release = deps.services.lifetimes.touchUrl(req.url);
    if (release) reply.raw.once('close', release);
  });
  // Bodies that are streams (tar, raw file bytes) reach handlers unread.
  app.addContentTypeParser(['application/octet-stream', 'application/x-tar', 'application/gzip'], (_req, payload, done) => done(null, payload));
  // No route of the contract takes text/plain: without this, Fastify's own text parser handed a
  // string to routes that stream their body (stdin: a 500). Now it is the usual unsupported type.
  app.removeContentTypeParser('text/plain');
  // Before idempotency: a replay is only ever of the caller's own request on its own records.
  registerOwnership(app, deps.services);
  registerJsonParser(app, limits.jsonDepthMax);
  registerFormParser(app);
  registerIdempotency(app, deps.services.idempotency);
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply, deps.log));
  app.setNotFoundHandler((req, reply) =>
    sendError(new FaasError('not_found', `no route ${req.method} ${req.url.split('?')[0]}; see /v1/openapi.json`), req, reply, deps.log),
  );

  const registered = new Set<string>();
  const router: Router = {
    log: deps.log,
    op(operationId, handler) {
      const op = deps.contract.operations.get(operationId);
      if (!op) throw new Error(`operation ${operationId} is not in spec/openapi.yaml`);
      registered.add(operationId);
      const bodyless = async (req: FastifyRequest) => {
        // JSON sent to a raw-body route (file write, tar, upload step) reached the handler parsed,
        // where a stream was expected: a 500 before this check. (Raw types all arrive as streams,
        // which those handlers read whatever the type says.)
        if (req.body !== undefined && op.bodyTypes.length && !op.bodyTypes.includes('application/json') && /^application\/json\b/i.test(String(req.headers['content-type']))) {
          throw invalid(`this route takes Content-Type: ${op.bodyTypes.join(' or ')}, not application/json`);
        }
        if (req.body !== undefined || !op.bodyTypes.length) return;
        // No body and no Content-Type: an optional JSON body is an empty object; a required one
        // is a clear 400 (a stream route would otherwise get nothing to read).
        if (!op.bodyRequired && op.schema.body) req.body = {};
        else if (op.bodyRequired) throw invalid(`this route needs a request body (Content-Type: ${op.bodyTypes.join(' or ')})`);
      };
      const bodyLimit = op.bodyTypes.includes('application/json') ? bodyLimitOf(operationId, limits) : undefined;
      app.route({ method: op.method as 'GET', url: op.url, schema: op.schema, preValidation: [bodyless, async (req) => refuseNul(req)], handler, bodyLimit });
    },
  };
  registerSystemRoutes(app, router, deps);
  registerWebRoutes(router, deps.services);
  registerImageRoutes(router, deps.services);
  registerSnapshotRoutes(router, deps.services);
  registerDiffRoutes(router, deps.services);
  registerBranchDiffRoutes(router, deps.services);
  registerStepRoutes(router, deps.services);
  registerInstanceRoutes(router, deps.services);
  registerStateRoutes(router, deps.services);
  registerExecRoutes(router, deps.services);
  registerFileRoutes(router, deps.services);
  registerProcessRoutes(router, deps.services);
  registerEventRoutes(app, router, deps.services);
  registerTerminalRoutes(app, router, deps.services);
  registerNetworkRoutes(app, router, deps.services, { perInstance: limits.forwardConcurrency, perCredential: limits.forwardCredentialConcurrency });
  registerMetricsRoutes(router, deps.services);
  registerKeyRoutes(router, deps.services);
  registerBranchRoutes(router, deps.services);
  registerSshRoutes(router, deps.services);
  registerServiceRoutes(router, deps.services);
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
  // Objects without a prototype, and own-key checks: a key such as `constructor`, `toString` or
  // `__proto__` is a name like any other (with `in` on a plain object it was "already there", and
  // a filter on it became an array, or replaced the object's prototype).
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of new URLSearchParams(qs)) {
    // Everything between the first `[` and the last `]` is the key (unless it nests, below): a key
    // may itself hold `]` or nothing at all (`metadata[]`), and must not fall through as unknown.
    const m = /^(\w+)\[([\s\S]*)\]$/.exec(k);
    if (m) {
      // A repeated key is kept as an array, which the schema (one string per key) then refuses;
      // silently keeping the last value would filter on something the client did not ask for.
      const prev = out[m[1]];
      if (prev === undefined) out[m[1]] = Object.create(null);
      else if (typeof prev !== 'object' || prev === null || Array.isArray(prev)) {
        // `name=x&name[k]=y`: two shapes for one parameter; an array, which the schema refuses.
        out[m[1]] = ([] as unknown[]).concat(prev, v);
        continue;
      }
      const obj = out[m[1]] as Record<string, unknown>;
      // `name[a][b]=v` is a nested object (as qs and schemathesis write one), `{a: {b: v}}`, which
      // a schema of one string per key refuses, rather than a filter on the key "a][b".
      const nest = m[2].indexOf('][');
      const key = nest < 0 ? m[2] : m[2].slice(0, nest);
      const value: unknown = nest < 0 ? v : { [m[2].slice(nest + 2)]: v };
      obj[key] = Object.hasOwn(obj, key) ? ([] as unknown[]).concat(obj[key], value) : value;
    } else if (Object.hasOwn(out, k)) {
      out[k] = ([] as unknown[]).concat(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}
