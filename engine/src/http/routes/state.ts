// StateOperations routes (services/state.ts): an instance's timeline, rollback in place, and
// restart (which may restore the latest checkpoint instead of the instance's snapshot).
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';
import { body, params, serverTiming } from './common.js';
import { instanceView } from './views.js';
import type { Timings } from '../../services/sandboxes.js';

export function registerStateRoutes(r: Router, s: Services): void {
  r.op('getInstanceTimeline', async (req) => s.state.timeline(params(req).id, principalOf(req)));
  r.op('rollbackInstance', async (req, reply) => {
    const { steps = 1 } = body<{ steps?: number }>(req);
    const t0 = performance.now();
    const timings: Timings = {};
    const inst = await s.state.rollback(params(req).id, steps, principalOf(req), timings);
    timings.total = Math.round((performance.now() - t0) * 10) / 10;
    reply.header('server-timing', serverTiming(timings));
    return instanceView(s, req)(inst);
  });
  r.op('restartInstance', async (req) => {
    const { fromLatestCheckpoint = false } = body<{ fromLatestCheckpoint?: boolean }>(req);
    return instanceView(s, req)(await s.state.restart(params(req).id, fromLatestCheckpoint, principalOf(req)));
  });
}
