// Row <-> record mapping for the domain tables. No business rules here: services decide, repos store.
import { statement, type Db } from './db.js';
import { metadataWhere, pageQuery, type Where } from './paging.js';
import { defaultNetworkConfig } from '../../core/network-config.js';
import type { Image, Instance, InstanceState, Metadata, NetworkConfig, Page, Resources, Snapshot } from '../../core/types.js';

type Row = Record<string, unknown> & { id: string; created_at: string };

const j = (v: unknown) => JSON.stringify(v);
const p = <T>(v: unknown): T => JSON.parse(String(v)) as T;
// Rows written before a resource field existed read as its default.
const withDefaults = (r: Resources): Resources => ({ ...r, maxProcesses: r.maxProcesses ?? null, networkBandwidth: r.networkBandwidth ?? null });
// The network policy travels in the resources JSON column (as `networkConfig`), so it needed no
// migration; rows from before it read as the default (no restriction).
const resourcesOf = (v: unknown): { resources: Resources; networkConfig: NetworkConfig } => {
  const { networkConfig, ...r } = p<Resources & { networkConfig?: NetworkConfig }>(v);
  return { resources: withDefaults(r), networkConfig: networkConfig ?? defaultNetworkConfig() };
};
const resourcesColumn = (x: { resources: Resources; networkConfig: NetworkConfig }) => j({ ...x.resources, networkConfig: x.networkConfig });

function toImage(r: Row): Image {
  return {
    id: r.id,
    name: String(r.name),
    source: r.source as Image['source'],
    size: Number(r.size),
    digest: String(r.digest),
    metadata: p(r.metadata),
    createdAt: r.created_at,
    owner: (r.owner as string) ?? null,
    rootfs: String(r.rootfs),
  };
}

function toSnapshot(r: Row): Snapshot {
  return {
    id: r.id,
    state: r.state as Snapshot['state'],
    parentId: (r.parent_id as string) ?? null,
    imageId: String(r.image_id),
    instanceId: (r.instance_id as string) ?? null,
    name: (r.name as string) ?? null,
    digest: String(r.digest),
    checksum: String(r.checksum),
    size: Number(r.size),
    ...resourcesOf(r.resources),
    environment: p(r.environment),
    metadata: p(r.metadata),
    createdAt: r.created_at,
    expiresAt: (r.expires_at as string) ?? null,
    owner: (r.owner as string) ?? null,
    spec: String(r.spec),
    imageDir: String(r.image_dir),
  };
}

function toInstance(r: Row): Instance {
  return {
    id: r.id,
    snapshotId: String(r.snapshot_id),
    parentInstanceId: (r.parent_instance_id as string) ?? null,
    state: r.state as InstanceState,
    error: (r.error as string) ?? null,
    ...resourcesOf(r.resources),
    ip: (r.ip as string) ?? null,
    netns: (r.netns as string) ?? null,
    metadata: p(r.metadata),
    ttl: (r.ttl as number) ?? null,
    ttlAction: r.ttl_action as Instance['ttlAction'],
    autoStop: Boolean(r.auto_stop),
    createdAt: r.created_at,
    readyAt: (r.ready_at as string) ?? null,
    stoppedAt: (r.stopped_at as string) ?? null,
    owner: (r.owner as string) ?? null,
  };
}

export class ImageRepo {
  constructor(private readonly db: Db) {}
  insert(i: Image): void {
    statement(this.db, 'INSERT INTO images (id,name,source,rootfs,size,digest,metadata,created_at,owner) VALUES (?,?,?,?,?,?,?,?,?)')
      .run(i.id, i.name, i.source, i.rootfs, i.size, i.digest, j(i.metadata), i.createdAt, i.owner);
  }
  get(id: string): Image | undefined {
    const r = statement(this.db, 'SELECT * FROM images WHERE id = ?').get(id) as Row | undefined;
    return r && toImage(r);
  }
  byName(name: string): Image | undefined {
    const r = statement(this.db, 'SELECT * FROM images WHERE name = ? ORDER BY created_at DESC LIMIT 1').get(name) as Row | undefined;
    return r && toImage(r);
  }
  all(): Image[] {
    return (statement(this.db, 'SELECT * FROM images').all() as Row[]).map(toImage);
  }
  list(q: { limit: number; cursor?: string; metadata?: Metadata; name?: string; owner?: string }): Page<Image> {
    const where: Where = { clauses: [], params: [] };
    if (q.name) where.clauses.push('name = ?'), where.params.push(q.name);
    // A key sees its own images and the shared ones (owner NULL: the default image).
    if (q.owner) where.clauses.push('(owner = ? OR owner IS NULL)'), where.params.push(q.owner);
    metadataWhere(where, q.metadata);
    return pageQuery(this.db, 'images', where, q.limit, q.cursor, toImage);
  }
  setMetadata(id: string, m: Metadata): void {
    statement(this.db, 'UPDATE images SET metadata = ? WHERE id = ?').run(j(m), id);
  }
  delete(id: string): void {
    statement(this.db, 'DELETE FROM images WHERE id = ?').run(id);
  }
  count(): number {
    return (statement(this.db, 'SELECT COUNT(*) AS n FROM images').get() as { n: number }).n;
  }
}

export class SnapshotRepo {
  constructor(private readonly db: Db) {}
  insert(s: Snapshot): void {
    statement(
        this.db,
        `INSERT INTO snapshots (id,state,parent_id,image_id,instance_id,name,digest,checksum,size,resources,environment,metadata,spec,image_dir,created_at,expires_at,owner)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      )
      .run(s.id, s.state, s.parentId, s.imageId, s.instanceId, s.name, s.digest, s.checksum, s.size, resourcesColumn(s), j(s.environment), j(s.metadata), s.spec, s.imageDir, s.createdAt, s.expiresAt, s.owner);
  }
  setChecksum(id: string, checksum: string): void {
    statement(this.db, 'UPDATE snapshots SET checksum = ? WHERE id = ?').run(checksum, id);
  }
  /** Ready snapshots whose checksum is still to be computed. */
  unsealed(): string[] {
    return (statement(this.db, "SELECT id FROM snapshots WHERE state = 'ready' AND checksum = ''").all() as { id: string }[]).map((r) => r.id);
  }
  markReady(id: string, checksum: string, size: number, imageDir: string): void {
    statement(this.db, "UPDATE snapshots SET state = 'ready', checksum = ?, size = ?, image_dir = ? WHERE id = ?").run(checksum, size, imageDir, id);
  }
  get(id: string): Snapshot | undefined {
    const r = statement(this.db, 'SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return r && toSnapshot(r);
  }
  /** Names are unique per owner, so a taken name says nothing about other keys' snapshots. */
  byName(name: string, owner: string | null): Snapshot | undefined {
    const r = statement(this.db, 'SELECT * FROM snapshots WHERE name = ? AND owner IS ? LIMIT 1').get(name, owner) as Row | undefined;
    return r && toSnapshot(r);
  }
  inState(state: Snapshot['state']): Snapshot[] {
    return (statement(this.db, 'SELECT * FROM snapshots WHERE state = ?').all(state) as Row[]).map(toSnapshot);
  }
  all(): Snapshot[] {
    return (statement(this.db, 'SELECT * FROM snapshots').all() as Row[]).map(toSnapshot);
  }
  /** The checkpoint of the same instance made just before `s` (a diff/merge ancestor: the instance's
   *  state at `s` descends from it, though its parentId is the snapshot the instance started from). */
  previousCheckpoint(s: Snapshot): string | null {
    if (!s.instanceId) return null;
    const r = statement(this.db, `SELECT id FROM snapshots WHERE instance_id = ? AND state = 'ready' AND id != ? AND rowid < (SELECT rowid FROM snapshots WHERE id = ?) ORDER BY rowid DESC LIMIT 1`)
      .get(s.instanceId, s.id, s.id) as { id: string } | undefined;
    return r?.id ?? null;
  }
  children(id: string): string[] {
    return (statement(this.db, 'SELECT id FROM snapshots WHERE parent_id = ?').all(id) as Row[]).map((r) => r.id);
  }
  list(q: { limit: number; cursor?: string; metadata?: Metadata; digest?: string; imageId?: string; parentId?: string; owner?: string }): Page<Snapshot> {
    const where: Where = { clauses: ["state = 'ready'"], params: [] };
    if (q.owner) where.clauses.push('owner = ?'), where.params.push(q.owner);
    for (const [col, v] of [['digest', q.digest], ['image_id', q.imageId], ['parent_id', q.parentId]] as const) {
      if (v) where.clauses.push(`${col} = ?`), where.params.push(v);
    }
    metadataWhere(where, q.metadata);
    return pageQuery(this.db, 'snapshots', where, q.limit, q.cursor, toSnapshot);
  }
  setMetadata(id: string, m: Metadata): void {
    statement(this.db, 'UPDATE snapshots SET metadata = ? WHERE id = ?').run(j(m), id);
  }
  poolMin(id: string): number {
    return Number((statement(this.db, 'SELECT pool_min FROM snapshots WHERE id = ?').get(id) as { pool_min: number } | undefined)?.pool_min ?? 0);
  }
  poolMax(id: string): number | null {
    const r = statement(this.db, 'SELECT pool_max FROM snapshots WHERE id = ?').get(id) as { pool_max: number | null } | undefined;
    return r?.pool_max ?? null;
  }
  /** The key the agent inside this snapshot's image holds (null: made before agents had keys). */
  agentKey(id: string): string | null {
    return (statement(this.db, 'SELECT agent_key FROM snapshots WHERE id = ?').get(id) as { agent_key: string | null } | undefined)?.agent_key ?? null;
  }
  setAgentKey(id: string, key: string): void {
    statement(this.db, 'UPDATE snapshots SET agent_key = ? WHERE id = ?').run(key, id);
  }
  setPool(id: string, min: number, max: number | null): void {
    statement(this.db, 'UPDATE snapshots SET pool_min = ?, pool_max = ? WHERE id = ?').run(min, max, id);
  }
  pooled(): { id: string; min: number }[] {
    return (statement(this.db, "SELECT id, pool_min FROM snapshots WHERE pool_min > 0 AND state = 'ready' ORDER BY created_at").all() as { id: string; pool_min: number }[]).map((r) => ({ id: r.id, min: r.pool_min }));
  }
  /** Every snapshot (any state) made from an image: they pin its files. */
  idsOfImage(imageId: string): string[] {
    return (statement(this.db, 'SELECT id FROM snapshots WHERE image_id = ? ORDER BY created_at').all(imageId) as Row[]).map((r) => String(r.id));
  }
  delete(id: string): void {
    statement(this.db, 'DELETE FROM snapshots WHERE id = ?').run(id);
  }
  // Lifetimes (services/lifetimes.ts) and metrics.
  setExpiresAt(id: string, at: string | null): void {
    statement(this.db, 'UPDATE snapshots SET expires_at = ? WHERE id = ?').run(at, id);
  }
  /** Ready snapshots with an expiry, soonest first. */
  expiring(limit = 1000): { id: string; expiresAt: string }[] {
    return (statement(this.db, "SELECT id, expires_at FROM snapshots WHERE expires_at IS NOT NULL AND state = 'ready' ORDER BY expires_at LIMIT ?").all(limit) as { id: string; expires_at: string }[])
      .map((r) => ({ id: r.id, expiresAt: r.expires_at }));
  }
  totals(): { count: number; bytes: number } {
    const r = statement(this.db, "SELECT COUNT(*) AS n, COALESCE(SUM(size),0) AS b FROM snapshots WHERE state = 'ready'").get() as { n: number; b: number };
    return { count: r.n, bytes: r.b };
  }
}

export class InstanceRepo {
  constructor(private readonly db: Db) {}
  insert(i: Instance): void {
    statement(
        this.db,
        `INSERT INTO instances (id,snapshot_id,parent_instance_id,state,error,resources,ip,netns,metadata,ttl,ttl_action,auto_stop,created_at,ready_at,stopped_at,owner)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      )
      .run(i.id, i.snapshotId, i.parentInstanceId, i.state, i.error, resourcesColumn(i), i.ip, i.netns, j(i.metadata), i.ttl, i.ttlAction, i.autoStop ? 1 : 0, i.createdAt, i.readyAt, i.stoppedAt, i.owner);
  }
  update(id: string, fields: Partial<Pick<Instance, 'state' | 'error' | 'ip' | 'netns' | 'readyAt' | 'stoppedAt' | 'metadata' | 'snapshotId'>>): void {
    const cols: Record<string, string> = {
      state: 'state', error: 'error', ip: 'ip', netns: 'netns', readyAt: 'ready_at', stoppedAt: 'stopped_at', metadata: 'metadata', snapshotId: 'snapshot_id',
    };
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(fields)) {
      sets.push(`${cols[k]} = ?`);
      params.push(k === 'metadata' ? j(v) : v);
    }
    if (sets.length) statement(this.db, `UPDATE instances SET ${sets.join(', ')} WHERE id = ?`).run(...params, id);
  }
  /** Replaces the instance's resources and network policy (PUT /v1/instances/{id}/network). */
  setNetwork(id: string, x: { resources: Resources; networkConfig: NetworkConfig }): void {
    statement(this.db, 'UPDATE instances SET resources = ? WHERE id = ?').run(resourcesColumn(x), id);
  }
  get(id: string): Instance | undefined {
    const r = statement(this.db, 'SELECT * FROM instances WHERE id = ?').get(id) as Row | undefined;
    return r && toInstance(r);
  }
  live(): Instance[] {
    return (statement(this.db, "SELECT * FROM instances WHERE state IN ('pending','ready','paused','stopping')").all() as Row[]).map(toInstance);
  }
  /** Instances of a snapshot that count against its maxInstances. */
  countRunningOfSnapshot(snapshotId: string): number {
    const r = statement(this.db, "SELECT COUNT(*) AS n FROM instances WHERE snapshot_id = ? AND state IN ('pending','ready','paused')").get(snapshotId) as { n: number };
    return Number(r.n);
  }
  liveOfSnapshot(snapshotId: string): string[] {
    return (statement(this.db, "SELECT id FROM instances WHERE snapshot_id = ? AND state IN ('pending','ready','paused','stopping')").all(snapshotId) as Row[]).map((r) => r.id);
  }
  list(q: { limit: number; cursor?: string; metadata?: Metadata; state?: string; snapshotId?: string; parentId?: string; owner?: string }): Page<Instance> {
    const where: Where = { clauses: [], params: [] };
    if (q.owner) where.clauses.push('owner = ?'), where.params.push(q.owner);
    for (const [col, v] of [['state', q.state], ['snapshot_id', q.snapshotId], ['parent_instance_id', q.parentId]] as const) {
      if (v) where.clauses.push(`${col} = ?`), where.params.push(v);
    }
    metadataWhere(where, q.metadata);
    return pageQuery(this.db, 'instances', where, q.limit, q.cursor, toInstance);
  }
  delete(id: string): void {
    statement(this.db, 'DELETE FROM instances WHERE id = ?').run(id);
  }
  // Lifetimes (services/lifetimes.ts) and metrics.
  /** Live instances that have a ttl not yet applied, or autoStop. */
  withLifetimes(): (Instance & { ttlFiredAt: string | null })[] {
    const rows = statement(this.db, "SELECT * FROM instances WHERE state IN ('pending','ready','paused') AND ((ttl IS NOT NULL AND ttl_fired_at IS NULL) OR auto_stop = 1)")
      .all() as Row[];
    return rows.map((r) => ({ ...toInstance(r), ttlFiredAt: (r.ttl_fired_at as string) ?? null }));
  }
  /** The key the instance's agent holds (null: none recorded). */
  agentKey(id: string): string | null {
    return (statement(this.db, 'SELECT agent_key FROM instances WHERE id = ?').get(id) as { agent_key: string | null } | undefined)?.agent_key ?? null;
  }
  setAgentKey(id: string, key: string): void {
    statement(this.db, 'UPDATE instances SET agent_key = ? WHERE id = ?').run(key, id);
  }
  /** The runsc id of the sandbox behind the instance (its own id unless a rollback swapped one in). */
  sandboxOf(id: string): string {
    return (statement(this.db, 'SELECT sandbox_id FROM instances WHERE id = ?').get(id) as { sandbox_id: string | null } | undefined)?.sandbox_id ?? id;
  }
  /** null: the instance's own id. */
  setSandbox(id: string, sandboxId: string | null): void {
    statement(this.db, 'UPDATE instances SET sandbox_id = ? WHERE id = ?').run(sandboxId === id ? null : sandboxId, id);
  }
  markTtlFired(id: string, at: string): void {
    statement(this.db, 'UPDATE instances SET ttl_fired_at = ? WHERE id = ?').run(at, id);
  }
  countByState(): Record<string, number> {
    const rows = statement(this.db, 'SELECT state, COUNT(*) AS n FROM instances GROUP BY state').all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }
}

export interface StoredResponse {
  bodyHash: string;
  status: number;
  response: string;
}

export class IdempotencyRepo {
  constructor(private readonly db: Db) {}
  get(key: string, method: string, path: string): StoredResponse | undefined {
    const r = statement(this.db, 'SELECT body_hash, status, response FROM idempotency WHERE key = ? AND method = ? AND path = ?').get(key, method, path) as
      | { body_hash: string; status: number; response: string }
      | undefined;
    return r && { bodyHash: r.body_hash, status: r.status, response: r.response };
  }
  put(key: string, method: string, path: string, s: StoredResponse): void {
    statement(this.db, 'INSERT OR REPLACE INTO idempotency (key,method,path,body_hash,status,response,created_at) VALUES (?,?,?,?,?,?,?)')
      .run(key, method, path, s.bodyHash, s.status, s.response, new Date().toISOString());
  }
  expire(before: string): void {
    statement(this.db, 'DELETE FROM idempotency WHERE created_at < ?').run(before);
  }
}
