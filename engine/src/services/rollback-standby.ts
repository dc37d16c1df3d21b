// Rollback standbys: for an instance that has checkpoints, a sandbox created ahead (`runsc create`,
// nothing running) in a twin of the instance's network namespace (same address inside, no host
// route yet: network/netns.ts twin). A rollback restores its checkpoint into the standby and swaps
// it in (instances.ts swapSandbox), so the critical path is a restore into a pre-created sandbox
// (what makes a live branch fast, warm-pool.ts) instead of a delete plus a cold restore.
//
// Sandbox ids are therefore apart from instance ids: a standby gets an id of its own (`sbx_…`) and
// after the swap the instance record points at it (instances.sandbox_id, migration 18).
//
// A standby holds no checkpoint image (it is filled only at rollback time), so deleting checkpoints
// never waits on it, and it serves a rollback to ANY checkpoint of the instance that shares its OCI
// template. Standbys live in memory only: after an engine restart they are orphans (the reconciler
// deletes their sandboxes and twin namespaces) and are made again after the next checkpoint.
// Budget: `max` standbys at once (FAAS_ROLLBACK_STANDBYS, default 4, 0 = off), each a sandbox
// process with nothing in it (~15 MB, as a warm-pool sandbox) plus one namespace and veth pair;
// the least recently wanted is dropped first.
import { readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { SandboxRuntime } from '../core/interfaces.js';
import type { NetnsManager, TwinSlot } from '../network/netns.js';
import type { Cgroups } from '../runtime/cgroups.js';
import { writeBundle } from '../runtime/runsc/bundle.js';
import type { InstanceRepo } from '../store/sqlite/repos.js';
import type { Logger } from './logger.js';
import type { WarmPool } from './warm-pool.js';

export interface Standby {
  /** The runsc id (never an instance id). */
  sandboxId: string;
  instanceId: string;
  template: string;
  twin: TwinSlot;
  bundle: string;
  /** The sandbox process (in the twin namespace): what the slot's namespace name is re-attached to. */
  pid: number;
}

export class RollbackStandbys {
  private readonly ready = new Map<string, Standby>();
  /** Instances that want one, most recent last; made in quiet moments (warm pool's `idle`). */
  private readonly wanted = new Map<string, string>();
  private making: Promise<void> | null = null;
  private readonly discarding = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly d: {
      max: number;
      runtime: SandboxRuntime;
      network: NetnsManager;
      cgroups: Cgroups;
      instances: InstanceRepo;
      bundlesDir: string;
      warm: WarmPool;
      events: EventBus;
      log: Logger;
    },
  ) {
    d.events.on('event', (e) => {
      if (e.type === 'instance.stopped' || e.type === 'instance.deleted' || e.type === 'instance.error') this.drop(e.resourceId);
    });
    d.warm.on('idle', () => this.fill());
  }

  get enabled(): boolean {
    return this.d.max > 0 && !this.closed;
  }

  /** Asks for a standby for the instance (after a checkpoint or a rollback); made in the background. */
  want(instanceId: string, template: string): void {
    if (!this.enabled) return;
    const have = this.ready.get(instanceId);
    if (have && have.template === template) return;
    this.wanted.delete(instanceId);
    this.wanted.set(instanceId, template);
    this.d.warm.nudge();
  }

  /** The instance's standby if it fits `template` and its sandbox is still alive; it is the caller's. */
  take(instanceId: string, template: string): Standby | undefined {
    const s = this.ready.get(instanceId);
    if (!s) return undefined;
    this.ready.delete(instanceId);
    if (s.template === template && alive(s.pid)) return s;
    void this.discard(s); // a template change (not expected) or a standby that died: the cold path
    return undefined;
  }

  /** A standby made now, on the caller's path (rollback's cold path). */
  async make(instanceId: string, template: string): Promise<Standby> {
    const inst = this.d.instances.get(instanceId);
    if (!inst?.netns) throw new Error(`instance ${instanceId} has no network namespace`);
    const twin = await this.d.network.twin(inst.netns);
    const sandboxId = newId('sbx');
    const bundle = join(this.d.bundlesDir, sandboxId);
    try {
      // The hostname stays the instance's: a sandbox's processes see the same name after a rollback.
      writeBundle(bundle, template, { netnsPath: twin.path, cgroupsPath: this.d.cgroups.pathOf(sandboxId), hostname: instanceId.replace(/_/g, '-') });
      await this.d.runtime.create(sandboxId, bundle);
      // Not `runsc list`: a list that overlaps a delete re-creates the deleted sandbox's lock file
      // (runsc.ts pruneLeftovers); the sandbox process is the one in the twin namespace.
      const [pid] = await this.d.network.pidsIn(twin.netns);
      if (!pid) throw new Error(`no process in the twin namespace of standby ${sandboxId}`);
      return { sandboxId, instanceId, template, twin, bundle, pid };
    } catch (err) {
      await this.discard({ sandboxId, instanceId, template, twin, bundle, pid: 0 });
      throw err;
    }
  }

  /** Deletes a standby's sandbox, bundle and twin namespace (a swapped-in one has no twin left).
   *  Tracked until done, so close() (an engine's SIGTERM) waits for discards started in the background. */
  discard(s: Standby): Promise<void> {
    const p = (async () => {
      await this.d.runtime.destroy(s.sandboxId).catch(() => undefined);
      await this.d.network.release(s.twin.netns).catch(() => undefined);
      rmSync(s.bundle, { recursive: true, force: true });
    })().finally(() => this.discarding.delete(p));
    this.discarding.add(p);
    return p;
  }

  /** Sandbox ids of the standbys held (not instances' sandboxes, not orphans). */
  ids(): Set<string> {
    return new Set([...this.ready.values()].map((s) => s.sandboxId));
  }

  stats(): { ready: number; wanted: number; max: number } {
    return { ready: this.ready.size, wanted: this.wanted.size, max: this.d.max };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wanted.clear();
    await this.making;
    await Promise.all([...this.ready.values()].map((s) => this.discard(s)));
    this.ready.clear();
    await Promise.all([...this.discarding]);
  }

  private drop(instanceId: string): void {
    this.wanted.delete(instanceId);
    const s = this.ready.get(instanceId);
    if (!s) return;
    this.ready.delete(instanceId);
    void this.discard(s);
  }

  /** Makes wanted standbys one at a time, most recently wanted first, while restores are quiet. */
  private fill(): void {
    if (this.making || !this.enabled) return;
    this.making = (async () => {
      while (this.enabled && this.wanted.size && this.d.warm.idle()) {
        const [instanceId, template] = [...this.wanted.entries()].at(-1)!;
        this.wanted.delete(instanceId);
        const inst = this.d.instances.get(instanceId);
        if (!inst || (inst.state !== 'ready' && inst.state !== 'paused') || this.ready.has(instanceId)) continue;
        try {
          const s = await this.make(instanceId, template);
          const now = this.d.instances.get(instanceId);
          // Gone, or its slot changed (a cold restart) while this one was made: not a fit any more.
          if (this.closed || !now || now.netns !== inst.netns || (now.state !== 'ready' && now.state !== 'paused')) {
            await this.discard(s);
            continue;
          }
          this.ready.set(instanceId, s);
          while (this.ready.size > this.d.max) {
            const [oldest, o] = this.ready.entries().next().value as [string, Standby];
            this.ready.delete(oldest);
            await this.discard(o);
          }
        } catch (err) {
          this.d.log.warn({ instanceId, err: String(err) }, 'could not make a rollback standby');
        }
      }
    })().finally(() => {
      this.making = null;
    });
  }
}

/** The sandbox process still holds its namespace (a standby killed from outside is not used; a
 *  killed one not yet reaped still answers kill(pid, 0), but its namespace links are gone). */
export function alive(pid: number): boolean {
  try {
    readlinkSync(`/proc/${pid}/ns/net`);
    return true;
  } catch {
    return false;
  }
}
