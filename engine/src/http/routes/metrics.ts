import type { Services } from '../../engine.js';
import type { Router } from '../app.js';

export function registerMetricsRoutes(r: Router, s: Services): void {
  r.op('getEngineMetrics', async () => s.metrics.sample());
}
