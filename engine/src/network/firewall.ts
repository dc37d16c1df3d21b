// Host firewall for one engine's sandboxes, IPv4 and IPv6. Lifecycle: ensure() at every engine
// start (idempotent: creates or refills this engine's chains atomically and adds each jump once),
// remove() from `faas engine stop --clean` and test teardown (idempotent; touches nothing of other
// engines). Every chain is named after the engine's net tag, so engines never edit one another's.
//
// What it enforces (rules match the host ends of the veths, `fv<tag>…`, not addresses: a sandbox's
// root can change its addresses, but not which veth its packets arrive on, and routing decides
// which veth a packet leaves by, whatever address it targets):
//   INPUT    nothing a sandbox starts reaches the host, on any host address; only answers to the
//            engine's own connections to agents come back (conntrack).
//   FORWARD  nothing from this engine's sandboxes to any faas sandbox: every engine's host veths
//            start with `fv` (netns.ts), so `-o fv+` covers other engines on the host whatever
//            their subnets, and this one's own other instances; nothing new forwarded INTO this
//            engine's sandboxes (other engines' sandboxes, other hosts routing to the subnet);
//            egress to the outside stays open, NATed (the default image relies on it).
//   OUTPUT   host users other than root cannot open connections to sandboxes (the agent has root
//            powers inside); root (the engine) can.
//   raw      a sandbox cannot send from an address that does not route back to its own veth.
//   IPv6     the veths have IPv6 switched off (netns.ts), so neither end has an address and the
//            host drops IPv6 arriving on them; as defence in depth ip6tables drops every IPv6
//            packet in or out of this engine's veths, for root too (the engine speaks IPv4 only).
// The chains only DROP/REJECT/RETURN, except the INPUT answers to the engine (ACCEPT, so a host
// whose INPUT policy is DROP still lets agents answer the engine).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { egressDispatchChain } from './slot-policy.js';

export interface FirewallOptions {
  /** The engine's net tag (1-6 of [a-z0-9]); its veths are `fv<tag>…`. */
  tag: string;
  /** The engine's IPv4 /16 (MASQUERADE source). */
  subnet: string;
}

/** Prefix of every faas engine's host-side veth names (see hostInterfaceName in netns.ts). */
export const VETH_PREFIX = 'fv';

type Family = 'ipv4' | 'ipv6';

interface ChainSet {
  table: 'filter' | 'nat' | 'raw';
  chain: string;
  /** Built-in chain that jumps to it (at position 1, so its drops come before others' accepts). */
  from: string;
  rules: string[][];
}

export class Firewall {
  constructor(private readonly opts: FirewallOptions) {}

  /** The chains of this engine, per family, with their rules. */
  chains(family: Family): ChainSet[] {
    const { tag, subnet } = this.opts;
    const mine = `${VETH_PREFIX}${tag}+`;
    const name = (what: string) => `FAAS-${tag}-${what}`;
    const answers = ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED'];
    if (family === 'ipv6') {
      return [
        { table: 'filter', chain: name('IN'), from: 'INPUT', rules: [['-i', mine, '-j', 'DROP']] },
        { table: 'filter', chain: name('FWD'), from: 'FORWARD', rules: [['-i', mine, '-j', 'DROP'], ['-o', mine, '-j', 'DROP']] },
        { table: 'filter', chain: name('OUT'), from: 'OUTPUT', rules: [['-o', mine, '-j', 'DROP']] },
      ];
    }
    return [
      {
        table: 'filter', chain: name('IN'), from: 'INPUT',
        rules: [['-i', mine, ...answers, '-j', 'ACCEPT'], ['-i', mine, '-j', 'DROP']],
      },
      {
        table: 'filter', chain: name('FWD'), from: 'FORWARD',
        rules: [
          ['-i', mine, '-o', `${VETH_PREFIX}+`, '-j', 'DROP'],
          ['-o', mine, ...answers, '-j', 'RETURN'],
          ['-o', mine, '-j', 'DROP'],
          // Per-instance egress policies (slot-policy.ts); only REJECT or RETURN in there.
          ['-i', mine, '-j', egressDispatchChain(tag)],
        ],
      },
      {
        // Only connections a host user opens are refused: kernel-made packets (answers, TCP
        // time-wait ACKs) have no owner and would match `! --uid-owner 0`, so answers go first.
        table: 'filter', chain: name('OUT'), from: 'OUTPUT',
        rules: [['-o', mine, ...answers, '-j', 'RETURN'], ['-o', mine, '-m', 'owner', '!', '--uid-owner', '0', '-j', 'REJECT']],
      },
      { table: 'nat', chain: name('NAT'), from: 'POSTROUTING', rules: [['-s', subnet, '!', '-d', subnet, '-j', 'MASQUERADE']] },
      // Strict reverse-path check: a sandbox's root may send from another sandbox's address; NATed
      // like its own, the answers would then go into the other sandbox as established traffic.
      { table: 'raw', chain: name('PRE'), from: 'PREROUTING', rules: [['-i', mine, '-m', 'rpfilter', '--invert', '-j', 'DROP']] },
    ];
  }

  async ensure(): Promise<void> {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1').catch(() => undefined);
    // The dispatch chain of per-instance egress rules is created, never refilled here: it holds
    // the live instances' jumps, which must survive a restart (the FWD rule below refers to it).
    await run('iptables', ['-w', '-N', egressDispatchChain(this.opts.tag)]);
    for (const family of families()) {
      const sets = this.chains(family);
      // Declaring a chain in a --noflush restore creates it or empties it, and the new rules
      // land in the same transaction: a restarting engine never leaves its sandboxes unfiltered.
      const script = (['filter', 'nat', 'raw'] as const)
        .map((table) => {
          const mine = sets.filter((s) => s.table === table);
          if (!mine.length) return '';
          return [`*${table}`, ...mine.map((s) => `:${s.chain} - [0:0]`), ...mine.flatMap((s) => s.rules.map((r) => `-A ${s.chain} ${r.join(' ')}`)), 'COMMIT', ''].join('\n');
        })
        .join('');
      const restored = await run(`${tool(family)}-restore`, ['-w', '--noflush'], script);
      if (restored.code !== 0) throw new Error(`${tool(family)}-restore: could not add the engine's chains: ${restored.stderr.trim()}`);
      for (const s of sets) {
        const jump = ['-t', s.table, s.from, '-j', s.chain];
        if ((await run(tool(family), ['-w', '-t', s.table, '-C', s.from, '-j', s.chain])).code === 0) continue;
        const added = await run(tool(family), ['-w', '-t', s.table, '-I', s.from, '1', '-j', s.chain]);
        if (added.code !== 0) throw new Error(`${tool(family)}: could not add ${jump.join(' ')}: ${added.stderr.trim()}`);
      }
    }
  }

  /** Removes this engine's jumps and chains (and the per-subnet rules of engines before them). */
  async remove(): Promise<void> {
    for (const family of families()) {
      for (const s of this.chains(family)) {
        // Loop: a jump added twice by hand (or by two racing starts) must not survive.
        while ((await run(tool(family), ['-w', '-t', s.table, '-D', s.from, '-j', s.chain])).code === 0);
        await run(tool(family), ['-w', '-t', s.table, '-F', s.chain]);
        await run(tool(family), ['-w', '-t', s.table, '-X', s.chain]);
      }
    }
    await removeEgressChains(this.opts.tag);
    for (const [table, chain, rule] of legacyRules(this.opts.subnet)) {
      while ((await run('iptables', ['-w', '-t', table, '-D', chain, ...rule])).code === 0);
    }
  }
}

/** The dispatch chain and every per-slot egress chain of the tag (after FWD no longer jumps there). */
async function removeEgressChains(tag: string): Promise<void> {
  const dispatch = egressDispatchChain(tag);
  await run('iptables', ['-w', '-F', dispatch]);
  await run('iptables', ['-w', '-X', dispatch]);
  const listed = await runOut('iptables', ['-w', '-S']);
  for (const m of listed.matchAll(new RegExp(`^-N (FAAS-${tag}-E[0-9a-z]+)$`, 'gm'))) {
    await run('iptables', ['-w', '-F', m[1]]);
    await run('iptables', ['-w', '-X', m[1]]);
  }
}

/** Rules that engines before per-engine chains put straight into the built-in chains. */
function legacyRules(s: string): [string, string, string[]][] {
  return [
    ['filter', 'INPUT', ['-s', s, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']],
    ['filter', 'INPUT', ['-s', s, '-j', 'DROP']],
    ['filter', 'FORWARD', ['-s', s, '-d', s, '-j', 'DROP']],
    ['nat', 'POSTROUTING', ['-s', s, '!', '-d', s, '-j', 'MASQUERADE']],
  ];
}

/** IPv6 rules only where the host has IPv6 at all (booted with ipv6.disable=1 there is none). */
function families(): Family[] {
  return existsSync('/proc/net/if_inet6') ? ['ipv4', 'ipv6'] : ['ipv4'];
}

const tool = (family: Family) => (family === 'ipv4' ? 'iptables' : 'ip6tables');

function runOut(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(''));
    child.on('close', () => resolve(out));
  });
}

function run(file: string, args: string[], input?: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ code: null, stderr: e.message }));
    child.on('close', (code) => resolve({ code, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}
