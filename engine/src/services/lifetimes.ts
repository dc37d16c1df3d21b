// Lifetimes: instance ttl (stop or pause once `createdAt + ttl` has passed), autoStop of idle
// instances, and snapshot expiry. Deadlines come from SQLite (instances.ttl + created_at,
// snapshots.expires_at), so they survive engine restarts: a deadline that passed while the engine
// was down is acted on at start. One timer is armed for the soonest deadline and re-armed when
// something changes (a lifecycle event, or the end of a request that held an instance busy):
// nothing polls on a fixed interval.
//
// Idle (autoStop): no exec/files/processes/terminal request on the instance started or was still
// open for `idleMs`. Activity is kept in memory; an engine restart starts the idle period afresh.
import type { EventBus, FaasEvent } from '../core/events.js';
import { FaasError } from '../core/errors.js';
import type { Instance } from '../core/types.js';
import type { InstanceRepo, SnapshotRepo } from '../store/sqlite/repos.js';
import type { InstanceService } from './instances.js';
import type { Logger } from './logger.js';
import type { SnapshotService } from './snapshots.js';

const MAX_SLEEP_MS = 6 * 3600 * 1000; // setTimeout cannot sleep longer than ~24.8 days anyway
const ACTIVITY = /^\/v1\/instances\/(inst_[a-z0-9]+)\/(exec|files|processes|terminal)(\/|$|\?)/;

export class Lifetimes {
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private readonly lastActive = new Map<string, number>();
  private readonly busy = new Map<string, number>();
  /** Expired snapshots that still have dependents: retried after the next event. */
  private readonly blocked = new Set<string>();
  private readonly startedAt = Date.now();
  private running = false;
  private again = false;
  private stopped = false;
  // Deadlines only change with lifecycle events; an exec finishing changes none (activity is
  // tracked by hold()), so the most frequent event does not cost a sweep of the tables.
  private readonly onEvent = (e: FaasEvent) => {
    if (e.type === 'execution.complete') return;
    this.blocked.clear();
    this.schedule(0);
  };

  constructor(
    private readonly d: {
      instances: InstanceRepo;
      snapshots: SnapshotRepo;
      instanceService: InstanceService;
      snapshotService: SnapshotService;
      events: EventBus;
      idleMs: number;
      log: Logger;
    },
  ) {}

  start(): void {
    this.d.events.on('event', this.onEvent);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.d.events.off('event', this.onEvent);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Marks activity on an instance if `url` is one of its exec/files/processes/terminal routes. */
  touchUrl(url: string): (() => void) | null {
    const m = ACTIVITY.exec(url);
    return m ? this.hold(m[1]) : null;
  }

  /** The instance is busy until the returned function is called (a request or stream is open). */
  hold(id: string): () => void {
    this.lastActive.set(id, Date.now());
    this.busy.set(id, (this.busy.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.busy.get(id) ?? 1) - 1;
      if (n <= 0) this.busy.delete(id);
      else this.busy.set(id, n);
      this.lastActive.set(id, Date.now());
      this.schedule(this.d.idleMs); // its idle deadline starts now
    };
  }

  /** Sets a snapshot's expiry `ttlSeconds` from now. */
  expireSnapshot(id: string, ttlSeconds: number): string {
    const at = new Date(Date.now() + ttlSeconds * 1000).toISOString();
    this.d.snapshots.setExpiresAt(id, at);
    this.schedule(ttlSeconds * 1000);
    return at;
  }

  /** Arms the timer for `inMs` from now unless it is already armed earlier. */
  private schedule(inMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + Math.max(0, Math.min(inMs, MAX_SLEEP_MS));
    if (this.timer && at >= this.armedFor) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedFor = Infinity;
      void this.sweep();
    }, at - Date.now());
    this.timer.unref();
  }

  /** Acts on every deadline that has passed, then arms the timer for the next one. */
  private async sweep(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const next = await this.actOnDue(Date.now());
        if (next < Infinity) this.schedule(next - Date.now());
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
  }

  private async actOnDue(now: number): Promise<number> {
    let next = Infinity;
    for (const inst of this.d.instances.withLifetimes()) {
      if (inst.ttl !== null && inst.ttlFiredAt === null) {
        const due = Date.parse(inst.createdAt) + inst.ttl * 1000;
        if (due > now) next = Math.min(next, due);
        else if (inst.state === 'pending') continue; // acted on once it is up (instance.ready re-arms)
        else {
          await this.expireInstance(inst);
          continue;
        }
      }
      if (inst.autoStop && inst.state === 'ready' && !this.busy.has(inst.id)) {
        const last = Math.max(this.lastActive.get(inst.id) ?? 0, Date.parse(inst.readyAt ?? inst.createdAt), this.startedAt);
        const due = last + this.d.idleMs;
        if (due > now) next = Math.min(next, due);
        else await this.act(inst.id, 'stop', 'idle');
      }
    }
    for (const s of this.d.snapshots.expiring()) {
      const due = Date.parse(s.expiresAt);
      if (due > now) {
        next = Math.min(next, due);
        break; // sorted by expiry
      }
      if (this.blocked.has(s.id)) continue;
      try {
        await this.d.snapshotService.delete(s.id, false);
        this.d.log.info({ snapshot: s.id }, 'snapshot expired and was deleted');
      } catch (err) {
        // Live instances or child snapshots depend on it: keep it until they are gone.
        if (err instanceof FaasError && (err.code === 'conflict' || err.code === 'snapshot_not_found')) this.blocked.add(s.id);
        else this.d.log.warn({ snapshot: s.id, err: String(err) }, 'could not delete an expired snapshot');
      }
    }
    return next;
  }

  private async expireInstance(inst: Instance): Promise<void> {
    this.d.instances.markTtlFired(inst.id, new Date().toISOString());
    if (inst.ttlAction === 'pause') {
      if (inst.state === 'ready') await this.act(inst.id, 'pause', 'ttl');
    } else {
      await this.act(inst.id, 'stop', 'ttl');
    }
  }

  private async act(id: string, action: 'stop' | 'pause', why: 'ttl' | 'idle'): Promise<void> {
    try {
      if (action === 'stop') await this.d.instanceService.stop(id);
      else await this.d.instanceService.pause(id);
      this.lastActive.delete(id);
      this.d.log.info({ instance: id, action, why }, 'lifetime reached');
    } catch (err) {
      this.d.log.warn({ instance: id, action, why, err: String(err) }, 'could not apply the lifetime');
    }
  }
}
