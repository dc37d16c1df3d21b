// The client side the SSH gateway tests set up: an ed25519 key pair, and a known_hosts file that
// trusts the engine's host key at 127.0.0.1 and ::1 (so ssh runs with StrictHostKeyChecking=yes).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestEngine } from './harness.js';

/** A new key pair `dir/name` (+ `.pub`), no passphrase; the private key's path. */
export function keygen(dir: string, name: string): string {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  return path;
}

/** Writes `dir/known_hosts` for the engine's gateway; its port and `GET /v1/ssh/host` answer. */
export async function trustGateway(t: TestEngine, dir: string): Promise<{ port: number; host: any }> {
  const host = (await t.api('GET', '/v1/ssh/host')).body;
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${host.port} ${host.hostKey.publicKey}\n[::1]:${host.port} ${host.hostKey.publicKey}\n`);
  return { port: host.port, host };
}
