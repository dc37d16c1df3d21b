// Background processes: JSON routes proxied to the agent, and the output stream converted from
// the agent's NDJSON to Server-Sent Events.
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { ExecRequest } from '../../core/types.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { body, bool, closedSignal, params, query } from './common.js';
import { closeOnError } from './files.js';
import { openSse } from './sse.js';

export function registerProcessRoutes(r: Router, s: Services): void {
  const p = s.processes;
  const pid = (req: Parameters<typeof params>[0]) => Number(params(req).pid);
  r.op('startProcess', async (req, reply) => reply.code(201).send(await p.start(params(req).id, body<ExecRequest & { tag?: string }>(req))));
  r.op('listProcesses', async (req) => p.list(params(req).id));
  r.op('getInstanceLogs', async (req) => {
    const q = query(req);
    return p.logs(params(req).id, { since: q.since === undefined ? undefined : Number(q.since), tail: q.tail === undefined ? undefined : Number(q.tail) });
  });
  r.op('getProcess', async (req) => p.get(params(req).id, pid(req)));
  r.op('waitProcess', async (req, reply) => {
    const t = query(req).timeout;
    return p.wait(params(req).id, pid(req), t === undefined ? undefined : Number(t), closedSignal(reply));
  });
  r.op('writeProcessStdin', async (req, reply) => {
    await closeOnError(reply, p.writeStdin(params(req).id, pid(req), req.body as Readable));
    return reply.code(204).send();
  });
  r.op('closeProcessStdin', async (req, reply) => {
    await p.closeStdin(params(req).id, pid(req));
    return reply.code(204).send();
  });
  r.op('signalProcess', async (req, reply) => {
    await p.signal(params(req).id, pid(req), body<{ signal: string | number }>(req).signal);
    return reply.code(204).send();
  });
  r.op('streamProcessOutput', async (req, reply) => {
    const q = query(req);
    const abort = new AbortController();
    // Opening the agent stream first keeps "not found"/"not ready" as ordinary JSON errors.
    const events = await p.output(params(req).id, pid(req), { follow: bool(q.follow, false), since: Number(q.since ?? 0) }, abort.signal);
    const sse = openSse(req, reply);
    sse.res.on('close', () => abort.abort());
    try {
      for await (const ev of events) {
        let ok = true;
        if (ev.type === 'stdout' || ev.type === 'stderr') ok = sse.send(ev.type, { seq: ev.seq, data: ev.data }, ev.seq);
        else if (ev.type === 'dropped') ok = sse.send('dropped', { from: ev.from, to: ev.to });
        else if (ev.type === 'exit') ok = sse.send('exit', { exitCode: ev.exitCode, signal: ev.signal ?? null });
        // Backpressure: stop reading the agent until the client catches up (the agent marks
        // what it had to drop for a slow reader, so the process itself never waits).
        // (events.once removes its listener when done: one per wait would pile up on a long stream.)
        if (!ok && !abort.signal.aborted) await once(sse.res, 'drain', { signal: abort.signal }).catch(() => undefined);
      }
    } catch {
      // The agent went away mid-stream (instance stopped): the missing `exit` event tells the client.
    } finally {
      sse.end();
    }
  });
}
