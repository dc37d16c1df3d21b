import type { ExecRequest } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { BatchInput, ScriptInput } from '../../services/exec.js';
import type { Router } from '../app.js';
import { toFaasError, envelope } from '../errors.js';
import { body, params } from './common.js';

export function registerExecRoutes(r: Router, s: Services): void {
  r.op('exec', async (req) => s.exec.exec(params(req).id, body<ExecRequest & { snapshot?: boolean }>(req)));
  r.op('execBatch', async (req) => ({ results: await s.exec.batch(params(req).id, body<BatchInput>(req)) }));
  r.op('execScript', async (req) => s.exec.script(params(req).id, body<ScriptInput>(req)));

  // Server-Sent Events. A client that disconnects aborts the agent request, which kills the command.
  r.op('execStream', async (req, reply) => {
    const abort = new AbortController();
    const events = s.exec.stream(params(req).id, body<ExecRequest>(req), abort.signal);
    // Pull the first event before committing to a 200, so "not found"/"not ready" keep their status.
    const first = await events.next();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': req.id,
    });
    req.raw.socket.on('close', () => abort.abort());
    res.on('close', () => abort.abort());
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    try {
      for (let it = first; !it.done; it = await events.next()) {
        const ev = it.value;
        if (ev.type === 'start') send('start', { pid: ev.pid });
        else if (ev.type === 'stdout' || ev.type === 'stderr') send(ev.type, { data: ev.data });
        else if (ev.type === 'exit') send('exit', { exitCode: ev.exitCode, signal: ev.signal ?? null, duration: ev.durationMs, timedOut: ev.timedOut ?? false });
      }
    } catch (err) {
      if (!abort.signal.aborted) {
        const fe = toFaasError(err);
        send('error', envelope(fe.code, fe.message, fe.details, req.id));
      }
    } finally {
      res.end();
    }
  });
}
