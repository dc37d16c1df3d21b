// API key records. Only the SHA-256 of each secret is stored (see services/keys.ts for why a fast
// hash is enough); a revoked key keeps its row so its records keep an owner and a revoked secret
// is told apart from an unknown one.
import { statement, type Db } from './db.js';
import { pageQuery, type Where } from './paging.js';
import type { Page } from '../../core/types.js';

export interface KeyRecord {
  id: string;
  name: string;
  admin: boolean;
  createdAt: string;
  revokedAt: string | null;
}

type Row = { id: string; name: string; admin: number; created_at: string; revoked_at: string | null };
const toKey = (r: Row): KeyRecord => ({ id: r.id, name: r.name, admin: Boolean(r.admin), createdAt: r.created_at, revokedAt: r.revoked_at ?? null });

export class KeyRepo {
  constructor(private readonly db: Db) {}

  insert(k: KeyRecord, secretHash: string): void {
    statement(this.db, 'INSERT INTO api_keys (id,name,secret_hash,admin,created_at,revoked_at) VALUES (?,?,?,?,?,?)')
      .run(k.id, k.name, secretHash, k.admin ? 1 : 0, k.createdAt, k.revokedAt);
  }
  get(id: string): KeyRecord | undefined {
    const r = statement(this.db, 'SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return r && toKey(r);
  }
  byHash(secretHash: string): (KeyRecord & { secretHash: string }) | undefined {
    const r = statement(this.db, 'SELECT * FROM api_keys WHERE secret_hash = ?').get(secretHash) as (Row & { secret_hash: string }) | undefined;
    return r && { ...toKey(r), secretHash: r.secret_hash };
  }
  count(): number {
    return (statement(this.db, 'SELECT COUNT(*) AS n FROM api_keys').get() as { n: number }).n;
  }
  activeAdmins(): number {
    return (statement(this.db, 'SELECT COUNT(*) AS n FROM api_keys WHERE admin = 1 AND revoked_at IS NULL').get() as { n: number }).n;
  }
  list(q: { limit: number; cursor?: string }): Page<KeyRecord> {
    const where: Where = { clauses: ['revoked_at IS NULL'], params: [] };
    return pageQuery(this.db, 'api_keys', where, q.limit, q.cursor, toKey);
  }
  revoke(id: string, at: string): void {
    statement(this.db, 'UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
  }
  /** Gives records made before keys existed to the first key (an upgraded install's only key). */
  adoptOrphans(keyId: string): void {
    this.db.transaction(() => {
      for (const t of ['snapshots', 'instances', 'events']) this.db.prepare(`UPDATE ${t} SET owner = ? WHERE owner IS NULL`).run(keyId);
      // Images: imported ones become the key's; the default image stays shared.
      this.db.prepare("UPDATE images SET owner = ? WHERE owner IS NULL AND source <> 'debootstrap'").run(keyId);
    })();
  }
}
