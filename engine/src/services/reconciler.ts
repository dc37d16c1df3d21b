// Makes the records and the host agree, on every engine start and then continuously:
//  - snapshots left `creating` by a crash are rolled back (files and row); stray image dirs removed;
//  - sandboxes with no live record (orphans, unfinished snapshot boots) are destroyed;
//  - instances left `pending` are finished: their half-made sandbox is replaced by a fresh restore;
//  - instances left `stopping` are stopped; live records whose sandbox vanished become `error`;
//  - network namespaces (with their veths), bundles and cgroups that nothing uses are deleted.
// It runs only while this engine holds the state directory's lock and after a crashed engine's
// spawner helper has finished (engine.ts), so no other process adds sandboxes meanwhile.
// While running, a watcher notices sandboxes that die on their own (OOM, crash), and sweeps runsc's
// leftover lock files about once a minute.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxRuntime } from '../core/interfaces.js';
import { nowIso } from '../core/types.js';
import type { NetnsManager } from '../network/netns.js';
import type { AgentClient } from '../runtime/agent-client.js';
import type { Cgroups } from '../runtime/cgroups.js';
import { OUT_OF_MEMORY } from '../core/instance-states.js';
import type { SnapshotFiles } from '../store/snapshot-files.js';
import type { InstanceRepo, SnapshotRepo } from '../store/sqlite/repos.js';
import type { InstanceService } from './instances.js';
import type { Logger } from './logger.js';

export class Reconciler {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: {
      runtime: SandboxRuntime;
      network: NetnsManager;
      cgroups: Cgroups;
      snapshots: SnapshotRepo;
      instances: InstanceRepo;
      files: SnapshotFiles;
      service: InstanceService;
      agents: AgentClient;
      bundlesDir: string;
      log: Logger;
    },
  ) {}

  async reconcile(): Promise<{ finished: string[]; orphans: string[]; rolledBack: string[] }> {
    const { d } = this;
    const report = { finished: [] as string[], orphans: [] as string[], rolledBack: [] as string[] };

    for (const s of d.snapshots.inState('creating')) {
      d.files.remove(s.id);
      d.snapshots.delete(s.id);
      report.rolledBack.push(s.id);
    }
    const known = new Set(d.snapshots.all().map((s) => s.id));
    const disk = d.files.scan();
    for (const id of disk.temps) d.files.remove(id);
    for (const name of disk.partial) d.files.removeLeftover(name);
    for (const id of disk.ids) if (!known.has(id)) d.files.remove(id);

    const sandboxes = new Map((await d.runtime.list()).map((s) => [s.id, s]));
    const live = new Map(d.instances.live().map((i) => [i.id, i]));
    // Sandbox ids apart from instance ids (a rollback swaps sandboxes, sandbox-swap.ts): the one a
    // record names is the instance's; any other (a swapped-out one, a standby) is an orphan.
    const sandboxOf = new Map([...live.keys()].map((id) => [id, d.instances.sandboxOf(id)]));
    const owner = new Map([...sandboxOf].map(([i, s]) => [s, live.get(i)!]));
    for (const id of sandboxes.keys()) {
      const inst = owner.get(id);
      if (!inst || inst.state === 'pending' || inst.state === 'stopping') {
        await d.runtime.destroy(id).catch((e) => d.log.warn({ err: String(e), id }, 'could not destroy sandbox'));
        if (!inst) report.orphans.push(id);
      }
    }
    const keepNetns = new Set<string>();
    const toFinish: string[] = [];
    for (const inst of live.values()) {
      const sb = sandboxes.get(sandboxOf.get(inst.id)!);
      if (inst.state === 'stopping') {
        d.instances.update(inst.id, { state: 'stopped', stoppedAt: nowIso(), netns: null });
      } else if (inst.state === 'pending') {
        toFinish.push(inst.id);
      } else if (!sb || sb.status === 'stopped') {
        d.instances.update(inst.id, { state: 'error', error: 'the sandbox exited while the engine was down', netns: null });
        // As the watcher does (markDead): runsc's record of the dead sandbox goes; its namespace,
        // bundle and cgroup are not kept below.
        if (sb) await d.runtime.destroy(sandboxOf.get(inst.id)!).catch((e) => d.log.warn({ err: String(e), id: inst.id }, 'could not destroy sandbox'));
      } else if (inst.netns) {
        keepNetns.add(inst.netns);
        d.network.adopt(inst.netns);
        // An adopted agent keeps the key it was given; the engine learns it back from the record.
        const key = d.instances.agentKey(inst.id);
        if (inst.ip && key) d.agents.remember(inst.ip, key);
      }
    }
    for (const ns of await d.network.existing()) {
      if (!keepNetns.has(ns)) await d.network.release(ns).catch(() => undefined);
    }
    const keepBundles = new Set(
      [...live.values()].map((i) => sandboxOf.get(i.id)!).filter((s) => { const i = owner.get(s)!; return (i.state === 'ready' || i.state === 'paused') && running(sandboxes.get(s)); }),
    );
    for (const b of safeReaddir(d.bundlesDir)) if (!keepBundles.has(b)) rmSync(join(d.bundlesDir, b), { recursive: true, force: true });
    d.runtime.pruneLeftovers(keepBundles);
    // Cgroups of sandboxes destroyed above, or killed with the engine before runsc removed them.
    for (const c of d.cgroups.list()) if (!keepBundles.has(c)) d.cgroups.remove(c);
    // Finish interrupted starts (e.g. children of a branch the engine died in) with a fresh restore.
    for (const id of toFinish) {
      try {
        await d.service.finishPending(id);
        report.finished.push(id);
      } catch (err) {
        d.log.warn({ id, err: String(err) }, 'could not finish an interrupted start');
      }
    }
    return report;
  }

  /** Watches for sandboxes that exit on their own while the engine runs. */
  watch(intervalMs = 2000): void {
    let ticks = 0;
    const tick = async () => {
      // About once a minute: runsc files of deleted sandboxes (see RunscRuntime.pruneLeftovers).
      if (++ticks % Math.max(1, Math.round(60_000 / intervalMs)) === 0) {
        try {
          const known = new Set((await this.d.runtime.list()).map((s) => s.id));
          for (const i of this.d.instances.live()) known.add(this.d.instances.sandboxOf(i.id));
          this.d.runtime.pruneLeftovers(known, 60_000);
        } catch (err) {
          this.d.log.warn({ err: String(err) }, 'watcher: could not sweep runsc leftovers');
        }
      }
      const candidates = this.d.instances.live().filter((i) => i.state === 'ready' || i.state === 'paused');
      if (candidates.length) {
        const listedAt = nowIso();
        try {
          const running = new Map((await this.d.runtime.list()).map((s) => [s.id, s.status]));
          for (const c of candidates) {
            // The record as it is now: a rollback may have swapped the sandbox (and set readyAt)
            // while runsc listed.
            const i = this.d.instances.get(c.id);
            if (!i || (i.state !== 'ready' && i.state !== 'paused')) continue;
            const status = running.get(this.d.instances.sandboxOf(i.id));
            if ((!status || status === 'stopped') && (i.readyAt ?? '') < listedAt) {
              // The memory cgroup says whether the kernel killed it for memory: then say so, and
              // what to do, instead of a guess (the log gets the same line).
              const oom = this.d.cgroups.oomKilled(i.id);
              const why = oom
                ? `${OUT_OF_MEMORY} the sandbox used all of its ${i.resources.memory} MB and was killed; start it again with more memory (resources.memory, \`faas instance start --memory MB\`) or make it use less`
                : 'the sandbox exited unexpectedly (crashed or killed)';
              this.d.log.warn({ instanceId: i.id, oom, memoryMb: i.resources.memory }, `instance ${i.id}: ${why}`);
              this.d.service.markDead(i.id, why);
            }
          }
        } catch (err) {
          this.d.log.warn({ err: String(err) }, 'watcher: runsc list failed');
        }
      }
      if (this.timer) this.timer = setTimeout(tick, intervalMs);
    };
    this.timer = setTimeout(tick, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

const running = (sb: { status: string } | undefined) => !!sb && sb.status !== 'stopped';

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
