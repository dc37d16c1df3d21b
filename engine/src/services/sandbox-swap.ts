// A restart or rollback of a live instance in place, by swapping the sandbox behind it: the target
// checkpoint is restored into the instance's standby (a pre-created sandbox in a twin of its
// namespace, rollback-standby.ts; made now when there is none), the standby takes over the
// instance's network slot (same address, namespace name, interface name, rules), and the old
// sandbox is deleted in the background. When the target is the instance's head and a hot standby
// holds it (rollback-hot.ts: restored ahead and paused), nothing is restored on the path: the
// standby is swapped in and resumed. server-timing `standby`: 2 hot, 1 empty made ahead, 0 made on
// the path. The instance id, address, namespace, exposed services, port
// forwards and SSH stay; only the sandbox id changes (instances.sandbox_id).
//
// Crash safety: the record becomes `pending` with the standby's sandbox id and the target as head
// in one turn before anything is touched. An engine killed after that is reconciled like any
// interrupted start: the pending instance's sandbox and the old one (now an orphan: no record names
// it) are deleted, twin namespaces swept, and the instance is restored cold from its head, so it
// ends in the new state and never has two sandboxes; only its address may change on that path.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from '../core/events.js';
import type { SandboxRuntime } from '../core/interfaces.js';
import { nowIso, type Instance, type Snapshot } from '../core/types.js';
import { newAgentKey, type AgentClient } from '../runtime/agent-client.js';
import type { Cgroups } from '../runtime/cgroups.js';
import type { InstanceRepo } from '../store/sqlite/repos.js';
import type { HotStandbys } from './rollback-hot.js';
import type { RollbackStandbys, Standby } from './rollback-standby.js';
import type { Sandboxes, Timings } from './sandboxes.js';
import type { SnapshotService } from './snapshots.js';

export interface SwapDeps {
  repo: InstanceRepo;
  snapshots: SnapshotService;
  sandboxes: Sandboxes;
  runtime: SandboxRuntime;
  agents: AgentClient;
  cgroups: Cgroups;
  events: EventBus;
  standbys: RollbackStandbys;
  /** null: FAAS_ROLLBACK_HOT_MB=0. */
  hot: HotStandbys | null;
  swapNetwork: (twin: Standby['twin'], pid: number) => Promise<void>;
  bundlesDir: string;
  readyTimeoutMs: number;
}

/** Called under the instance's lock, with `snap` held; `inst` is ready or paused and has a slot. */
export async function swapSandbox(
  d: SwapDeps,
  inst: Instance,
  snap: Snapshot,
  opts: { restoring?: (snapshotId: string) => void; timings?: Timings },
): Promise<void> {
  const timings = opts.timings ?? {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = Math.round((now - t) * 10) / 10;
    t = now;
  };
  // A hot standby already holds the target's memory and processes (its image was verified when it
  // was restored, and is not read again).
  const hot = await d.hot?.take(inst.id, snap.id);
  if (!hot) await d.snapshots.verify(snap);
  lap('verify');
  const old = d.repo.sandboxOf(inst.id);
  let sb: Standby | undefined = hot ?? d.standbys.take(inst.id, snap.spec);
  timings.standby = hot ? 2 : sb ? 1 : 0;
  sb ??= await d.standbys.make(inst.id, snap.spec);
  lap('prepare');
  // One turn: what is restored, that the instance is between sandboxes, which sandbox is its, and
  // the key its agent will hold (the reconciler finishes or undoes from exactly this).
  const key = newAgentKey();
  opts.restoring?.(snap.id);
  d.repo.update(inst.id, { state: 'pending', error: null, readyAt: null });
  d.repo.setSandbox(inst.id, sb.sandboxId);
  d.repo.setAgentKey(inst.id, key);
  d.events.publish('instance.pending', inst.id);
  let swapped = false;
  try {
    // The old sandbox goes off the network with the swap (its host veth is deleted) and is paused
    // beside it, so it takes no CPU from the restore. The network first: the restored processes
    // only ever run behind the slot's interface, with its egress rules and limit (never a moment
    // behind the twin's, which has none).
    d.agents.forget(inst.ip);
    await Promise.all([
      inst.state === 'ready' ? d.runtime.pause(old).catch(() => undefined) : undefined,
      d.swapNetwork(sb.twin, sb.pid).then(() => {
        swapped = true;
      }),
    ]);
    lap('network');
    // Hot: the restored kernel was paused in the twin namespace; it runs on from here, behind the slot.
    await (hot ? d.runtime.resume(sb.sandboxId) : d.runtime.restore(sb.sandboxId, sb.bundle, snap.imageDir));
    lap('runsc');
    d.cgroups.apply(sb.sandboxId, inst.resources);
    await d.agents.identify(inst.ip!, inst.id, d.readyTimeoutMs, inst.resources.maxProcesses, { current: d.snapshots.agentKeyOf(snap.id), next: key });
    lap('agent');
    d.repo.update(inst.id, { state: 'ready', readyAt: nowIso() });
    d.events.publish('instance.ready', inst.id, { ip: inst.ip, sandboxSwapped: true });
  } catch (err) {
    // Neither sandbox can be trusted to be the instance now: both go, with the slot (and the twin
    // if it was not swapped in). The instance is `error`; a restart restores it cold.
    const reason = `could not swap in the restored sandbox: ${(err as Error).message}`;
    await d.runtime.destroy(sb.sandboxId).catch(() => undefined);
    rmSync(sb.bundle, { recursive: true, force: true });
    if (!swapped) await d.standbys.discard(sb).catch(() => undefined);
    await d.sandboxes.destroy(old, inst.netns, inst.ip).catch(() => undefined);
    d.repo.update(inst.id, { state: 'error', error: reason, netns: null });
    d.events.publish('instance.error', inst.id, { reason });
    throw err;
  }
  // Off the path: the old sandbox (paused, off the network, its namespace now nameless) goes.
  const gone = d.runtime
    .destroy(old)
    .then(() => rmSync(join(d.bundlesDir, old), { recursive: true, force: true }))
    .catch(() => undefined)
    .finally(() => retiring.delete(old));
  retiring.set(old, gone);
  d.standbys.want(inst.id, snap.spec);
  d.hot?.want(inst.id);
}

/** Swapped-out sandboxes being deleted in the background, by runsc id. */
const retiring = new Map<string, Promise<void>>();

/** Resolves once a swapped-out sandbox of this id is gone (a cold restore reuses instance ids). */
export function retired(sandboxId: string): Promise<void> {
  return retiring.get(sandboxId) ?? Promise.resolve();
}
