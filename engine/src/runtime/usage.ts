// Usage figures the cgroup does not have: network bytes from the host side of the instance's veth,
// and the writable layer's fill level as the sandbox's own kernel sees it.
import { readFileSync } from 'node:fs';
import { hostInterfaceOf } from '../network/netns.js';
import type { AgentClient } from './agent-client.js';

/** Bytes received and sent by the instance (the host side's tx and rx, swapped). */
export function networkBytes(netns: string | null): { rxBytes: number; txBytes: number } {
  const dev = netns && hostInterfaceOf(netns);
  if (!dev) return { rxBytes: 0, txBytes: 0 };
  const read = (f: string) => {
    try {
      return Number(readFileSync(`/sys/class/net/${dev}/statistics/${f}`, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  return { rxBytes: read('tx_bytes'), txBytes: read('rx_bytes') };
}

/**
 * Bytes used in the writable layer: statfs of `/` inside the sandbox, whose root is the overlay
 * with a size-limited upper tmpfs (so "used" is exactly what the instance wrote). Asked of the
 * agent with coreutils `stat -f`; 0 when the image has no `stat`.
 */
export async function diskUsedBytes(agents: AgentClient, ip: string | null): Promise<number> {
  if (!ip) return 0;
  try {
    const r = await agents.exec(ip, { argv: ['stat', '-f', '-c', '%b %f %S', '/'], timeout: 5_000 }, 4096);
    const [blocks, free, size] = r.stdout.trim().split(/\s+/).map(Number);
    return r.exitCode === 0 && size ? Math.max(0, (blocks - free) * size) : 0;
  } catch {
    return 0;
  }
}
