import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import type { AppDeps, Router } from '../app.js';

const started = Date.now();

export function registerSystemRoutes(app: FastifyInstance, r: Router, deps: AppDeps): void {
  r.op('getHealth', async () => ({ status: 'ok', version: deps.version, uptimeMs: Date.now() - started }));
  r.op('getOpenApi', async () => deps.contract.raw);

  // Rendered reference of the same contract. The renderer ships with the engine (no CDN).
  const redocPath = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
  let redoc: string | null = null;
  r.op('getDocs', async (_req, reply) =>
    reply.type('text/html').send(`<!doctype html><html><head><meta charset="utf-8"><title>faas API</title></head>
<body><div id="redoc"></div><script src="/docs/redoc.standalone.js"></script>
<script>Redoc.init(${JSON.stringify(deps.contract.raw)}, {}, document.getElementById('redoc'))</script></body></html>`),
  );
  // The renderer's script is an asset of the docs page, not an API operation.
  app.get('/docs/redoc.standalone.js', async (_req, reply) => {
    redoc ??= readFileSync(redocPath, 'utf8');
    return reply.type('application/javascript').send(redoc);
  });
}
