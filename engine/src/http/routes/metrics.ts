import { forbidden } from '../../core/errors.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { principalOf } from '../auth.js';

export function registerMetricsRoutes(r: Router, s: Services): void {
  // Engine-wide figures describe the whole host and every key's records: admin keys only.
  r.op('getEngineMetrics', async (req) => {
    if (!principalOf(req).admin) throw forbidden('engine metrics need an admin key; per-instance metrics are at /v1/instances/{id}/metrics', { admin: false });
    return s.metrics.sample();
  });
}
