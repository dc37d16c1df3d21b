// The step cache's records (docs/step-cache.md): which ready snapshot answers a create or a step
// (looked up by content digest, always within one API key), and the recorded result of the exec
// step that made a snapshot, replayed on a hit. Results go with their snapshot (ON DELETE CASCADE).
import type { Db } from './db.js';
import { statement } from './db.js';

export interface StepResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  duration: number;
  truncated: boolean;
}

export class StepCacheRepo {
  constructor(private readonly db: Db) {}

  /**
   * A ready root of this owner with this content digest and exactly this metadata that a create
   * may return (unnamed, never expiring). Metadata is not content (equal roots have equal digests
   * whatever their metadata), but a create never answers with metadata other than it asked for.
   */
  root(digest: string, owner: string | null, metadata: Record<string, string>): string | undefined {
    const rows = statement(
      this.db,
      "SELECT id, metadata FROM snapshots WHERE owner IS ? AND parent_id IS NULL AND digest = ? AND state = 'ready' AND instance_id IS NULL AND name IS NULL AND expires_at IS NULL ORDER BY created_at DESC",
    ).all(owner, digest) as { id: string; metadata: string }[];
    const want = sameKeys(metadata);
    return rows.find((r) => sameKeys(JSON.parse(r.metadata) as Record<string, string>) === want)?.id;
  }

  /** A ready child of `parentId`, of this owner, made by the step with this digest. */
  child(parentId: string, digest: string, owner: string | null): string | undefined {
    const r = statement(
      this.db,
      "SELECT id FROM snapshots WHERE owner IS ? AND parent_id = ? AND digest = ? AND state = 'ready' ORDER BY created_at DESC LIMIT 1",
    ).get(owner, parentId, digest) as { id: string } | undefined;
    return r?.id;
  }

  record(snapshotId: string, r: StepResult): void {
    statement(this.db, 'INSERT OR REPLACE INTO step_results (snapshot_id, exit_code, stdout, stderr, duration, truncated) VALUES (?,?,?,?,?,?)')
      .run(snapshotId, r.exitCode, r.stdout, r.stderr, Math.max(0, Math.round(r.duration)), r.truncated ? 1 : 0);
  }

  result(snapshotId: string): StepResult | undefined {
    const r = statement(this.db, 'SELECT * FROM step_results WHERE snapshot_id = ?').get(snapshotId) as
      | { exit_code: number; stdout: string; stderr: string; duration: number; truncated: number }
      | undefined;
    return r && { exitCode: r.exit_code, stdout: r.stdout, stderr: r.stderr, duration: r.duration, truncated: r.truncated === 1 };
  }
}

const sameKeys = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
