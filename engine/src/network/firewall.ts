// Host firewall for an engine's instance subnet: instances reach the outside through NAT, but not
// one another and not the host (so not the engine's API); the engine's own connections to agents
// are answered through conntrack. Rules are added idempotently and left in place on exit.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

export class Firewall {
  constructor(private readonly subnet: string) {}

  async ensure(): Promise<void> {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1').catch(() => undefined);
    const s = this.subnet;
    await this.rule('filter', 'INPUT', ['-s', s, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'], 1);
    await this.rule('filter', 'INPUT', ['-s', s, '-j', 'DROP'], 2);
    await this.rule('filter', 'FORWARD', ['-s', s, '-d', s, '-j', 'DROP'], 1);
    await this.rule('nat', 'POSTROUTING', ['-s', s, '!', '-d', s, '-j', 'MASQUERADE'], 1);
  }

  private async rule(table: string, chain: string, spec: string[], position: number): Promise<void> {
    const exists = await iptables(['-w', '-t', table, '-C', chain, ...spec]);
    if (!exists) {
      const ok = await iptables(['-w', '-t', table, '-I', chain, String(position), ...spec]);
      if (!ok) throw new Error(`iptables: could not add ${table}/${chain} ${spec.join(' ')}`);
    }
  }
}

function iptables(args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('iptables', args, { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}
