// SSH public keys that may log in through the gateway (engine/src/ssh/). Each is owned by the API
// key that registered it and logs in wherever that API key may go (its own instances; every
// instance for an admin key). Only the public half is ever stored or shown.
import { createHash, createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';
import { conflict, FaasError, invalid } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { ownerFilter, type Principal } from '../core/principal.js';
import { nowIso, type Page } from '../core/types.js';
import type { KeyRepo } from '../store/sqlite/keys.js';
import type { SshKeyRecord, SshKeyRepo } from '../store/sqlite/ssh-keys.js';

const ALGORITHMS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);
const MIN_RSA_BITS = 2048;

/** OpenSSH's fingerprint of a key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export const fingerprintOf = (blob: Buffer): string => `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

export interface ParsedPublicKey {
  algorithm: string;
  blob: Buffer;
  comment: string;
  fingerprint: string;
}

/** Parses one `authorized_keys`-style line; throws 400 with what to do on anything else. */
export function parsePublicKey(text: string): ParsedPublicKey {
  const line = text.trim(); // a .pub file ends with a newline
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,3})(?:\s+(.*?))?\s*$/.exec(line);
  const how = 'paste the contents of a .pub file, e.g. `cat ~/.ssh/id_ed25519.pub` (make one with `ssh-keygen -t ed25519`)';
  if (!m || line.includes('\n')) throw invalid(`publicKey must be one OpenSSH public key line: ${how}`, { field: 'publicKey' });
  const [, algorithm, b64, comment = ''] = m;
  if (!ALGORITHMS.has(algorithm)) {
    throw invalid(`unsupported key type ${JSON.stringify(algorithm.slice(0, 40))}: use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa; ${how}`, { field: 'publicKey' });
  }
  const parsed = ssh2.utils.parseKey(`${algorithm} ${b64}`);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== algorithm || parsed.isPrivateKey()) {
    throw invalid(`publicKey is not a valid ${algorithm} public key: ${how}`, { field: 'publicKey' });
  }
  if (algorithm === 'ssh-rsa') {
    const bits = createPublicKey(parsed.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw invalid(`RSA keys need at least ${MIN_RSA_BITS} bits (this one has ${bits}); an ed25519 key is better`, { field: 'publicKey', bits });
  }
  const blob = parsed.getPublicSSH();
  return { algorithm, blob, comment, fingerprint: fingerprintOf(blob) };
}

export class SshKeyService {
  constructor(private readonly repo: SshKeyRepo, private readonly apiKeys: KeyRepo) {}

  add(by: Principal, input: { name?: string; publicKey: string }): SshKeyRecord {
    const k = parsePublicKey(input.publicKey);
    const rec: SshKeyRecord = {
      id: newId('sshkey'),
      name: input.name ?? (k.comment.slice(0, 128) || k.fingerprint),
      algorithm: k.algorithm,
      fingerprint: k.fingerprint,
      publicKey: `${k.algorithm} ${k.blob.toString('base64')}`,
      keyId: by.keyId,
      createdAt: nowIso(),
    };
    if (!this.repo.insert(rec)) throw conflict(`this public key (${k.fingerprint}) is already registered for this API key`, { fingerprint: k.fingerprint });
    return rec;
  }

  list(by: Principal, q: { limit: number; cursor?: string }): Page<SshKeyRecord> {
    return this.repo.list({ ...q, owner: ownerFilter(by) });
  }

  remove(by: Principal, id: string): void {
    const rec = this.repo.get(id);
    if (!rec || !(by.admin || rec.keyId === by.keyId)) throw new FaasError('not_found', `SSH key ${id} does not exist`, { id });
    this.repo.delete(id);
  }

  /**
   * The principals a public key logs in as: one per API key that registered it and is not
   * revoked. The gateway lets the connection in if any of them may use the instance.
   */
  principalsFor(blob: Buffer): Principal[] {
    const out: Principal[] = [];
    for (const rec of this.repo.byFingerprint(fingerprintOf(blob))) {
      const key = this.apiKeys.get(rec.keyId);
      if (key && !key.revokedAt) out.push({ keyId: key.id, admin: key.admin, via: 'key' });
    }
    return out;
  }
}
