// Hot rollback standbys: for an instance with a checkpoint, its HEAD (the target of rollback(id, 1)
// and restart({fromLatestCheckpoint}), services/state.ts) restored ahead into a standby
// (rollback-standby.ts: a sandbox created in a twin of the instance's network namespace) and
// paused at once. A rollback to exactly that snapshot then only pauses the old sandbox, swaps the
// network, resumes the standby and re-keys its agent (sandbox-swap.ts): the restore, the floor of
// every other path, is off the call's path. Any other target (steps > 1, a plain restart) takes
// the empty standby as before.
//
// Between `runsc restore` and the pause the restored processes run for a few ms. They run in the
// twin namespace, whose host end has no address: nothing they send reaches the host, the slot's
// address or another instance (engine/test/rollback-hot.test.ts proves it from inside a twin), and
// nothing reaches them. What they did in those ms is kept (a counter may have moved by one tick),
// as any process moves on between a rollback's restore and the caller's next look.
//
// The restore is EAGER (no `--background`): every page is loaded before it returns, so the paused
// sandbox holds no file of the image. Evicting the image from the cache, or deleting the snapshot,
// cannot pull pages out from under it. A deleted snapshot can no longer be a rollback target, so
// its hot standbys are dropped with it (snapshot.deleted) to give the memory back.
//
// Budget: a paused restored sandbox holds the checkpoint's memory plus a sandbox's own. At most
// `budgetBytes` (FAAS_ROLLBACK_HOT_MB) of checkpoint images, each counted with HOT_SANDBOX_BYTES,
// are held hot across the engine, one (the head) per instance; the least recently checkpointed goes
// first. A head bigger than the whole budget is never made hot. Like the empty standbys they live in memory only: after an engine restart they
// are orphans (the reconciler deletes their sandboxes and twin namespaces).
import type { EventBus } from '../core/events.js';
import type { SandboxRuntime } from '../core/interfaces.js';
import type { Cgroups } from '../runtime/cgroups.js';
import type { LineageRepo } from '../store/sqlite/lineage.js';
import type { InstanceRepo } from '../store/sqlite/repos.js';
import type { Logger } from './logger.js';
import { alive, type RollbackStandbys, type Standby } from './rollback-standby.js';
import type { SnapshotService } from './snapshots.js';
import type { WarmPool } from './warm-pool.js';

export interface HotStandby extends Standby {
  /** The checkpoint restored in it (and paused): it serves a rollback to this snapshot only. */
  snapshotId: string;
  /** What it counts against the budget: the checkpoint image's size plus HOT_SANDBOX_BYTES. */
  bytes: number;
}

/** A sandbox's own memory beside the checkpoint's (sentry, gofer; ~15 MB, as a warm-pool sandbox):
 *  counted with each hot standby, so the budget is about what the host really holds. */
export const HOT_SANDBOX_BYTES = 16 * 1024 * 1024;

export class HotStandbys {
  /** By instance id, least recently made (≈ checkpointed) first: eviction order. */
  private readonly ready = new Map<string, HotStandby>();
  /** Hot restores under way, by instance id: a rollback to the same snapshot waits for it. */
  private readonly making = new Map<string, { snapshotId: string; done: Promise<void> }>();
  private readonly wanted = new Set<string>();
  private filling: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly d: {
      budgetBytes: number;
      standbys: RollbackStandbys;
      runtime: SandboxRuntime;
      snapshots: SnapshotService;
      lineage: LineageRepo;
      instances: InstanceRepo;
      cgroups: Cgroups;
      warm: WarmPool;
      events: EventBus;
      log: Logger;
    },
  ) {
    d.events.on('event', (e) => {
      if (e.type === 'instance.stopped' || e.type === 'instance.deleted' || e.type === 'instance.error') this.drop(e.resourceId);
      if (e.type === 'snapshot.deleted') for (const [id, h] of this.ready) if (h.snapshotId === e.resourceId) this.drop(id);
    });
    d.warm.on('idle', () => this.fill());
  }

  get enabled(): boolean {
    return this.d.budgetBytes > 0 && this.d.standbys.enabled && !this.closed;
  }

  /** After a checkpoint, rollback or restart of a live instance: its head is made hot in a quiet moment. */
  want(instanceId: string): void {
    if (!this.enabled) return;
    this.wanted.delete(instanceId);
    this.wanted.add(instanceId);
    this.d.warm.nudge();
  }

  /**
   * The instance's hot standby if it holds `snapshotId` and its sandbox is alive; it is the
   * caller's then. A hot restore of that snapshot under way is waited for (never a second restore).
   */
  async take(instanceId: string, snapshotId: string): Promise<HotStandby | undefined> {
    const m = this.making.get(instanceId);
    if (m?.snapshotId === snapshotId) await m.done;
    const h = this.ready.get(instanceId);
    if (!h || h.snapshotId !== snapshotId) return undefined;
    this.ready.delete(instanceId);
    if (alive(h.pid)) return h;
    void this.d.standbys.discard(h); // killed from outside: the caller takes the empty-standby path
    return undefined;
  }

  /** Sandbox ids held hot (for tests and metrics). */
  ids(): Set<string> {
    return new Set([...this.ready.values()].map((h) => h.sandboxId));
  }

  /** The instance's hot standby, if any (it stays the pool's; for tests and diagnostics). */
  of(instanceId: string): Readonly<HotStandby> | undefined {
    return this.ready.get(instanceId);
  }

  stats(): { ready: number; bytes: number; budgetBytes: number } {
    return { ready: this.ready.size, bytes: this.bytesHeld(), budgetBytes: this.d.budgetBytes };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wanted.clear();
    await this.filling;
    await Promise.all([...this.ready.values()].map((h) => this.d.standbys.discard(h)));
    this.ready.clear();
    // Drops started in the background (RollbackStandbys.close waits for them: it closes after this).
  }

  private bytesHeld(): number {
    let n = 0;
    for (const h of this.ready.values()) n += h.bytes;
    return n;
  }

  private drop(instanceId: string): void {
    this.wanted.delete(instanceId);
    const h = this.ready.get(instanceId);
    if (!h) return;
    this.ready.delete(instanceId);
    void this.d.standbys.discard(h);
  }

  /** Makes wanted heads hot one at a time, most recently wanted first, while restores are quiet. */
  private fill(): void {
    if (this.filling || !this.enabled) return;
    this.filling = (async () => {
      while (this.enabled && this.wanted.size && this.d.warm.idle()) {
        const instanceId = [...this.wanted].at(-1)!;
        this.wanted.delete(instanceId);
        let done = () => {};
        try {
          const plan = this.plan(instanceId);
          if (!plan) continue;
          this.making.set(instanceId, { snapshotId: plan.snapshotId, done: new Promise<void>((r) => (done = r)) });
          const h = await this.make(instanceId, plan.snapshotId, plan.netns);
          if (h) this.ready.set(instanceId, h);
        } catch (err) {
          this.d.log.warn({ instanceId, err: String(err) }, 'could not make a hot rollback standby');
        } finally {
          this.making.delete(instanceId);
          done();
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }

  /** What to make hot for the instance, after dropping a stale one and making room; null: nothing. */
  private plan(instanceId: string): { snapshotId: string; netns: string } | null {
    const inst = this.d.instances.get(instanceId);
    if (!inst?.netns || (inst.state !== 'ready' && inst.state !== 'paused')) return null;
    const head = this.d.lineage.headOf(instanceId);
    const snap = head ? this.d.snapshots.find(head) : undefined;
    const have = this.ready.get(instanceId);
    if (have && have.snapshotId === head) return null;
    if (have) this.drop(instanceId); // stale: a newer checkpoint is the head now
    const bytes = snap ? snap.size + HOT_SANDBOX_BYTES : 0;
    if (!snap || bytes > this.d.budgetBytes) return null;
    // Least recently checkpointed first, until the new head fits.
    while (this.bytesHeld() + bytes > this.d.budgetBytes) this.drop(this.ready.keys().next().value as string);
    return { snapshotId: snap.id, netns: inst.netns };
  }

  private async make(instanceId: string, snapshotId: string, netns: string): Promise<HotStandby | undefined> {
    // Held while its files are read, so a delete waits for this restore; nothing is read after it.
    const { snap, release } = this.d.snapshots.hold(snapshotId);
    let sb: Standby | undefined;
    try {
      await this.d.snapshots.verify(snap);
      sb = await this.d.standbys.make(instanceId, snap.spec);
      await this.d.runtime.restore(sb.sandboxId, sb.bundle, snap.imageDir, { eager: true });
      await this.d.runtime.pause(sb.sandboxId);
    } catch (err) {
      if (sb) await this.d.standbys.discard(sb);
      throw err;
    } finally {
      release();
    }
    const inst = this.d.instances.get(instanceId);
    // Gone, moved to another slot, or its head moved on while this was made: not a fit any more.
    if (this.closed || !inst || inst.netns !== netns || (inst.state !== 'ready' && inst.state !== 'paused') || this.d.lineage.headOf(instanceId) !== snapshotId) {
      await this.d.standbys.discard(sb);
      if (!this.closed && inst && (inst.state === 'ready' || inst.state === 'paused')) this.want(instanceId);
      return undefined;
    }
    // The instance's limits hold for the standby as for the instance (sandbox-swap.ts puts them on again).
    this.d.cgroups.apply(sb.sandboxId, inst.resources);
    return { ...sb, snapshotId, bytes: snap.size + HOT_SANDBOX_BYTES };
  }
}
