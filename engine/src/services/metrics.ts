// Engine-wide counts for GET /v1/metrics: what the engine holds and what the host has left.
import { availableParallelism, freemem, totalmem } from 'node:os';
import { INSTANCE_STATES, nowIso } from '../core/types.js';
import type { ImageRepo, InstanceRepo, SnapshotRepo } from '../store/sqlite/repos.js';
import type { HostCapacity } from './limits.js';

export class EngineMetrics {
  private readonly startedAt = Date.now();

  constructor(
    private readonly repos: { images: ImageRepo; snapshots: SnapshotRepo; instances: InstanceRepo },
    private readonly open: () => { eventStreams: number; terminals: number },
    private readonly capacity: HostCapacity,
    private readonly warmPool: () => { templates: number; ready: number; target: number },
  ) {}

  sample() {
    const byState = this.repos.instances.countByState();
    const instances = Object.fromEntries(INSTANCE_STATES.map((s) => [s, byState[s] ?? 0]));
    const open = this.open();
    return {
      timestamp: nowIso(),
      uptimeMs: Date.now() - this.startedAt,
      instances,
      snapshots: this.repos.snapshots.totals(),
      images: { count: this.repos.images.count() },
      engine: { rssBytes: process.memoryUsage.rss(), openEventStreams: open.eventStreams, openTerminals: open.terminals },
      warmPool: this.warmPool(),
      host: { cpus: availableParallelism(), memoryBytes: totalmem(), freeMemoryBytes: freemem(), freeDiskBytes: this.capacity.freeDiskBytes() },
    };
  }
}
