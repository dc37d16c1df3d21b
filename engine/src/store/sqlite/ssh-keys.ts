// SSH public keys registered for the gateway, each owned by an API key (services/ssh-keys.ts).
import { statement, type Db } from './db.js';
import { pageQuery, type Where } from './paging.js';
import type { Page } from '../../core/types.js';

export interface SshKeyRecord {
  id: string;
  name: string;
  algorithm: string;
  fingerprint: string;
  publicKey: string;
  /** The API key that registered it. */
  keyId: string;
  createdAt: string;
}

type Row = { id: string; owner: string; name: string; algorithm: string; public_key: string; fingerprint: string; created_at: string };
const toRecord = (r: Row): SshKeyRecord => ({
  id: r.id, name: r.name, algorithm: r.algorithm, fingerprint: r.fingerprint, publicKey: r.public_key, keyId: r.owner, createdAt: r.created_at,
});

export class SshKeyRepo {
  constructor(private readonly db: Db) {}

  /** False when this owner already has the fingerprint. */
  insert(k: SshKeyRecord): boolean {
    const r = statement(this.db, 'INSERT OR IGNORE INTO ssh_keys (id,owner,name,algorithm,public_key,fingerprint,created_at) VALUES (?,?,?,?,?,?,?)')
      .run(k.id, k.keyId, k.name, k.algorithm, k.publicKey, k.fingerprint, k.createdAt);
    return r.changes === 1;
  }
  get(id: string): SshKeyRecord | undefined {
    const r = statement(this.db, 'SELECT * FROM ssh_keys WHERE id = ?').get(id) as Row | undefined;
    return r && toRecord(r);
  }
  byFingerprint(fingerprint: string): SshKeyRecord[] {
    return (statement(this.db, 'SELECT * FROM ssh_keys WHERE fingerprint = ?').all(fingerprint) as Row[]).map(toRecord);
  }
  list(q: { owner?: string; limit: number; cursor?: string }): Page<SshKeyRecord> {
    const where: Where = { clauses: [], params: [] };
    if (q.owner !== undefined) {
      where.clauses.push('owner = ?');
      where.params.push(q.owner);
    }
    return pageQuery(this.db, 'ssh_keys', where, q.limit, q.cursor, toRecord);
  }
  delete(id: string): void {
    statement(this.db, 'DELETE FROM ssh_keys WHERE id = ?').run(id);
  }
}
