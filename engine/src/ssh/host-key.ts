// The gateway's host key: an ed25519 key made on the first start into the state directory
// (`ssh_host_ed25519_key`, 0600) and reused after, so clients that pinned it (known_hosts, the
// CLI's entry) keep trusting the same engine across restarts.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintOf } from '../services/ssh-keys.js';

export interface HostKey {
  /** OpenSSH private key text, for ssh2's Server. */
  private: string;
  algorithm: string;
  /** `<algorithm> <base64>`, as known_hosts wants it. */
  publicKey: string;
  fingerprint: string;
}

export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

export function loadOrCreateHostKey(stateDir: string): HostKey {
  const path = join(stateDir, HOST_KEY_FILE);
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    /* first start */
  }
  if (text === null || parsed(text) === null) {
    text = generate();
    writeFileSync(path, text, { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  const key = parsed(text);
  if (!key) throw new Error(`${path}: not a usable SSH host key`);
  const blob = key.getPublicSSH();
  return { private: text, algorithm: key.type, publicKey: `${key.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

function parsed(text: string): ssh2.ParsedKey | null {
  const k = ssh2.utils.parseKey(text);
  return k instanceof Error || Array.isArray(k) || !k.isPrivateKey() ? null : k;
}

/**
 * A new ed25519 key that ssh2 can read back. ssh2's generator drops a leading zero byte of the
 * public key about once in 250 keys and writes a key its own parser calls malformed (the engine's
 * first start then failed); such a key is made again, never written.
 */
export function generate(): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    const text = ssh2.utils.generateKeyPairSync('ed25519').private;
    if (parsed(text) !== null) return text;
  }
  throw new Error('could not generate a usable ed25519 SSH host key');
}
