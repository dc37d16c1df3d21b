// Build steps on snapshots, answered from the step cache when they already ran (services/steps.ts,
// docs/step-cache.md): exec (one answer, or its output streamed as Server-Sent Events) and upload.
import type { Readable } from 'node:stream';
import type { ExecRequest } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { StepAnswer, UploadStep } from '../../services/steps.js';
import type { Router } from '../app.js';
import { body, bool, ownerOf, params, query } from './common.js';
import { closeOnError } from './files.js';
import { openSse, pacedSend, sendStreamError } from './sse.js';
import { publicSnapshot } from './views.js';

export const publicStep = (a: StepAnswer) => ({ ...publicSnapshot(a.snapshot), cached: a.cached, stepResult: a.result });

export function registerStepRoutes(r: Router, s: Services): void {
  r.op('execSnapshot', async (req, reply) => {
    const a = await s.steps.exec(params(req).id, body<ExecRequest>(req), ownerOf(req), { fresh: bool(query(req).fresh, false) });
    return reply.code(a.cached ? 200 : 201).send(publicStep(a));
  });

  r.op('uploadSnapshot', async (req, reply) => {
    const q = query(req);
    const step: UploadStep = { path: String(q.path), format: q.format === 'tar' ? 'tar' : 'file', mode: q.mode };
    const a = await closeOnError(reply, s.steps.upload(params(req).id, step, req.body as Readable, ownerOf(req), { fresh: bool(q.fresh, false) }));
    return reply.code(a.cached ? 200 : 201).send(publicStep(a));
  });

  // The step's output as it is produced (paced by the reader), then the child snapshot. A client
  // that goes away kills the step.
  r.op('execSnapshotStream', async (req, reply) => {
    s.snapshots.get(params(req).id); // an unknown parent is a plain 404, before the stream starts
    const abort = new AbortController();
    const sse = openSse(req, reply);
    sse.res.on('close', () => abort.abort());
    const send = pacedSend(sse, abort.signal);
    try {
      const a = await s.steps.exec(params(req).id, body<ExecRequest>(req), ownerOf(req), {
        fresh: bool(query(req).fresh, false), signal: abort.signal, onOutput: (stream, data) => send(stream, { data }),
      });
      await send('snapshot', publicStep(a));
    } catch (err) {
      await sendStreamError(r.log, req, send, err, abort.signal);
    } finally {
      sse.end();
    }
  });
}
