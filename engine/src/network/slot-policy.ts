// Per-slot egress rules and bandwidth limits, on the host, outside the sandbox. Lifecycle of a
// slot's policy: apply() before the sandbox in the slot is restored or resumed (and again on every
// change, on adoption after an engine restart and when re-resolved host names change); clear()
// when the slot is released and before a slot is made again, so a reused slot never carries the
// previous instance's rules.
//
// Egress: one chain per slot, `FAAS-<tag>-E<k>`, reached from `FAAS-<tag>-EGR` by the slot's host
// veth (`-i fv<tag><k>`: root in the sandbox can change its addresses, not its veth). EGR is jumped
// to from the engine's FWD chain after the sandbox-to-sandbox drops (firewall.ts). A chain is
// declared and filled in one `iptables-restore --noflush` transaction, so a change replaces the
// old rules at once. Rules are stateless on purpose: a new deny also cuts connections already open.
//
// Bandwidth: a tbf qdisc on the host veth's egress (traffic into the sandbox), and for traffic out
// of the sandbox the host veth's ingress redirected to an ifb device `fi<tag><k>` with a tbf on its
// egress. Shaping inside the namespace would not do: gVisor writes to eth0 through a packet socket
// from inside the sandbox's own process, where a root in the sandbox decides, so the limit must be
// where the sandbox cannot reach it. The veth's qdiscs go with the veth; the ifb is deleted here.
import type { ProgramRunner } from '../core/interfaces.js';
import { FaasError } from '../core/errors.js';

/** Egress rules with host names already resolved: IPv4 CIDRs only. */
export interface ResolvedEgress {
  denyAll: boolean;
  /** Resolvers that DNS (port 53) may reach whatever the rest says (empty: none). */
  dnsServers: string[];
  allow: string[];
  deny: string[];
}

export interface SlotPolicyState {
  egress: ResolvedEgress | null;
  /** Mbit/s each way; null: no limit. */
  bandwidth: number | null;
}

export const egressDispatchChain = (tag: string) => `FAAS-${tag}-EGR`;
const slotChain = (tag: string, k: number) => `FAAS-${tag}-E${k.toString(36)}`;
const ifbName = (tag: string, k: number) => `fi${tag}${k.toString(36)}`;

export class SlotPolicies {
  /** Slots that may have rules or an ifb on the host (from apply(), or found at start). */
  private readonly dirty = new Set<number>();

  constructor(private readonly tag: string, private readonly runner: ProgramRunner) {}

  /** Finds what an earlier engine of this tag left (adopted slots are re-applied, others cleared). */
  async scan(): Promise<void> {
    const chains = await this.runner.run({ file: 'iptables', args: ['-w', '-S'] }).catch(() => null);
    const re = new RegExp(`^-N FAAS-${this.tag}-E([0-9a-z]+)$`, 'gm');
    for (const m of chains?.stdout.matchAll(re) ?? []) if (m[1] !== 'GR') this.dirty.add(parseInt(m[1], 36));
    const links = await this.runner.run({ file: 'ip', args: ['-j', 'link', 'show', 'type', 'ifb'] }).catch(() => null);
    try {
      for (const l of JSON.parse(links?.stdout || '[]') as { ifname: string }[]) {
        if (l.ifname.startsWith(`fi${this.tag}`)) this.dirty.add(parseInt(l.ifname.slice(2 + this.tag.length), 36));
      }
    } catch {
      /* no ifb devices */
    }
  }

  async apply(k: number, hostIf: string, state: SlotPolicyState): Promise<void> {
    this.dirty.add(k);
    await this.applyEgress(k, hostIf, state.egress);
    await this.applyBandwidth(k, hostIf, state.bandwidth);
  }

  /** Removes the slot's chain, its jump and its ifb; a no-op for a slot that never had any. */
  async clear(k: number, hostIf: string): Promise<void> {
    if (!this.dirty.has(k)) return;
    await this.applyEgress(k, hostIf, null);
    await this.runner.run({ file: 'ip', args: ['link', 'del', ifbName(this.tag, k)] }).catch(() => undefined);
    this.dirty.delete(k);
  }

  /** Clears every slot that may still have rules or an ifb (the engine's uninstall). */
  async clearAll(hostIfOf: (k: number) => string): Promise<void> {
    for (const k of [...this.dirty]) await this.clear(k, hostIfOf(k));
  }

  private async applyEgress(k: number, hostIf: string, egress: ResolvedEgress | null): Promise<void> {
    const chain = slotChain(this.tag, k);
    const jump = [egressDispatchChain(this.tag), '-i', hostIf, '-j', chain];
    if (!egress) {
      while ((await this.iptables(['-D', ...jump])).code === 0);
      await this.iptables(['-F', chain]);
      await this.iptables(['-X', chain]);
      return;
    }
    const reject = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
    // TCP is refused with a reset, so a connect fails at once with "connection refused".
    const refuse = (dest: string[]) => [[...dest, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'], [...dest, ...reject]];
    const rules: string[][] = [
      ...egress.dnsServers.flatMap((ns) => ['udp', 'tcp'].map((p) => ['-d', ns, '-p', p, '--dport', '53', '-j', 'RETURN'])),
      ...egress.allow.map((c) => ['-d', c, '-j', 'RETURN']),
      ...egress.deny.flatMap((c) => refuse(['-d', c])),
      ...(egress.denyAll ? refuse([]) : []),
    ];
    const script = ['*filter', `:${chain} - [0:0]`, ...rules.map((r) => `-A ${chain} ${r.join(' ')}`), 'COMMIT', ''].join('\n');
    const restored = await this.runner.run({ file: 'iptables-restore', args: ['-w', '--noflush'], input: script });
    if (restored.code !== 0) throw new FaasError('runtime_error', `could not apply the egress rules: ${restored.stderr.trim()}`, { log: restored.stderr });
    if ((await this.iptables(['-C', ...jump])).code !== 0) {
      const added = await this.iptables(['-A', ...jump]);
      if (added.code !== 0) throw new FaasError('runtime_error', `could not apply the egress rules: ${added.stderr.trim()}`, { log: added.stderr });
    }
  }

  private async applyBandwidth(k: number, hostIf: string, mbit: number | null): Promise<void> {
    const ifb = ifbName(this.tag, k);
    await this.tc(['qdisc', 'del', 'dev', hostIf, 'root']);
    await this.tc(['qdisc', 'del', 'dev', hostIf, 'ingress']);
    if (mbit === null) {
      await this.runner.run({ file: 'ip', args: ['link', 'del', ifb] }).catch(() => undefined);
      return;
    }
    // Burst: at least one 64 KiB GSO packet, else 20 ms at the rate. Latency bounds the queue.
    const burst = Math.max(65536, Math.round((mbit * 1e6) / 8 / 50));
    const tbf = ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '100ms'];
    await this.runner.run({ file: 'ip', args: ['link', 'add', ifb, 'type', 'ifb'] }).catch(() => undefined);
    const steps = [
      ['ip', 'link', 'set', ifb, 'up'],
      ['tc', 'qdisc', 'replace', 'dev', ifb, ...tbf],
      ['tc', 'qdisc', 'add', 'dev', hostIf, ...tbf],
      ['tc', 'qdisc', 'add', 'dev', hostIf, 'handle', 'ffff:', 'ingress'],
      ['tc', 'filter', 'add', 'dev', hostIf, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb],
    ];
    for (const [file, ...args] of steps) {
      const r = await this.runner.run({ file, args });
      if (r.code !== 0) throw new FaasError('runtime_error', `could not limit the bandwidth: ${file} ${args.join(' ')}: ${r.stderr.trim()}`, { log: r.stderr });
    }
  }

  private iptables(args: string[]) {
    return this.runner.run({ file: 'iptables', args: ['-w', ...args] });
  }

  private tc(args: string[]) {
    return this.runner.run({ file: 'tc', args });
  }
}
