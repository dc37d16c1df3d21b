// A pool of sandboxes created ahead (`runsc create`: sandbox process up, network namespace
// configured, nothing running) for the OCI specs restores use most. A restore into such a
// sandbox skips sandbox start-up, which is most of a restore's fixed cost (measured ~75 ms vs
// ~145 ms for a fresh id). runsc only accepts a restore whose spec matches the checkpoint's, so
// pools are keyed by the snapshot template; every snapshot of one image and environment shares one.
//
// Refills run one at a time and only once restores have been quiet for QUIET_MS, so the pool never
// competes with the work it exists to speed up: on 2 cores a sandbox start beside a fresh clone's
// first exec made a branch-then-exec 20 ms slower (p50 129 vs 109 ms, measured side by side).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../core/ids.js';
import type { NetworkManager, NetworkSlot, SandboxRuntime } from '../core/interfaces.js';
import type { Cgroups } from '../runtime/cgroups.js';
import { writeBundle } from '../runtime/runsc/bundle.js';

export interface WarmSandbox {
  id: string;
  slot: NetworkSlot;
  bundle: string;
}

interface Pool {
  template: string;
  ready: WarmSandbox[];
  lastUsed: number;
  /** Sandboxes to keep ready: `size`, or more after a wider burst of takes (see take()). */
  target: number;
  burstStart: number;
  burstTakes: number;
  shrinkTimer: NodeJS.Timeout | null;
}

export interface WarmPoolOptions {
  /** Sandboxes kept ready per template. 0 disables the pool. */
  size: number;
  /** The most a template's pool grows to after a wide branch (at least `size`). */
  maxSize: number;
  /** Templates kept warm at once (least recently used are drained). */
  maxTemplates: number;
}

/** Takes this close together count as one burst (a branch of N takes N at once). */
const BURST_MS = 1_000;
/** A pool grown by a burst goes back to its base size after this long without another. */
const SHRINK_AFTER_MS = 10 * 60_000;

/** How long after the last restore (or pool take) background work waits before it starts. */
const QUIET_MS = 100;
/** Under sustained activity background work still starts this long after it was first put off. */
const MAX_DEFER_MS = 1_000;

/** Emits `idle` once restores have been quiet for QUIET_MS (background work waits for it). */
export class WarmPool extends EventEmitter {
  private readonly pools = new Map<string, Pool>();
  private busy = 0;
  private quietTimer: NodeJS.Timeout | null = null;
  private deferredSince = 0;
  private refilling: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly opts: WarmPoolOptions,
    private readonly d: { runtime: SandboxRuntime; network: NetworkManager; cgroups: Cgroups; bundlesDir: string },
  ) {
    super();
  }

  idle(): boolean {
    return this.busy === 0 && this.quietTimer === null;
  }

  /** A ready sandbox for this template, if one is warm; marks the template as in use either way. */
  take(template: string): WarmSandbox | undefined {
    if (this.opts.size <= 0 || this.closed) return undefined;
    const key = keyOf(template);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = { template, ready: [], lastUsed: 0, target: this.opts.size, burstStart: 0, burstTakes: 0, shrinkTimer: null };
      this.pools.set(key, pool);
      this.evict();
    }
    const now = Date.now();
    pool.lastUsed = now;
    this.follow(pool, now);
    return pool.ready.shift();
  }

  /**
   * The pool follows demand: a branch of N takes N sandboxes at once, and the next branch that wide
   * finds N ready instead of `size` (a sandbox start costs ~60 ms of the ~75 ms a restore saves),
   * up to maxSize; ~15 MB each while they wait. Without another such burst for SHRINK_AFTER_MS the
   * pool returns to its base size.
   */
  private follow(pool: Pool, now: number): void {
    if (now - pool.burstStart > BURST_MS) {
      pool.burstStart = now;
      pool.burstTakes = 0;
    }
    pool.burstTakes++;
    if (pool.burstTakes <= this.opts.size) return;
    pool.target = Math.max(pool.target, Math.min(this.opts.maxSize, pool.burstTakes));
    if (pool.shrinkTimer) clearTimeout(pool.shrinkTimer);
    pool.shrinkTimer = setTimeout(() => {
      pool.shrinkTimer = null;
      if (this.closed) return;
      pool.target = this.opts.size;
      for (const w of pool.ready.splice(pool.target)) void this.discard(w);
    }, SHRINK_AFTER_MS);
    pool.shrinkTimer.unref();
  }

  /** Sandboxes ready and wanted, over all templates (for metrics, and for a benchmark to wait on). */
  stats(): { templates: number; ready: number; target: number } {
    const pools = [...this.pools.values()];
    return { templates: pools.length, ready: pools.reduce((n, p) => n + p.ready.length, 0), target: pools.reduce((n, p) => n + p.target, 0) };
  }

  /** Brackets restores so refills wait for quiet moments. */
  begin(): void {
    this.busy++;
  }

  end(): void {
    this.busy = Math.max(0, this.busy - 1);
    if (this.busy === 0) this.nudge();
  }

  /** Marks foreground activity (a restore ended, a pooled clone was taken): background work starts
   *  QUIET_MS after the last such moment, if no restore runs then. */
  nudge(): void {
    const now = Date.now();
    if (this.quietTimer) {
      if (now - this.deferredSince >= MAX_DEFER_MS) return; // put off long enough: let it fire
      clearTimeout(this.quietTimer);
    } else {
      this.deferredSince = now;
    }
    this.quietTimer = setTimeout(() => {
      this.quietTimer = null;
      if (this.busy > 0 || this.closed) return;
      this.refill();
      this.emit('idle');
    }, QUIET_MS);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pools.values()) if (p.shrinkTimer) clearTimeout(p.shrinkTimer);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    await this.refilling;
    const all = [...this.pools.values()].flatMap((p) => p.ready.splice(0));
    await Promise.all(all.map((w) => this.discard(w)));
  }

  /** Ids of sandboxes the pool holds (the reconciler must not count them as orphans). */
  ids(): Set<string> {
    return new Set([...this.pools.values()].flatMap((p) => p.ready.map((w) => w.id)));
  }

  private refill(): void {
    if (this.refilling || this.closed) return;
    this.refilling = (async () => {
      for (;;) {
        if (this.closed || this.busy > 0) return;
        const pool = [...this.pools.values()].filter((p) => p.ready.length < p.target).sort((a, b) => b.lastUsed - a.lastUsed)[0];
        if (!pool) return;
        try {
          pool.ready.push(await this.create(pool.template));
        } catch {
          return; // the next restore works without the pool and a later refill tries again
        }
      }
    })().finally(() => {
      this.refilling = null;
    });
  }

  private async create(template: string): Promise<WarmSandbox> {
    const id = newId('inst');
    const slot = await this.d.network.acquire();
    const bundle = join(this.d.bundlesDir, id);
    try {
      writeBundle(bundle, template, { netnsPath: slot.path, cgroupsPath: this.d.cgroups.pathOf(id), hostname: id.replace(/_/g, '-') });
      await this.d.runtime.create(id, bundle);
      return { id, slot, bundle };
    } catch (err) {
      await this.discard({ id, slot, bundle });
      throw err;
    }
  }

  private evict(): void {
    while (this.pools.size > this.opts.maxTemplates) {
      const [key, oldest] = [...this.pools.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      this.pools.delete(key);
      if (oldest.shrinkTimer) clearTimeout(oldest.shrinkTimer);
      for (const w of oldest.ready.splice(0)) void this.discard(w);
    }
  }

  private async discard(w: WarmSandbox): Promise<void> {
    await this.d.runtime.destroy(w.id).catch(() => undefined);
    await this.d.network.release(w.slot.netns).catch(() => undefined);
    rmSync(w.bundle, { recursive: true, force: true });
  }
}

const keyOf = (template: string) => createHash('sha256').update(template).digest('hex');
