// Turns instances' stored network policies (networkConfig, resources.networkBandwidth) into host
// rules for their slots (network/slot-policy.ts) and keeps them current. Lifecycle: apply() before a
// sandbox is restored or resumed into its slot and on every change; start() after the reconciler
// re-applies every adopted instance's policy and starts re-resolving host names every
// `egressResolveSeconds`; stop() at shutdown. Removal is the slot's release (netns.ts).
//
// Host names are resolved here, on the engine host (the FAAS_EGRESS_HOSTS_FILE override first,
// then getaddrinfo, IPv4 only), never inside the sandbox: a sandbox's resolver cannot widen its own
// allow list. A name that does not resolve matches nothing until a later resolution finds it.
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isHostName, isUnrestricted } from '../core/network-config.js';
import type { NetworkManager } from '../core/interfaces.js';
import type { Instance, NetworkConfig } from '../core/types.js';
import type { InstanceRepo } from '../store/sqlite/repos.js';
import type { Logger } from './logger.js';

type SlotState = Parameters<NetworkManager['setPolicy']>[1];

export interface NetworkPolicyDeps {
  network: NetworkManager;
  instances: InstanceRepo;
  log: Logger;
  resolveSeconds: number;
  hostsFile: string | null;
}

const RESOLVE_TIMEOUT_MS = 5_000;

export class NetworkPolicyService {
  /** What each slot got last (JSON), so re-resolution only rewrites rules that changed. */
  private readonly applied = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private resolving: Promise<void> | null = null;

  constructor(private readonly d: NetworkPolicyDeps) {}

  /** Installs the instance's policy on its slot `netns` (replacing what the slot had). */
  async apply(netns: string, inst: Pick<Instance, 'id' | 'networkConfig' | 'resources'>): Promise<void> {
    const state = await this.stateFor(inst.networkConfig, inst.resources.networkBandwidth);
    const key = JSON.stringify(state);
    const unrestricted = state.egress === null && state.bandwidth === null;
    // A slot fresh from the pool has no rules: nothing to do for an unrestricted instance.
    if (unrestricted && !this.applied.has(netns)) return;
    await this.d.network.setPolicy(netns, state);
    if (unrestricted) this.applied.delete(netns);
    else this.applied.set(netns, key);
  }

  /** Re-applies every adopted instance's policy, then re-resolves host names periodically. */
  async start(): Promise<void> {
    for (const inst of this.d.instances.live()) {
      if (!inst.netns || (inst.state !== 'ready' && inst.state !== 'paused')) continue;
      // After a restart the slot may still hold the rules: mark it so an unrestricted policy clears them.
      this.applied.set(inst.netns, '');
      await this.apply(inst.netns, inst).catch((err) => this.d.log.warn({ id: inst.id, err: String(err) }, 'could not re-apply the network policy'));
    }
    this.timer = setInterval(() => {
      this.resolving ??= this.refresh().finally(() => (this.resolving = null));
    }, this.d.resolveSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.resolving;
  }

  /** Forgets a released slot (its rules went with it). */
  forget(netns: string | null): void {
    if (netns) this.applied.delete(netns);
  }

  private async refresh(): Promise<void> {
    for (const inst of this.d.instances.live()) {
      if (!inst.netns || (inst.state !== 'ready' && inst.state !== 'paused')) continue;
      const e = inst.networkConfig.egress;
      if (![...e.allow, ...e.deny].some(isHostName)) continue;
      const state = await this.stateFor(inst.networkConfig, inst.resources.networkBandwidth);
      if (this.applied.get(inst.netns) === JSON.stringify(state)) continue;
      await this.apply(inst.netns, inst).catch((err) => this.d.log.warn({ id: inst.id, err: String(err) }, 'could not re-apply the network policy'));
    }
  }

  private async stateFor(cfg: NetworkConfig, bandwidth: number | null): Promise<SlotState> {
    if (isUnrestricted(cfg)) return { egress: null, bandwidth };
    const e = cfg.egress;
    const expand = async (targets: string[]) => [...new Set((await Promise.all(targets.map((t) => this.resolve(t)))).flat())].sort();
    return {
      egress: {
        denyAll: e.mode === 'deny-all',
        dnsServers: e.dns ? hostResolvers() : [],
        allow: await expand(e.allow),
        deny: await expand(e.deny),
      },
      bandwidth,
    };
  }

  /** A CIDR as it is; a host name as the /32s of its IPv4 addresses (none when it does not resolve). */
  private async resolve(target: string): Promise<string[]> {
    if (!isHostName(target)) return [target];
    const pinned = this.pinned(target);
    if (pinned.length) return pinned.map((a) => `${a}/32`);
    try {
      const found = await Promise.race([
        lookup(target, { all: true, family: 4 }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), RESOLVE_TIMEOUT_MS).unref()),
      ]);
      return found.map((a) => `${a.address}/32`);
    } catch (err) {
      this.d.log.warn({ host: target, err: String(err) }, 'an egress host name did not resolve; it matches nothing until it does');
      return [];
    }
  }

  /** Addresses the hosts-file override gives the name (read on every resolution: edits apply). */
  private pinned(name: string): string[] {
    if (!this.d.hostsFile) return [];
    let text = '';
    try {
      text = readFileSync(this.d.hostsFile, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').flatMap((line) => {
      const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
      return /^\d{1,3}(\.\d{1,3}){3}$/.test(addr ?? '') && names.map((n) => n.toLowerCase().replace(/\.$/, '')).includes(name) ? [addr] : [];
    });
  }
}

/** IPv4 resolvers of the host (what the default image's resolv.conf names: services/images.ts). */
function hostResolvers(): string[] {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8')
      .split('\n')
      .map((l) => /^nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(l.trim())?.[1])
      .filter((a): a is string => !!a && !a.startsWith('127.'))
      .map((a) => `${a}/32`);
  } catch {
    return [];
  }
}
