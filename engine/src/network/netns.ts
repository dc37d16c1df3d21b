// One network namespace + veth pair per sandbox. Slot k of the engine's subnet is the /30
// 10.x.(4k)/30: host side .1, instance .2. gVisor copies the namespace's interfaces into its own
// stack and strips their addresses, so a namespace is used once and deleted with its instance.
// Configured namespaces are kept ready in a small pool so a start or branch does not wait for them.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { FaasError } from '../core/errors.js';
import type { NetworkManager, NetworkSlot, ProgramRunner } from '../core/interfaces.js';
import { Firewall } from './firewall.js';
import { SlotPolicies, type SlotPolicyState } from './slot-policy.js';

export interface NetnsOptions {
  /** Short tag that makes this engine's namespace and interface names unique on the host. */
  tag: string;
  /** An IPv4 /16 such as 10.200.0.0/16. */
  subnet: string;
  poolSize: number;
  /** Runs `ip` (from a small helper process: see runtime/spawner.ts). */
  runner: ProgramRunner;
  /** The agent's TCP port in every sandbox: the engine's control traffic, never bandwidth-limited. */
  controlPort: number;
}

const NETNS_DIR = '/var/run/netns';

export class NetnsManager implements NetworkManager {
  private readonly base: [number, number];
  private readonly inUse = new Set<number>();
  private readonly ready: NetworkSlot[] = [];
  private filling: Promise<void> | null = null;
  private closed = false;
  private readonly firewall: Firewall;
  private readonly policies: SlotPolicies;

  constructor(private readonly opts: NetnsOptions) {
    const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(opts.subnet);
    if (!m) throw new Error(`FAAS_SUBNET must be an a.b.0.0/16 range, got ${opts.subnet}`);
    this.base = [Number(m[1]), Number(m[2])];
    if (!/^[a-z0-9]{1,6}$/.test(opts.tag)) throw new Error(`network tag must be 1-6 of [a-z0-9]: ${opts.tag}`);
    this.firewall = new Firewall({ tag: opts.tag, subnet: opts.subnet });
    this.policies = new SlotPolicies(opts.tag, opts.runner, opts.controlPort);
  }

  async init(): Promise<void> {
    await this.firewall.ensure();
    await this.policies.scan();
    // Another engine (or a crashed one's sandboxes) may use addresses in this subnet: never
    // hand out a slot whose host address is already on an interface.
    for (const addr of await hostAddresses(this.opts.runner)) {
      const k = this.slotOf(addr);
      if (k !== null) this.inUse.add(k);
    }
  }

  private slotOf(addr: string): number | null {
    const [a, b, c, d] = addr.split('.').map(Number);
    if (a !== this.base[0] || b !== this.base[1]) return null;
    return Math.floor((c * 256 + d) / 4);
  }

  /** Starts keeping configured namespaces ready; call after adopt() has claimed surviving slots. */
  startPool(): void {
    this.refill();
  }

  private prefix() {
    return `faas-${this.opts.tag}-`;
  }

  async existing(): Promise<string[]> {
    try {
      return readdirSync(NETNS_DIR).filter((n) => n.startsWith(this.prefix()));
    } catch {
      return [];
    }
  }

  /** Marks slots of namespaces that survive an engine restart as taken. */
  adopt(netns: string): void {
    const k = Number(netns.slice(this.prefix().length));
    if (Number.isInteger(k)) this.inUse.add(k);
    // Sandboxes started by an engine from before IPv6 was switched off on the veths: take the
    // host end's address away now (the ip6tables chains drop their IPv6 traffic either way).
    const dev = hostInterfaceOf(netns);
    try {
      if (dev) writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
    } catch {
      /* no IPv6 on this host, or the veth is gone */
    }
  }

  async acquire(): Promise<NetworkSlot> {
    const slot = this.ready.shift() ?? (await this.create());
    this.refill();
    return slot;
  }

  /** Egress rules and bandwidth of the slot's instance (slot-policy.ts); null fields remove them. */
  async setPolicy(netns: string, state: SlotPolicyState): Promise<void> {
    const k = Number(netns.slice(this.prefix().length));
    if (!Number.isInteger(k)) throw new FaasError('runtime_error', `not a namespace of this engine: ${netns}`);
    await this.policies.apply(k, hostInterfaceName(this.opts.tag, k), this.hostIpOf(k), state);
  }

  /** The host end's address of slot k (the source of the engine's connections to the sandbox). */
  private hostIpOf(k: number): string {
    const [a, b] = this.base;
    return `${a}.${b}.${Math.floor((k * 4) / 256)}.${((k * 4) % 256) + 1}`;
  }

  async release(netns: string): Promise<void> {
    const twin = this.twinOf(netns);
    if (twin) return this.releaseTwin(twin);
    const k = Number(netns.slice(this.prefix().length));
    // The slot's rules go before it can be handed out again (a reused slot starts with none).
    await this.policies.clear(k, hostInterfaceName(this.opts.tag, k));
    await ip(this.opts.runner, ['netns', 'del', netns]).catch((e: FaasError) => {
      if (!/No such file|not exist|Invalid/i.test(String(e.details?.log))) throw e;
    });
    // The kernel tears a deleted namespace (and the veth pair in it) down later, once its last
    // process is gone; deleting the host end now takes the pair down at once, so no veth outlives
    // its instance (the kill test saw two after a restart).
    await ip(this.opts.runner, ['link', 'del', hostInterfaceName(this.opts.tag, k)]).catch(() => undefined);
    this.inUse.delete(k);
  }

  /**
   * A second namespace for slot `netns`'s address (a rollback standby, services/rollback-standby.ts):
   * the same instance address and gateway inside, so a sandbox made in it answers at the slot's
   * address; its host end has no address (the live slot keeps the host's route) and is down until swapIn.
   */
  async twin(netns: string): Promise<TwinSlot> {
    const k = this.slotNumber(netns);
    const seq = (this.twinSeq = (this.twinSeq + 1) % 36 ** 4).toString(36);
    const name = `${netns}r${seq}`;
    const hostIf = twinInterfaceName(this.opts.tag, seq);
    const { hostIp, guestIp } = this.addressesOf(k);
    try {
      await ip(this.opts.runner, ['netns', 'del', name]).catch(() => undefined);
      await ip(this.opts.runner, ['link', 'del', hostIf]).catch(() => undefined);
      await ipBatch(this.opts.runner, [], [
        `netns add ${name}`,
        ...(HOST_HAS_IPV6 ? [`netns exec ${name} sysctl -q -w net.ipv6.conf.default.disable_ipv6=1`] : []),
        `link add ${hostIf} type veth peer name eth0 netns ${name}`,
      ]);
      // The host end stays DOWN until swapIn: the twin's eth0 has no carrier, so nothing a sandbox
      // in it sends leaves it (a hot standby's restored processes run there for a few ms before
      // they are paused, rollback-hot.ts). With it up and no address, the host would still answer
      // ARP for its own addresses on it, and only the firewall's `fv<tag>+` rules would hold.
      await disableIpv6(hostIf);
      await ipBatch(this.opts.runner, ['-n', name], [`addr add ${guestIp}/30 dev eth0`, 'link set eth0 up', 'link set lo up', `route add default via ${hostIp}`]);
    } catch (err) {
      await this.releaseTwin({ netns: name, hostIf }).catch(() => undefined);
      throw err;
    }
    return { netns: name, path: `${NETNS_DIR}/${name}`, hostIf, of: netns };
  }

  /**
   * Makes `twin` the slot: the old host end goes (taking the old sandbox off the network), the slot's
   * namespace name is re-attached to the twin's namespace through `pid` (a process in it: its
   * sandbox), and the twin's host end takes the slot's interface name and host address. The rules
   * that name the interface apply again at once; its bandwidth limit is put back. One `ip -batch`.
   */
  async swapIn(twin: TwinSlot, pid: number): Promise<void> {
    const k = this.slotNumber(twin.of);
    const hostIf = hostInterfaceName(this.opts.tag, k);
    await ipBatch(this.opts.runner, [], [
      `link del ${hostIf}`,
      `netns del ${twin.of}`,
      `netns attach ${twin.of} ${pid}`,
      `netns del ${twin.netns}`,
      `link set ${twin.hostIf} down`,
      `link set ${twin.hostIf} name ${hostIf}`,
      `addr add ${this.addressesOf(k).hostIp}/30 dev ${hostIf}`,
      `link set ${hostIf} up`,
    ]);
    await this.policies.reshape(k, hostIf, this.addressesOf(k).hostIp);
  }

  /** Processes in a namespace of this engine (a standby's sandbox process, for swapIn). */
  async pidsIn(netns: string): Promise<number[]> {
    const r = await this.opts.runner.run({ file: 'ip', args: ['netns', 'pids', netns] });
    if (r.code !== 0) throw new FaasError('runtime_error', `ip netns pids ${netns}: ${r.stderr.trim()}`, { log: r.stderr });
    return r.stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  }

  private twinSeq = Math.floor(Math.random() * 36 ** 4);

  private twinOf(netns: string): { netns: string; hostIf: string } | null {
    const m = new RegExp(`^${this.prefix()}\\d+r([0-9a-z]{1,4})$`).exec(netns);
    return m ? { netns, hostIf: twinInterfaceName(this.opts.tag, m[1]) } : null;
  }

  private async releaseTwin(t: { netns: string; hostIf: string }): Promise<void> {
    await ip(this.opts.runner, ['netns', 'del', t.netns]).catch(() => undefined);
    await ip(this.opts.runner, ['link', 'del', t.hostIf]).catch(() => undefined);
  }

  private slotNumber(netns: string): number {
    const k = Number(netns.slice(this.prefix().length));
    if (!netns.startsWith(this.prefix()) || !Number.isInteger(k)) throw new FaasError('runtime_error', `not a namespace of this engine: ${netns}`);
    return k;
  }

  private addressesOf(k: number): { hostIp: string; guestIp: string } {
    const [a, b] = this.base;
    const third = Math.floor((k * 4) / 256);
    const fourth = (k * 4) % 256;
    return { hostIp: `${a}.${b}.${third}.${fourth + 1}`, guestIp: `${a}.${b}.${third}.${fourth + 2}` };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const spare = this.ready.splice(0);
    await Promise.all(spare.map((s) => this.release(s.netns)));
  }

  async uninstall(): Promise<void> {
    for (const ns of await this.existing()) await this.release(ns);
    await this.policies.clearAll((k) => hostInterfaceName(this.opts.tag, k));
    await this.firewall.remove();
  }

  private refill(): void {
    if (this.filling || this.closed) return;
    this.filling = (async () => {
      while (!this.closed && this.ready.length < this.opts.poolSize) {
        try {
          this.ready.push(await this.create());
        } catch {
          break; // an acquire() will create one itself and report the error
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }

  private nextSlot(): number {
    for (let k = 0; k < 16384; k++) {
      if (!this.inUse.has(k)) {
        this.inUse.add(k);
        return k;
      }
    }
    throw new FaasError('resource_limit', 'no free network slots: stop some instances', null, { status: 429, retryAfterSeconds: 1 });
  }

  private async create(): Promise<NetworkSlot> {
    const k = this.nextSlot();
    const [a, b] = this.base;
    const hostIp = this.hostIpOf(k);
    const guestIp = `${a}.${b}.${Math.floor((k * 4) / 256)}.${((k * 4) % 256) + 2}`;
    const netns = `${this.prefix()}${k}`;
    const hostIf = hostInterfaceName(this.opts.tag, k);
    try {
      // A namespace left over from a crash with this name is replaced. So is a host interface of
      // this slot's name: the kernel frees a deleted namespace (and the veth pair in it) only once
      // the last process in it is gone, so right after a sandbox's teardown the slot's old veth
      // can still exist ("RTNETLINK answers: File exists": 11 of 2859 soak iterations failed so).
      await ip(this.opts.runner, ['netns', 'del', netns]).catch(() => undefined);
      await ip(this.opts.runner, ['link', 'del', hostIf]).catch(() => undefined);
      await this.policies.clear(k, hostIf); // rules a crashed engine left for this slot
      // IPv6 is switched off on both ends before either comes up, so neither ever gets a
      // link-local address. In the namespace this must happen before runsc starts: gVisor copies
      // the interfaces' addresses into its own stack, and a copied fe80:: address would let the
      // sandbox speak IPv6 to the host end. `default` (not `all`) so eth0 inherits it while lo
      // keeps ::1 for programs inside that use localhost over IPv6. The host end is switched off
      // so the host has no address there and drops any IPv6 a sandbox's root configures itself.
      await ipBatch(this.opts.runner, [], [
        `netns add ${netns}`,
        ...(HOST_HAS_IPV6 ? [`netns exec ${netns} sysctl -q -w net.ipv6.conf.default.disable_ipv6=1`] : []),
        `link add ${hostIf} type veth peer name eth0 netns ${netns}`,
      ]);
      await disableIpv6(hostIf);
      await ipBatch(this.opts.runner, [], [
        `addr add ${hostIp}/30 dev ${hostIf}`,
        `link set ${hostIf} up`,
      ]);
      await ipBatch(this.opts.runner, ['-n', netns], [
        `addr add ${guestIp}/30 dev eth0`,
        'link set eth0 up',
        'link set lo up',
        `route add default via ${hostIp}`,
      ]);
    } catch (err) {
      await ip(this.opts.runner, ['netns', 'del', netns]).catch(() => undefined);
      this.inUse.delete(k);
      throw err;
    }
    return { netns, path: `${NETNS_DIR}/${netns}`, ip: guestIp, hostIp, hostIf };
  }
}

/** Host side of slot k's veth; at most 15 characters, as Linux requires. */
const hostInterfaceName = (tag: string, k: number) => `fv${tag}${k.toString(36)}`;

/** Host side of a twin namespace's veth (see twin()); at most 15 characters. It starts with `fv`
 *  like every slot's, so the firewall's rules for sandbox veths (firewall.ts) cover it from the
 *  moment it exists; the `-` keeps it apart from slot names (base 36). */
const twinInterfaceName = (tag: string, seq: string) => `fv${tag}-${seq}`;

/** A namespace made ahead with a live slot's addresses (NetnsManager.twin). */
export interface TwinSlot {
  netns: string;
  /** Its path, for a sandbox's OCI spec. */
  path: string;
  hostIf: string;
  /** The slot namespace it stands in for. */
  of: string;
}

/** The host interface of namespace `faas-<tag>-<k>`, or null for a name this engine did not make. */
export function hostInterfaceOf(netns: string): string | null {
  const m = /^faas-([a-z0-9]+)-(\d+)$/.exec(netns);
  return m ? hostInterfaceName(m[1], Number(m[2])) : null;
}

async function ip(runner: ProgramRunner, args: string[], input?: string): Promise<void> {
  let r;
  try {
    r = await runner.run({ file: 'ip', args, input });
  } catch (e) {
    throw new FaasError('runtime_error', `ip: ${(e as Error).message}`, { log: (e as Error).message });
  }
  if (r.code !== 0) throw new FaasError('runtime_error', `ip ${args.join(' ')}: ${r.stderr.trim()}`, { log: r.stderr });
}

/** False on a kernel booted with ipv6.disable=1: nothing to switch off, and no sysctl to write. */
const HOST_HAS_IPV6 = existsSync('/proc/sys/net/ipv6');

/** Switches IPv6 off on a host interface (a no-op on a host without IPv6). */
async function disableIpv6(dev: string): Promise<void> {
  const path = `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`;
  if (!HOST_HAS_IPV6) return;
  try {
    await writeFile(path, '1');
  } catch (e) {
    throw new FaasError('runtime_error', `could not switch IPv6 off on ${dev}: ${(e as Error).message}`, { log: String(e) });
  }
}

async function hostAddresses(runner: ProgramRunner): Promise<string[]> {
  try {
    const r = await runner.run({ file: 'ip', args: ['-j', '-4', 'addr', 'show'] });
    const links = JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? '')).filter(Boolean);
  } catch {
    return [];
  }
}

const ipBatch = (runner: ProgramRunner, pre: string[], lines: string[]) => ip(runner, [...pre, '-batch', '-'], lines.join('\n') + '\n');
