// Three-way merges of snapshots' files (docs/architecture.md "Diff and merge").
//
// Lifecycle of a merge of [first, s2, s3…]:
//   1. decide, from manifests only: for each other side, its merge base with the result so far is
//      the nearest common ancestor in the snapshot lineage (parentId); every path either side or
//      the base changed is classified; both sides changing one text file merge line-wise (diff3);
//      anything else both changed is a conflict unless the strategy resolves it → 409 merge_conflict
//      with every conflict, before any sandbox is touched;
//   2. apply: restore `first` (its memory and processes), remove/create/write/chmod through its
//      agent; bytes come from kept blobs or the image, and large files not kept are copied from a
//      briefly restored instance of the side that has them;
//   3. checkpoint it into the result (parentId = first) and stop the instances used.
// Memory and processes are never merged: they are the first snapshot's.
import { createHash } from 'node:crypto';
import { diff3Merge } from 'node-diff3';
import { FaasError, invalid } from '../core/errors.js';
import type { Instance, Metadata, Snapshot } from '../core/types.js';
import type { AgentClient } from '../runtime/agent-client.js';
import { bytesOf, pathFields, sameState, type FileState } from '../store/changes.js';
import { asText, compareBytes, splitLines, TEXT_DIFF_MAX, type DiffService, type SnapshotView } from './diff.js';
import type { InstanceService } from './instances.js';
import type { SnapshotService } from './snapshots.js';
import type { SnapshotRepo } from '../store/sqlite/repos.js';

export type Side = 'ours' | 'theirs';
export type Strategy = 'fail' | Side | { paths?: Record<string, Side>; default?: 'fail' | Side };

export type ConflictKind = 'modify/modify' | 'add/add' | 'modify/delete' | 'delete/modify' | 'typeChange';

export interface Conflict {
  path: string;
  pathBase64?: string;
  kind: ConflictKind;
  base: string | null;
  ours: string;
  theirs: string;
}

/** A decided state of one path in the result, and where its bytes come from. */
interface Decided {
  state: FileState;
  bytes?: Buffer;
  from?: SnapshotView;
}

export interface MergeOptions {
  strategy?: Strategy;
  name?: string | null;
  metadata?: Metadata;
  owner?: string | null;
}

export class MergeService {
  constructor(
    private readonly diffs: DiffService,
    private readonly snapshots: SnapshotService,
    private readonly instances: InstanceService,
    private readonly agents: AgentClient,
    private readonly repo: SnapshotRepo,
  ) {}

  /**
   * Nearest common ancestor of two snapshots, or null (then the image is the base). A snapshot's
   * parents are its parentId and, for a checkpoint of an instance, that instance's checkpoint just
   * before it (the instance's files at this checkpoint grew from those).
   */
  mergeBase(a: string, b: string): string | null {
    const parents = (id: string): string[] => {
      const s = this.repo.get(id);
      if (!s) return [];
      return [s.parentId, this.repo.previousCheckpoint(s)].filter((p): p is string => !!p);
    };
    const seen = new Set<string>([a]);
    for (const queue = [a]; queue.length; ) for (const p of parents(queue.shift() as string)) if (!seen.has(p)) (seen.add(p), queue.push(p));
    const visited = new Set<string>([b]);
    for (const queue = [b]; queue.length; ) {
      const id = queue.shift() as string;
      if (seen.has(id)) return id;
      for (const p of parents(id)) if (!visited.has(p)) (visited.add(p), queue.push(p));
    }
    return null;
  }

  /** Step 1: what the result's files are, or the conflicts. Touches no sandbox. */
  async plan(ids: string[], strategy: Strategy = 'fail'): Promise<{ first: SnapshotView; result: Map<string, Decided>; conflicts: Conflict[] }> {
    if (ids.length < 2) throw invalid('a merge needs at least two snapshots', { snapshotIds: ids });
    if (new Set(ids).size !== ids.length) throw invalid('a snapshot appears twice in snapshotIds', { snapshotIds: ids });
    const views = await Promise.all(ids.map((id) => this.diffs.view(id)));
    const first = views[0];
    for (const v of views) {
      if (v.snap.imageId !== first.snap.imageId) throw new FaasError('diff_unavailable', `snapshot ${v.snap.id} comes from another image than ${first.snap.id}; only snapshots of one image can be merged`, { reason: 'different_images' });
    }
    // Every change record is read before the loop below, so the loop — which reads kept blobs —
    // runs without an await: no blob collection can fall in between (services/blob-gc.ts).
    const baseIds = views.slice(1).map((theirs) => this.mergeBase(first.snap.id, theirs.snap.id));
    const bases = await Promise.all(baseIds.map((b) => (b ? this.diffs.view(b) : null)));
    const result = new Map<string, Decided>();
    const ours = (key: string): FileState => result.get(key)?.state ?? first.state(key);
    const oursBytes = (key: string, st: FileState): Buffer | null => result.get(key)?.bytes ?? (result.get(key)?.from ?? first).content(key, st);
    const conflicts: Conflict[] = [];
    for (const [i, theirs] of views.slice(1).entries()) {
      const baseId = baseIds[i];
      const base = bases[i];
      const baseState = (key: string) => (base ? base.state(key) : first.imageState(key));
      const keys = new Set([...first.changedKeys(), ...theirs.changedKeys(), ...(base?.changedKeys() ?? []), ...result.keys()]);
      for (const key of [...keys].sort(compareBytes)) {
        const b = baseState(key);
        const o = ours(key);
        const t = theirs.state(key);
        if (sameState(o, t) || sameState(b, t)) continue; // nothing to take
        if (sameState(b, o)) {
          result.set(key, { state: t, from: theirs });
          continue;
        }
        // Both changed it, differently.
        const kind = kindOf(b, o, t);
        if (kind === 'modify/modify' || kind === 'add/add') {
          const merged = lineMerge(b, o, t, base?.content(key, b) ?? first.content(key, b), oursBytes(key, o), theirs.content(key, t));
          if (merged) {
            // A mode changed on one side only goes with the merged text.
            const mode = o.mode === b.mode ? t.mode : o.mode;
            result.set(key, { state: { ...o, mode, sha256: createHash('sha256').update(merged).digest('hex'), size: merged.length }, bytes: merged });
            continue;
          }
        }
        const pick = resolve(strategy, key);
        if (pick === 'ours') continue;
        if (pick === 'theirs') {
          result.set(key, { state: t, from: theirs });
          continue;
        }
        conflicts.push({ ...pathFields(key), kind, base: baseId, ours: first.snap.id, theirs: theirs.snap.id });
      }
    }
    return { first, result, conflicts };
  }

  async merge(ids: string[], opts: MergeOptions = {}): Promise<Snapshot> {
    const { first, result, conflicts } = await this.plan(ids, opts.strategy);
    if (conflicts.length) {
      throw new FaasError('merge_conflict', `${conflicts.length} path(s) changed on both sides; resolve them with strategy 'ours', 'theirs' or per path`, { conflicts });
    }
    this.snapshots.assertNameFree(opts.name, opts.owner ?? null);
    return this.applyOnto(first, result, {
      name: opts.name ?? null,
      metadata: opts.metadata ?? {},
      owner: opts.owner ?? null,
    });
  }

  /** Steps 2 and 3: restore `onto`, apply the decided states, checkpoint. */
  async applyOnto(first: SnapshotView, result: Map<string, Decided>, opts: { name: string | null; metadata: Metadata; owner: string | null }): Promise<Snapshot> {
    const onto = first.snap.id;
    // The blobs written below are read after awaits: a delete of a side meanwhile must not let the
    // blob collection (services/blob-gc.ts) take them first.
    const unpin = this.diffs.pinBlobs([...result.values()].flatMap((d) => (d.state.type === 'file' && d.state.sha256 ? [d.state.sha256] : [])));
    const started: Instance[] = [];
    const startOf = new Map<string, Promise<Instance>>();
    const instanceOf = (snapshotId: string): Promise<Instance> => {
      let p = startOf.get(snapshotId);
      if (!p) {
        p = this.instances.start({ snapshotId, owner: opts.owner, metadata: { 'faas.merge': onto } }).then((i) => (started.push(i), i));
        startOf.set(snapshotId, p);
      }
      return p;
    };
    try {
      const target = await instanceOf(onto);
      const ip = target.ip as string;
      const keys = [...result.keys()].sort(compareBytes);
      const ops: object[] = [];
      // Removals deepest first, then directories shallowest first, then files, then symlinks and modes.
      for (const key of [...keys].reverse()) {
        const d = result.get(key) as Decided;
        const now = first.state(key).type;
        // Gone, or replaced by another type (a directory by a file: its contents go too).
        if (d.state.type === 'absent' || d.state.type === 'other' || (now !== d.state.type && now !== 'absent')) ops.push({ op: 'remove', ...wire(key) });
      }
      for (const key of keys) {
        const d = result.get(key) as Decided;
        if (d.state.type === 'dir') ops.push({ op: 'mkdir', ...wire(key), mode: d.state.mode });
      }
      await this.apply(ip, ops);
      const late: object[] = [];
      for (const key of keys) {
        const d = result.get(key) as Decided;
        if (d.state.type === 'symlink') late.push({ op: 'symlink', ...wire(key), ...wireTarget(d.state.target ?? '') });
        if (d.state.type !== 'file') continue;
        const bytes = d.bytes ?? d.from?.content(key, d.state) ?? null;
        if (bytes) await this.write(ip, key, bytes, d.state.mode);
        else await this.copy(await instanceOf((d.from as SnapshotView).snap.id), ip, key, d.state.mode);
        late.push({ op: 'chmod', ...wire(key), mode: d.state.mode });
      }
      await this.apply(ip, late);
      return await this.instances.snapshot(target.id, { name: opts.name ?? undefined, metadata: opts.metadata, owner: opts.owner });
    } finally {
      unpin();
      await Promise.all([...startOf.values()].map((p) => p.catch(() => undefined)));
      for (const i of started) await this.instances.delete(i.id).catch(() => undefined);
    }
  }

  private async apply(ip: string, ops: object[]): Promise<void> {
    if (ops.length) await this.agents.json(ip, 'POST', '/v1/changes/apply', { ops });
  }

  /** parents=true: a file taken from the other side may sit in a directory this side removed. */
  private async write(ip: string, key: string, bytes: Buffer, mode: number): Promise<void> {
    const res = await this.agents.raw(ip, {
      method: 'PUT', path: `/v1/files/write?path=${percent(key)}&mode=${mode.toString(8)}&parents=true`, body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    await res.body.dump();
  }

  /** A file the engine does not keep (large): streamed from the side's instance to the target. */
  private async copy(from: Instance, toIp: string, key: string, mode: number): Promise<void> {
    const src = await this.agents.raw(from.ip as string, { method: 'GET', path: `/v1/files/read?path=${percent(key)}` });
    const res = await this.agents.raw(toIp, {
      method: 'PUT', path: `/v1/files/write?path=${percent(key)}&mode=${mode.toString(8)}&parents=true`, body: src.body,
      headers: { 'content-type': 'application/octet-stream' },
    });
    await res.body.dump();
  }
}

function kindOf(b: FileState, o: FileState, t: FileState): ConflictKind {
  if (o.type === 'absent') return 'delete/modify';
  if (t.type === 'absent') return 'modify/delete';
  if (o.type !== t.type) return 'typeChange';
  return b.type === 'absent' ? 'add/add' : 'modify/modify';
}

/** diff3 on lines; null when the edits overlap or a side is not small text. */
function lineMerge(b: FileState, o: FileState, t: FileState, bb: Buffer | null, ob: Buffer | null, tb: Buffer | null): Buffer | null {
  if (o.type !== 'file' || t.type !== 'file' || (b.type !== 'file' && b.type !== 'absent')) return null;
  if (Math.max(o.size, t.size, b.size) > TEXT_DIFF_MAX) return null;
  const base = b.type === 'absent' ? '' : bb && asText(bb);
  const ours = ob && asText(ob);
  const theirs = tb && asText(tb);
  if (base === null || ours === null || theirs === null || base === undefined) return null;
  const regions = diff3Merge(splitLines(ours), splitLines(base), splitLines(theirs), { excludeFalseConflicts: true });
  const out: string[] = [];
  for (const r of regions) {
    if (r.conflict) return null;
    out.push(...(r.ok ?? []));
  }
  return Buffer.from(out.join(''), 'utf8');
}


function resolve(strategy: Strategy, key: string): 'fail' | Side {
  if (typeof strategy === 'string') return strategy;
  const { path, pathBase64 } = pathFields(key);
  return strategy.paths?.[pathBase64 ?? path] ?? strategy.paths?.[path] ?? strategy.default ?? 'fail';
}

const wire = (key: string) => {
  const f = pathFields(key);
  return f.pathBase64 ? { pathBase64: f.pathBase64 } : { path: f.path };
};
const wireTarget = (key: string) => {
  const f = pathFields(key);
  return f.pathBase64 ? { targetBase64: f.pathBase64 } : { target: f.path };
};

/** Percent-encodes a path's bytes for the agent's query string (Go decodes them back to bytes). */
function percent(key: string): string {
  let out = '';
  for (const byte of bytesOf(key)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~/]/.test(c) ? c : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}
