// Each snapshot's own cache policy (migration 15): read by SnapshotFiles when it stores, evicts or
// assembles the snapshot's image. Kept apart from repos.ts: only the image cache uses it.
import type { SnapshotCachePolicy } from '../images/image-cache.js';
import { statement, type Db } from './db.js';

export class CachePolicyRepo {
  private readonly memo = new Map<string, SnapshotCachePolicy | undefined>();

  constructor(private readonly db: Db) {}

  set(id: string, policy: SnapshotCachePolicy): void {
    statement(this.db, 'INSERT OR REPLACE INTO snapshot_cache_policy (snapshot_id, policy) VALUES (?, ?)').run(id, JSON.stringify(policy));
    this.memo.set(id, policy);
  }

  get(id: string): SnapshotCachePolicy | undefined {
    if (this.memo.has(id)) return this.memo.get(id);
    const r = statement(this.db, 'SELECT policy FROM snapshot_cache_policy WHERE snapshot_id = ?').get(id) as { policy: string } | undefined;
    const p = r ? (JSON.parse(r.policy) as SnapshotCachePolicy) : undefined;
    this.memo.set(id, p);
    return p;
  }

  forget(id: string): void {
    this.memo.delete(id);
  }
}
