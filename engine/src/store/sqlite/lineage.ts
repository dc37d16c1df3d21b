// The history records behind timelines and rollback (services/state.ts): which checkpoint each
// snapshot's state descends from (`snapshots.previous_id`) and which checkpoint each instance's
// current state descends from (`instances.head_id`). Kept apart from repos.ts: only history uses it.
import { statement, type Db } from './db.js';

export class LineageRepo {
  constructor(private readonly db: Db) {}

  /** The snapshot's predecessor; rows from before history was kept fall back to their parent. */
  previousOf(id: string): string | null {
    const r = statement(this.db, 'SELECT previous_id, parent_id FROM snapshots WHERE id = ?').get(id) as { previous_id: string | null; parent_id: string | null } | undefined;
    return r ? (r.previous_id ?? r.parent_id) : null;
  }

  setPrevious(id: string, previous: string | null): void {
    statement(this.db, 'UPDATE snapshots SET previous_id = ? WHERE id = ?').run(previous, id);
  }

  /** The checkpoint the instance's state descends from: its head, else the snapshot it was started from. */
  headOf(instanceId: string): string | null {
    const r = statement(this.db, 'SELECT head_id, snapshot_id FROM instances WHERE id = ?').get(instanceId) as { head_id: string | null; snapshot_id: string } | undefined;
    return r ? (r.head_id ?? r.snapshot_id) : null;
  }

  /** null: back to the snapshot the instance was started from. */
  setHead(instanceId: string, head: string | null): void {
    statement(this.db, 'UPDATE instances SET head_id = ? WHERE id = ?').run(head, instanceId);
  }

  /**
   * Before a snapshot row goes: what descended from it now descends from its predecessor, so a
   * deleted checkpoint drops out of every timeline instead of cutting it short.
   */
  spliceOut(id: string): void {
    const previous = this.previousOf(id);
    statement(this.db, 'UPDATE snapshots SET previous_id = ? WHERE previous_id = ? OR (previous_id IS NULL AND parent_id = ?)').run(previous, id, id);
    statement(this.db, 'UPDATE instances SET head_id = ? WHERE head_id = ? OR (head_id IS NULL AND snapshot_id = ?)').run(previous, id, id);
  }
}
