// Row <-> record mapping for branches (migration 11). No business rules here: services/branches.ts decides.
import { statement, type Db } from './db.js';
import { metadataWhere, pageQuery, type Where } from './paging.js';
import type { Branch, Metadata, Page } from '../../core/types.js';

type Row = Record<string, unknown> & { id: string; created_at: string };

function toBranch(r: Row): Branch {
  return {
    id: r.id,
    name: String(r.name),
    parentId: (r.parent_id as string) ?? null,
    divergencePoint: String(r.divergence_point),
    head: String(r.head),
    instanceId: (r.instance_id as string) ?? null,
    metadata: JSON.parse(String(r.metadata)) as Metadata,
    createdAt: r.created_at,
    owner: (r.owner as string) ?? null,
  };
}

export class BranchRepo {
  constructor(private readonly db: Db) {}

  /** Inserts all or none (a live branch's children get their records together). */
  insert(branches: Branch[]): void {
    const ins = statement(
      this.db,
      'INSERT INTO branches (id,name,parent_id,divergence_point,head,instance_id,metadata,owner,created_at) VALUES (?,?,?,?,?,?,?,?,?)',
    );
    this.db.transaction(() => {
      for (const b of branches) {
        ins.run(b.id, b.name, b.parentId, b.divergencePoint, b.head, b.instanceId, JSON.stringify(b.metadata), b.owner, b.createdAt);
        this.log(b.id, b.head);
      }
    })();
  }
  get(id: string): Branch | undefined {
    const r = statement(this.db, 'SELECT * FROM branches WHERE id = ?').get(id) as Row | undefined;
    return r && toBranch(r);
  }
  byName(name: string, owner: string | null): Branch | undefined {
    const r = statement(this.db, "SELECT * FROM branches WHERE name = ? AND IFNULL(owner, '') = IFNULL(?, '')").get(name, owner) as Row | undefined;
    return r && toBranch(r);
  }
  /** The owner's oldest branch whose head is `snapshotId` (a new branch's parent). */
  oldestAtHead(snapshotId: string, owner: string | null): Branch | undefined {
    const r = statement(this.db, "SELECT * FROM branches WHERE head = ? AND IFNULL(owner, '') = IFNULL(?, '') ORDER BY created_at, id LIMIT 1").get(snapshotId, owner) as Row | undefined;
    return r && toBranch(r);
  }
  /** Branches that have `instanceId` checked out. */
  ofInstance(instanceId: string): Branch[] {
    return (statement(this.db, 'SELECT * FROM branches WHERE instance_id = ?').all(instanceId) as Row[]).map(toBranch);
  }
  /** Branches whose head or divergence point is `snapshotId`. */
  onSnapshot(snapshotId: string): Branch[] {
    return (statement(this.db, 'SELECT * FROM branches WHERE head = ? OR divergence_point = ?').all(snapshotId, snapshotId) as Row[]).map(toBranch);
  }
  /** The newest head in the branch's reflog, other than `except`, whose snapshot is still there. */
  previousHead(id: string, except: string): string | undefined {
    const r = statement(
      this.db,
      "SELECT l.snapshot_id AS id FROM branch_log l JOIN snapshots s ON s.id = l.snapshot_id AND s.state = 'ready' WHERE l.branch_id = ? AND l.snapshot_id != ? ORDER BY l.seq DESC LIMIT 1",
    ).get(id, except) as { id: string } | undefined;
    return r?.id;
  }
  children(id: string): string[] {
    return (statement(this.db, 'SELECT id FROM branches WHERE parent_id = ? ORDER BY created_at, id').all(id) as Row[]).map((r) => r.id);
  }
  list(q: { limit: number; cursor?: string; metadata?: Metadata; parentId?: string; name?: string; owner?: string }): Page<Branch> {
    const where: Where = { clauses: [], params: [] };
    if (q.owner) where.clauses.push('owner = ?'), where.params.push(q.owner);
    if (q.parentId) where.clauses.push('parent_id = ?'), where.params.push(q.parentId);
    if (q.name) where.clauses.push('name = ?'), where.params.push(q.name);
    metadataWhere(where, q.metadata);
    return pageQuery(this.db, 'branches', where, q.limit, q.cursor, toBranch);
  }
  update(id: string, fields: Partial<Pick<Branch, 'head' | 'instanceId' | 'divergencePoint'>>): void {
    const cols = { head: 'head', instanceId: 'instance_id', divergencePoint: 'divergence_point' } as const;
    const sets = Object.keys(fields).map((k) => `${cols[k as keyof typeof cols]} = ?`);
    if (!sets.length) return;
    this.db.transaction(() => {
      statement(this.db, `UPDATE branches SET ${sets.join(', ')} WHERE id = ?`).run(...Object.values(fields), id);
      if (fields.head) this.log(id, fields.head);
    })();
  }
  private log(id: string, head: string): void {
    statement(this.db, 'INSERT INTO branch_log (branch_id, snapshot_id, created_at) VALUES (?,?,?)').run(id, head, new Date().toISOString());
  }
  /** Deletes `id`, giving its children `newParent`, in one transaction. */
  delete(id: string, newParent: string | null): void {
    this.db.transaction(() => {
      statement(this.db, 'UPDATE branches SET parent_id = ? WHERE parent_id = ?').run(newParent, id);
      statement(this.db, 'DELETE FROM branches WHERE id = ?').run(id);
      statement(this.db, 'DELETE FROM branch_log WHERE branch_id = ?').run(id);
    })();
  }
}
