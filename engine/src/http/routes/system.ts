import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps, Router } from '../app.js';
import { PAGE_HEADERS } from '../browser.js';

const started = Date.now();

// The page loads the contract from /v1/openapi.json with its own credentials (cookie or Basic);
// no script is inline, so the page's Content-Security-Policy can forbid inline script.
const DOCS_INIT = `fetch('/v1/openapi.json', { credentials: 'same-origin' })
  .then(function (r) { if (!r.ok) throw new Error('GET /v1/openapi.json: ' + r.status); return r.json(); })
  .then(function (spec) { Redoc.init(spec, {}, document.getElementById('redoc')); })
  .catch(function (e) { document.getElementById('redoc').textContent = String(e); });
`;

/** The engine as this request reached it (the spec's `servers`), when the Host header is a plain host[:port]. */
function serverOf(req: FastifyRequest): string | undefined {
  const host = String(req.headers.host ?? '');
  return /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? `${req.protocol}://${host}` : undefined;
}

export function registerSystemRoutes(app: FastifyInstance, r: Router, deps: AppDeps): void {
  r.op('getHealth', async () => ({ status: 'ok', version: deps.version, uptimeMs: Date.now() - started }));
  r.op('getOpenApi', async (req) => {
    const url = serverOf(req);
    return url ? { ...deps.contract.raw, servers: [{ url, description: 'This engine (the address this request was sent to)' }] } : deps.contract.raw;
  });

  // Rendered reference of the same contract. The renderer ships with the engine (no CDN).
  const redocPath = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
  let redoc: string | null = null;
  r.op('getDocs', async (_req, reply) =>
    reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(`<!doctype html><html><head><meta charset="utf-8"><title>faas API</title></head>
<body><div id="redoc"></div><script src="/docs/redoc.standalone.js"></script><script src="/docs/init.js"></script></body></html>`),
  );
  // The renderer's scripts are assets of the docs page, not API operations.
  app.get('/docs/redoc.standalone.js', async (_req, reply) => {
    redoc ??= readFileSync(redocPath, 'utf8');
    return reply.type('application/javascript').send(redoc);
  });
  app.get('/docs/init.js', async (_req, reply) => reply.type('application/javascript').send(DOCS_INIT));
}
