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
// The engine's own connections to the agent (files, exec, the files tar of /) are not the
// instance's traffic and pass unshaped both ways: on the veth's egress an htb qdisc puts packets
// from the host end's address to the agent's port in an unlimited class and everything else in the
// class with the tbf; on its ingress, packets from the agent's port to the host end's address are
// passed before the catch-all redirect to the ifb. The matches need a plain 20-byte IPv4 header
// (0x45), so a sandbox's root cannot forge options that move the port bytes under the match; what
// it can forge (a source port of 7070 towards the host end) only reaches the host's INPUT chain,
// which drops it. Port forwards, tunnels and SSH sessions ride the agent's connection and are
// therefore not shaped either (docs/services.md).
const u32Tcp = 'match u8 0x45 0xff at 0 match ip protocol 6 0xff';
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
  // What each slot has on the host, so a fresh slot costs one iptables-restore (and one ip and
  // one tc batch with a bandwidth limit), and a slot that never had rules costs nothing to clear.
  /** Slots whose chain exists. */
  private readonly chains = new Set<number>();
  /** Slots whose jump in the dispatch chain exists. */
  private readonly jumps = new Set<number>();
  /** Slots with qdiscs on the veth and an ifb, with their rate (NaN: unknown, found at start). */
  private readonly shaped = new Map<number, number>();

  constructor(private readonly tag: string, private readonly runner: ProgramRunner, private readonly controlPort: number) {}

  /** Finds what an earlier engine of this tag left (adopted slots are re-applied, others cleared). */
  async scan(): Promise<void> {
    const listed = (await this.runner.run({ file: 'iptables', args: ['-w', '-S'] }).catch(() => null))?.stdout ?? '';
    for (const m of listed.matchAll(new RegExp(`^-N FAAS-${this.tag}-E([0-9a-z]+)$`, 'gm'))) this.chains.add(parseInt(m[1], 36));
    for (const m of listed.matchAll(new RegExp(`^-A ${egressDispatchChain(this.tag)} .*-j FAAS-${this.tag}-E([0-9a-z]+)$`, 'gm'))) this.jumps.add(parseInt(m[1], 36));
    // ifb names alone are ambiguous when one engine's tag is a prefix of another's (`fit1` + `25`
    // vs `fit12` + `5`), so each carries its owner in its alias.
    const links = await this.runner.run({ file: 'ip', args: ['-j', '-d', 'link', 'show', 'type', 'ifb'] }).catch(() => null);
    try {
      for (const l of JSON.parse(links?.stdout || '[]') as { ifalias?: string }[]) {
        const m = /^faas-([a-z0-9]+)-(\d+)$/.exec(l.ifalias ?? '');
        if (m && m[1] === this.tag) this.shaped.set(Number(m[2]), NaN);
      }
    } catch {
      /* no ifb devices */
    }
  }

  async apply(k: number, hostIf: string, hostIp: string, state: SlotPolicyState): Promise<void> {
    await this.applyEgress(k, hostIf, state.egress);
    await this.applyBandwidth(k, hostIf, state.bandwidth, hostIp);
  }

  /** Removes the slot's chain, its jump and its ifb; a no-op for a slot that never had any. */
  async clear(k: number, hostIf: string): Promise<void> {
    await this.applyEgress(k, hostIf, null);
    await this.applyBandwidth(k, hostIf, null);
  }

  /** Clears every slot that may still have rules or an ifb (the engine's uninstall). */
  async clearAll(hostIfOf: (k: number) => string): Promise<void> {
    for (const k of new Set([...this.chains, ...this.jumps, ...this.shaped.keys()])) await this.clear(k, hostIfOf(k));
  }

  private async applyEgress(k: number, hostIf: string, egress: ResolvedEgress | null): Promise<void> {
    const chain = slotChain(this.tag, k);
    const jump = ['-i', hostIf, '-j', chain];
    if (!egress) {
      if (this.jumps.has(k)) while ((await this.iptables(['-D', egressDispatchChain(this.tag), ...jump])).code === 0);
      this.jumps.delete(k);
      if (this.chains.has(k)) {
        await this.iptables(['-F', chain]);
        await this.iptables(['-X', chain]);
      }
      this.chains.delete(k);
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
    // The chain is declared (created, or emptied) and filled, and a new slot's jump added, in one
    // transaction; the dispatch chain is not declared, so its other jumps stay.
    const lines = [
      '*filter',
      `:${chain} - [0:0]`,
      ...rules.map((r) => `-A ${chain} ${r.join(' ')}`),
      ...(this.jumps.has(k) ? [] : [`-A ${egressDispatchChain(this.tag)} ${jump.join(' ')}`]),
      'COMMIT',
      '',
    ];
    this.chains.add(k);
    const restored = await this.runner.run({ file: 'iptables-restore', args: ['-w', '--noflush'], input: lines.join('\n') });
    if (restored.code !== 0) throw new FaasError('runtime_error', `could not apply the egress rules: ${restored.stderr.trim()}`, { log: restored.stderr });
    this.jumps.add(k);
  }

  private async applyBandwidth(k: number, hostIf: string, mbit: number | null, hostIp = ''): Promise<void> {
    const ifb = ifbName(this.tag, k);
    const had = this.shaped.has(k);
    if (had && this.shaped.get(k) === mbit) return; // a policy change that keeps the limit
    if (had) await this.runner.run({ file: 'tc', args: ['-force', '-batch', '-'], input: `qdisc del dev ${hostIf} root\nqdisc del dev ${hostIf} ingress\n` });
    if (mbit === null) {
      if (had) await this.runner.run({ file: 'ip', args: ['link', 'del', ifb] }).catch(() => undefined);
      this.shaped.delete(k);
      return;
    }
    this.shaped.set(k, mbit);
    if (!had) await this.batch('ip', [`link add ${ifb} type ifb`, `link set ${ifb} alias faas-${this.tag}-${k} up`]);
    await this.shape(hostIf, hostIp, ifb, mbit);
  }

  /** The slot's host interface was replaced (a rollback's swap, netns.ts swapIn): its qdiscs went
   *  with the old one, so the slot's limit is put on the new one. */
  async reshape(k: number, hostIf: string, hostIp: string): Promise<void> {
    const mbit = this.shaped.get(k);
    if (mbit !== undefined && mbit !== null) await this.shape(hostIf, hostIp, ifbName(this.tag, k), mbit);
  }

  private async shape(hostIf: string, hostIp: string, ifb: string, mbit: number): Promise<void> {
    // Burst: at least one 64 KiB GSO packet, else 20 ms at the rate. Latency bounds the queue.
    const burst = Math.max(65536, Math.round((mbit * 1e6) / 8 / 50));
    const tbf = `tbf rate ${mbit}mbit burst ${burst} latency 100ms`;
    const agent = this.controlPort;
    await this.batch('tc', [
      `qdisc replace dev ${ifb} root ${tbf}`,
      // Into the sandbox: class 1:1 (the engine to the agent) unlimited, 1:2 (all else) the tbf.
      // htb only sorts here (its classes' rate is far above any veth's): this kernel has no prio.
      `qdisc add dev ${hostIf} root handle 1: htb default 2`,
      `class add dev ${hostIf} parent 1: classid 1:1 htb rate 10gbit burst 1mb quantum 200000`,
      `class add dev ${hostIf} parent 1: classid 1:2 htb rate 10gbit burst 1mb quantum 200000`,
      `qdisc add dev ${hostIf} parent 1:2 handle 20: ${tbf}`,
      `filter add dev ${hostIf} parent 1: protocol ip prio 1 u32 ${u32Tcp} match ip src ${hostIp}/32 match ip dport ${agent} 0xffff flowid 1:1`,
      // Out of the sandbox: the agent's answers to the engine pass, all else goes through the ifb.
      // A u32 match with a flowid and no action ends the ingress classification with "ok" (this
      // kernel has no gact module for `action pass`).
      `qdisc add dev ${hostIf} handle ffff: ingress`,
      `filter add dev ${hostIf} parent ffff: protocol ip prio 1 u32 ${u32Tcp} match ip dst ${hostIp}/32 match ip sport ${agent} 0xffff flowid ffff:1`,
      `filter add dev ${hostIf} parent ffff: protocol all prio 2 u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
    ]);
  }

  private async batch(file: 'ip' | 'tc', lines: string[]): Promise<void> {
    const r = await this.runner.run({ file, args: ['-batch', '-'], input: lines.join('\n') + '\n' });
    if (r.code !== 0) throw new FaasError('runtime_error', `could not limit the bandwidth: ${file}: ${r.stderr.trim()}`, { log: r.stderr });
  }

  private iptables(args: string[]) {
    return this.runner.run({ file: 'iptables', args: ['-w', ...args] });
  }
}
