import type { ExecRequest } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { BatchInput, ScriptInput } from '../../services/exec.js';
import type { Router } from '../app.js';
import { body, closedSignal, ownerOf, params } from './common.js';
import { sendResults } from './exec-result.js';
import { openSse, pacedSend, sendStreamError } from './sse.js';

export function registerExecRoutes(r: Router, s: Services): void {
  // A client that goes away before the result kills the command (and frees its concurrency slot).
  r.op('exec', async (req, reply) => sendResults(reply, await s.exec.exec(params(req).id, body<ExecRequest & { snapshot?: boolean }>(req), ownerOf(req), closedSignal(reply))));
  r.op('execBatch', async (req, reply) => sendResults(reply, { results: await s.exec.batch(params(req).id, body<BatchInput>(req), closedSignal(reply)) }));
  r.op('execScript', async (req, reply) => sendResults(reply, await s.exec.script(params(req).id, body<ScriptInput>(req), closedSignal(reply))));

  // Server-Sent Events. A client that disconnects aborts the agent request, which kills the command.
  r.op('execStream', async (req, reply) => {
    const abort = new AbortController();
    const events = s.exec.stream(params(req).id, body<ExecRequest>(req), abort.signal);
    // Pull the first event before committing to a 200, so "not found"/"not ready" keep their status.
    const first = await events.next();
    const sse = openSse(req, reply);
    sse.res.on('close', () => abort.abort());
    const send = pacedSend(sse, abort.signal);
    try {
      for (let it = first; !it.done; it = await events.next()) {
        const ev = it.value;
        if (ev.type === 'start') await send('start', { pid: ev.pid });
        else if (ev.type === 'stdout' || ev.type === 'stderr') await send(ev.type, { data: ev.data });
        else if (ev.type === 'exit') await send('exit', { exitCode: ev.exitCode, signal: ev.signal ?? null, duration: ev.durationMs, timedOut: ev.timedOut ?? false });
      }
    } catch (err) {
      await sendStreamError(r.log, req, send, err, abort.signal);
    } finally {
      sse.end();
    }
  });
}
