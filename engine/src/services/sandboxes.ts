// Puts sandboxes up and takes them down: network slot, bundle, runsc, cgroup limits, and the
// agent's readiness. Every path that fails part way undoes what it did, so a failed start leaves
// no sandbox, namespace or bundle behind. The readiness call (identify) also gives the agent its
// key: a booted agent takes its first key, a restored one (which holds its snapshot's key, shared
// with every other restore of that image) is re-keyed before anything else can use it.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkManager, NetworkSlot, SandboxRuntime } from '../core/interfaces.js';
import type { Resources } from '../core/types.js';
import type { AgentClient, AgentKeys } from '../runtime/agent-client.js';
import type { Cgroups } from '../runtime/cgroups.js';
import { writeBundle } from '../runtime/runsc/bundle.js';
import type { WarmPool, WarmSandbox } from './warm-pool.js';

export interface SandboxDeps {
  runtime: SandboxRuntime;
  network: NetworkManager;
  agents: AgentClient;
  cgroups: Cgroups;
  bundlesDir: string;
  readyTimeoutMs: number;
  warm: WarmPool;
}

export interface Timings {
  [step: string]: number;
}

export class Sandboxes {
  constructor(private readonly d: SandboxDeps) {}

  /** Cold boot (only when a snapshot is made from an image); the agent takes `key` as its first. */
  boot(id: string, template: string, resources: Resources, key: string, timings: Timings = {}): Promise<NetworkSlot> {
    return this.up(id, template, resources, { current: null, next: key }, timings, (bundle) => this.d.runtime.boot(id, bundle, { diskSizeMb: resources.diskSize }));
  }

  /** A pre-created sandbox for this template, if the pool has one; its id becomes the instance's. */
  takeWarm(template: string): WarmSandbox | undefined {
    return this.d.warm.take(template);
  }

  /**
   * Restore a checkpoint image as a new live sandbox (into `warm` when given). `keys.current` is
   * the snapshot's key, `keys.next` the new sandbox's own.
   */
  async restore(
    id: string,
    template: string,
    imageDir: string,
    resources: Resources,
    keys: AgentKeys,
    timings: Timings = {},
    warm?: WarmSandbox,
    prepare?: (netns: string) => Promise<void>,
  ): Promise<NetworkSlot> {
    this.d.warm.begin();
    const restore = async (bundle: string, slot: NetworkSlot) => {
      // Host-side rules for the slot (egress, bandwidth) are in place before the sandbox runs.
      const tp = performance.now();
      await prepare?.(slot.netns);
      timings.prepare = Math.round((performance.now() - tp) * 10) / 10;
      await this.d.runtime.restore(id, bundle, imageDir);
    };
    try {
      if (warm && warm.id === id) {
        timings.warm = 1;
        return await this.up(id, template, resources, keys, timings, restore, warm.slot);
      }
      return await this.up(id, template, resources, keys, timings, restore);
    } finally {
      this.d.warm.end();
    }
  }

  /**
   * With `networkLater`, the namespace is released in the background (a restart restores into a
   * pooled one meanwhile; a crash before it is done leaves it to the reconciler's sweep).
   */
  async destroy(id: string, netns: string | null, ip: string | null, networkLater = false): Promise<void> {
    this.d.agents.forget(ip);
    await this.d.runtime.destroy(id);
    if (netns && networkLater) void this.d.network.release(netns).catch(() => undefined);
    else if (netns) await this.d.network.release(netns);
    rmSync(join(this.d.bundlesDir, id), { recursive: true, force: true });
  }

  private async up(
    id: string,
    template: string,
    resources: Resources,
    keys: AgentKeys,
    timings: Timings,
    start: (bundle: string, slot: NetworkSlot) => Promise<void>,
    precreated?: NetworkSlot,
  ): Promise<NetworkSlot> {
    let t = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      timings[name] = Math.round((now - t) * 10) / 10;
      t = now;
    };
    const slot = precreated ?? (await this.d.network.acquire());
    lap('network');
    const bundle = join(this.d.bundlesDir, id);
    try {
      if (!precreated) writeBundle(bundle, template, { netnsPath: slot.path, cgroupsPath: this.d.cgroups.pathOf(id), hostname: id.replace(/_/g, '-') });
      await start(bundle, slot);
      lap('runsc');
      this.d.cgroups.apply(id, resources);
      lap('cgroups');
      await this.d.agents.identify(slot.ip, id, this.d.readyTimeoutMs, resources.maxProcesses, keys);
      lap('agent');
      return slot;
    } catch (err) {
      await this.destroy(id, slot.netns, slot.ip).catch(() => undefined);
      throw err;
    }
  }
}
