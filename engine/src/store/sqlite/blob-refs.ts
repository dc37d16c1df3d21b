// References to kept blobs (migration 19, services/blob-gc.ts): a blob is needed while a snapshot's
// manifest names it or a live instance's agent has sent it (and so will not send it again).
import { statement, type Db } from './db.js';

/** Instance states whose agent (and its hash cache) is alive or may come back as it is. */
const LIVE = "('pending','ready','paused','stopping')";

export class BlobRefRepo {
  constructor(private readonly db: Db) {}

  /**
   * Records, in one transaction, that snapshot `snapshotId` (and the live instance it was taken
   * of, if any) refers to `hashes`. Called before the blobs are written.
   */
  record(snapshotId: string, instanceId: string | null, hashes: Iterable<string>): void {
    const snap = statement(this.db, 'INSERT OR IGNORE INTO snapshot_blobs (snapshot_id, sha256) VALUES (?, ?)');
    const inst = statement(this.db, 'INSERT OR IGNORE INTO instance_blobs (instance_id, sha256) SELECT id, ? FROM instances WHERE id = ?');
    this.db.transaction(() => {
      for (const h of hashes) {
        snap.run(snapshotId, h);
        if (instanceId) inst.run(h, instanceId);
      }
      statement(this.db, 'UPDATE snapshots SET blobs_indexed = 1 WHERE id = ?').run(snapshotId);
    })();
  }

  /** A clone names the same blobs as its original. */
  copy(from: string, to: string): void {
    this.db.transaction(() => {
      statement(this.db, 'INSERT OR IGNORE INTO snapshot_blobs (snapshot_id, sha256) SELECT ?, sha256 FROM snapshot_blobs WHERE snapshot_id = ?').run(to, from);
      statement(this.db, 'UPDATE snapshots SET blobs_indexed = (SELECT blobs_indexed FROM snapshots WHERE id = ?) WHERE id = ?').run(from, to);
    })();
  }

  /** A live instance restored from a snapshot needs the blobs its agent already sent: the snapshot's. */
  inherit(instanceId: string, snapshotId: string): void {
    statement(this.db, 'INSERT OR IGNORE INTO instance_blobs (instance_id, sha256) SELECT i.id, b.sha256 FROM snapshot_blobs b JOIN instances i ON i.id = ? WHERE b.snapshot_id = ?').run(instanceId, snapshotId);
  }

  /** Whether anything still needs the blob. */
  referenced(sha256: string): boolean {
    return !!statement(
      this.db,
      `SELECT 1 FROM snapshot_blobs WHERE sha256 = ?
       UNION ALL SELECT 1 FROM instance_blobs b JOIN instances i ON i.id = b.instance_id WHERE b.sha256 = ? AND i.state IN ${LIVE} LIMIT 1`,
    ).get(sha256, sha256);
  }

  /** Drops the references of (up to `limit`) instances that are no longer live (their agents' memory is gone). */
  pruneInstances(limit: number): number {
    return statement(
      this.db,
      `DELETE FROM instance_blobs WHERE instance_id IN
         (SELECT DISTINCT b.instance_id FROM instance_blobs b JOIN instances i ON i.id = b.instance_id WHERE i.state NOT IN ${LIVE} LIMIT ?)`,
    ).run(limit).changes;
  }

  /** Ready snapshots whose manifests are not recorded yet (made before migration 19). */
  unindexed(): { id: string; imageDir: string; instanceId: string | null }[] {
    return (statement(this.db, "SELECT id, image_dir, instance_id FROM snapshots WHERE blobs_indexed = 0 AND state = 'ready'").all() as { id: string; image_dir: string; instance_id: string | null }[])
      .map((r) => ({ id: r.id, imageDir: r.image_dir, instanceId: r.instance_id }));
  }

  /** Upgrade: live instances rolled back before references were kept take their heads' ones. */
  inheritHeads(): void {
    statement(this.db, `INSERT OR IGNORE INTO instance_blobs (instance_id, sha256)
      SELECT i.id, b.sha256 FROM instances i JOIN snapshot_blobs b ON b.snapshot_id = i.head_id WHERE i.state IN ${LIVE}`).run();
  }

  /** A snapshot without a manifest names no blob. */
  markIndexed(snapshotId: string): void {
    statement(this.db, 'UPDATE snapshots SET blobs_indexed = 1 WHERE id = ?').run(snapshotId);
  }
}
