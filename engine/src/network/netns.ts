// One network namespace + veth pair per sandbox. Slot k of the engine's subnet is the /30
// 10.x.(4k)/30: host side .1, instance .2. gVisor copies the namespace's interfaces into its own
// stack and strips their addresses, so a namespace is used once and deleted with its instance.
// Configured namespaces are kept ready in a small pool so a start or branch does not wait for them.
import { readdirSync } from 'node:fs';
import { FaasError } from '../core/errors.js';
import type { NetworkManager, NetworkSlot, ProgramRunner } from '../core/interfaces.js';
import { Firewall } from './firewall.js';

export interface NetnsOptions {
  /** Short tag that makes this engine's namespace and interface names unique on the host. */
  tag: string;
  /** An IPv4 /16 such as 10.200.0.0/16. */
  subnet: string;
  poolSize: number;
  /** Runs `ip` (from a small helper process: see runtime/spawner.ts). */
  runner: ProgramRunner;
}

const NETNS_DIR = '/var/run/netns';

export class NetnsManager implements NetworkManager {
  private readonly base: [number, number];
  private readonly inUse = new Set<number>();
  private readonly ready: NetworkSlot[] = [];
  private filling: Promise<void> | null = null;
  private closed = false;
  private readonly firewall: Firewall;

  constructor(private readonly opts: NetnsOptions) {
    const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(opts.subnet);
    if (!m) throw new Error(`FAAS_SUBNET must be an a.b.0.0/16 range, got ${opts.subnet}`);
    this.base = [Number(m[1]), Number(m[2])];
    if (!/^[a-z0-9]{1,6}$/.test(opts.tag)) throw new Error(`network tag must be 1-6 of [a-z0-9]: ${opts.tag}`);
    this.firewall = new Firewall(opts.subnet);
  }

  async init(): Promise<void> {
    await this.firewall.ensure();
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
  }

  async acquire(): Promise<NetworkSlot> {
    const slot = this.ready.shift() ?? (await this.create());
    this.refill();
    return slot;
  }

  async release(netns: string): Promise<void> {
    const k = Number(netns.slice(this.prefix().length));
    await ip(this.opts.runner, ['netns', 'del', netns]).catch((e: FaasError) => {
      if (!/No such file|not exist|Invalid/i.test(String(e.details?.log))) throw e;
    });
    this.inUse.delete(k);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const spare = this.ready.splice(0);
    await Promise.all(spare.map((s) => this.release(s.netns)));
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
    const third = Math.floor((k * 4) / 256);
    const fourth = (k * 4) % 256;
    const hostIp = `${a}.${b}.${third}.${fourth + 1}`;
    const guestIp = `${a}.${b}.${third}.${fourth + 2}`;
    const netns = `${this.prefix()}${k}`;
    const hostIf = hostInterfaceName(this.opts.tag, k);
    try {
      // A namespace left over from a crash with this name is replaced. So is a host interface of
      // this slot's name: the kernel frees a deleted namespace (and the veth pair in it) only once
      // the last process in it is gone, so right after a sandbox's teardown the slot's old veth
      // can still exist ("RTNETLINK answers: File exists": 11 of 2859 soak iterations failed so).
      await ip(this.opts.runner, ['netns', 'del', netns]).catch(() => undefined);
      await ip(this.opts.runner, ['link', 'del', hostIf]).catch(() => undefined);
      await ipBatch(this.opts.runner, [], [
        `netns add ${netns}`,
        `link add ${hostIf} type veth peer name eth0 netns ${netns}`,
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
