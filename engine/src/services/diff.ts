// Diffs between snapshots, answered from their change manifests (store/changes.ts) without
// restoring anything: the paths to compare are the union of what either side changed since the
// image, so the cost follows what changed, not the size of the image. A path neither side lists is
// the image's on both. Unified text diffs are made from kept blobs or the image's own files.
import { FILE_HEADERS_ONLY, formatPatch, structuredPatch } from 'diff';
import { FaasError } from '../core/errors.js';
import type { Snapshot } from '../core/types.js';
import type { AgentClient } from '../runtime/agent-client.js';
import { ABSENT, MANIFEST_FILE, pathFields, sameState, type AgentChange, type ChangeStore, type FileState, type Manifest } from '../store/changes.js';
import type { SnapshotFiles } from '../store/snapshot-files.js';
import type { ImageService } from './images.js';
import type { SnapshotService } from './snapshots.js';

/** Text diffs are made for files up to this size on both sides (bytes). */
export const TEXT_DIFF_MAX = 256 * 1024;
/** The most the engine reads of one agent's change manifest (it comes from inside a sandbox). */
export const MANIFEST_MAX = 512 * 1024 * 1024;

/**
 * Asks the agent at `ip` for its change manifest (spec/agent-protocol.md "Changes"), reading at
 * most MANIFEST_MAX bytes of it. Small files changed since the agent was last asked come inlined.
 */
export async function fetchManifest(agents: AgentClient, ip: string): Promise<{ complete: boolean; entries: AgentChange[] }> {
  const res = await agents.raw(ip, { method: 'GET', path: `/v1/changes?inlineMax=${TEXT_DIFF_MAX}`, signal: AbortSignal.timeout(60_000) });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MANIFEST_MAX) {
      res.body.destroy();
      throw new FaasError('runtime_error', `the agent's change manifest is larger than ${MANIFEST_MAX} bytes`, { limit: MANIFEST_MAX });
    }
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
}

/** One snapshot's files: its manifest over its image. */
export class SnapshotView {
  constructor(
    readonly snap: Snapshot,
    readonly manifest: Manifest,
    readonly rootfs: string,
    private readonly store: ChangeStore,
  ) {}

  /** The image's state of a path (the base when two snapshots share no ancestor). */
  imageState(key: string): FileState {
    return this.store.imageState(this.rootfs, key);
  }

  state(key: string): FileState {
    const e = this.manifest.entries.get(key);
    if (e) return e;
    for (const s of this.manifest.subtrees) if (key.startsWith(`${s}/`)) return ABSENT;
    return this.store.imageState(this.rootfs, key);
  }

  /** Every key whose state may differ from the image. */
  changedKeys(): Set<string> {
    const keys = new Set(this.manifest.entries.keys());
    for (const s of this.manifest.subtrees) for (const k of this.store.imageDescendants(this.rootfs, s)) keys.add(k);
    return keys;
  }

  /** The bytes behind a file state, when the engine has them (a kept blob or the image's file). */
  content(key: string, st: FileState): Buffer | null {
    if (st.type !== 'file') return null;
    const blob = this.store.blob(st.sha256);
    if (blob) return blob;
    if (st.size === 0) return Buffer.alloc(0);
    const img = this.store.imageState(this.rootfs, key);
    return img.type === 'file' && img.sha256 === st.sha256 ? this.store.imageBytes(this.rootfs, key) : null;
  }
}

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'typeChanged';

export interface FileChange {
  path: string;
  pathBase64?: string;
  change: ChangeKind;
  type: string;
  typeBefore: string | null;
  typeAfter: string | null;
  modeBefore: number | null;
  modeAfter: number | null;
  sizeBefore: number | null;
  sizeAfter: number | null;
  sha256Before: string | null;
  sha256After: string | null;
  symlinkTargetBefore: string | null;
  symlinkTargetAfter: string | null;
  diff: string | null;
  diffOmitted: 'binary' | 'too_large' | 'content_unavailable' | 'not_a_file' | 'mode_only' | null;
  insertions: number;
  deletions: number;
}

export interface BranchDiff {
  base: string;
  target: string;
  files: FileChange[];
  totals: { files: number; added: number; modified: number; deleted: number; typeChanged: number; insertions: number; deletions: number };
}

export class DiffService {
  constructor(
    private readonly snapshots: SnapshotService,
    private readonly images: ImageService,
    private readonly store: ChangeStore,
    private readonly files: SnapshotFiles,
  ) {}

  /** Keeps these blobs from collection until the returned release (a merge reading them later). */
  pinBlobs(hashes: Iterable<string>): () => void {
    return this.store.pin(hashes);
  }

  /** The files of a snapshot, or 409 diff_unavailable when it has no complete manifest. */
  async view(id: string): Promise<SnapshotView> {
    const snap = this.snapshots.get(id);
    // An image the cache evicted keeps its manifest in the store: read that one file, no assembly.
    const m = this.store.load(snap.id, snap.imageDir) ?? (await this.storedManifest(snap.id));
    if (!m) {
      throw new FaasError('diff_unavailable', `snapshot ${id} has no record of its file changes (it was made by an engine or agent without change tracking, or from a paused instance); snapshot a running instance made from a newer snapshot and diff that`, { id, reason: 'no_manifest' });
    }
    if (!m.complete) {
      throw new FaasError('diff_unavailable', `snapshot ${id}: its change record is incomplete (the sandbox lost file events); diff a later snapshot`, { id, reason: 'incomplete' });
    }
    return new SnapshotView(snap, m, this.images.get(snap.imageId).rootfs, this.store);
  }

  private async storedManifest(id: string) {
    const bytes = await this.files.readFile(id, MANIFEST_FILE);
    return bytes ? this.store.parse(id, bytes.toString('utf8')) : null;
  }

  async diff(baseId: string, targetId: string, opts: { textDiffs?: boolean } = {}): Promise<BranchDiff> {
    const a = await this.view(baseId);
    const b = await this.view(targetId);
    if (a.snap.imageId !== b.snap.imageId) {
      throw new FaasError('diff_unavailable', `snapshots ${baseId} and ${targetId} come from different images; only snapshots of one image can be compared`, { reason: 'different_images', base: baseId, target: targetId });
    }
    const keys = new Set([...a.changedKeys(), ...b.changedKeys()]);
    const files: FileChange[] = [];
    for (const key of [...keys].sort(compareBytes)) {
      const before = a.state(key);
      const after = b.state(key);
      if (sameState(before, after)) continue;
      files.push(describeChange(key, before, after, opts.textDiffs === false ? null : () => [a.content(key, before), b.content(key, after)]));
    }
    return { base: baseId, target: targetId, files, totals: totalsOf(files) };
  }
}

export function compareBytes(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

function describeChange(key: string, before: FileState, after: FileState, contents: (() => [Buffer | null, Buffer | null]) | null): FileChange {
  const change: ChangeKind = before.type === 'absent' ? 'added' : after.type === 'absent' ? 'deleted' : before.type !== after.type ? 'typeChanged' : 'modified';
  const present = (s: FileState) => s.type !== 'absent';
  const target = (s: FileState) => (s.type === 'symlink' && s.target !== null ? pathFields(s.target).path : null);
  const fc: FileChange = {
    ...pathFields(key),
    change,
    type: present(after) ? after.type : before.type,
    typeBefore: present(before) ? before.type : null,
    typeAfter: present(after) ? after.type : null,
    modeBefore: present(before) ? before.mode : null,
    modeAfter: present(after) ? after.mode : null,
    sizeBefore: present(before) ? before.size : null,
    sizeAfter: present(after) ? after.size : null,
    sha256Before: before.sha256,
    sha256After: after.sha256,
    symlinkTargetBefore: target(before),
    symlinkTargetAfter: target(after),
    diff: null,
    diffOmitted: null,
    insertions: 0,
    deletions: 0,
  };
  const isFile = (s: FileState) => s.type === 'file' || s.type === 'absent';
  if (!isFile(before) || !isFile(after)) {
    fc.diffOmitted = 'not_a_file';
    return fc;
  }
  if (before.type === 'file' && after.type === 'file' && before.sha256 === after.sha256) {
    fc.diffOmitted = 'mode_only';
    return fc;
  }
  if (before.size > TEXT_DIFF_MAX || after.size > TEXT_DIFF_MAX) {
    fc.diffOmitted = 'too_large';
    return fc;
  }
  if (!contents) return fc;
  const [x, y] = contents();
  const old = before.type === 'absent' ? Buffer.alloc(0) : x;
  const neu = after.type === 'absent' ? Buffer.alloc(0) : y;
  if (!old || !neu) {
    fc.diffOmitted = 'content_unavailable';
    return fc;
  }
  const oldText = asText(old);
  const newText = asText(neu);
  if (oldText === null || newText === null) {
    fc.diffOmitted = 'binary';
    return fc;
  }
  const name = fc.path;
  const from = before.type === 'absent' ? '/dev/null' : `a${name}`;
  const to = after.type === 'absent' ? '/dev/null' : `b${name}`;
  Object.assign(fc, unified(from, to, oldText, newText));
  return fc;
}

/**
 * A unified diff with 3 lines of context, and its counts. A file added or deleted whole needs no
 * diff algorithm: every line is one hunk (half of a typical branch diff is such files).
 */
function unified(from: string, to: string, oldText: string, newText: string): { diff: string; insertions: number; deletions: number } {
  const head = `--- ${from}\n+++ ${to}\n`;
  if (oldText === '' || newText === '') {
    const text = oldText || newText;
    const ls = splitLines(text);
    if (!ls.length) return { diff: head, insertions: 0, deletions: 0 };
    const sign = oldText === '' ? '+' : '-';
    const range = `${ls.length === 1 ? '1' : `1,${ls.length}`}`;
    let body = oldText === '' ? `@@ -0,0 +${range} @@\n` : `@@ -${range} +0,0 @@\n`;
    for (const l of ls) body += sign + l;
    if (!text.endsWith('\n')) body += '\n\\ No newline at end of file\n';
    return { diff: head + body, insertions: sign === '+' ? ls.length : 0, deletions: sign === '-' ? ls.length : 0 };
  }
  const patch = structuredPatch(from, to, oldText, newText, undefined, undefined, { context: 3 });
  let insertions = 0;
  let deletions = 0;
  for (const h of patch.hunks) {
    for (const l of h.lines) {
      if (l[0] === '+') insertions++;
      else if (l[0] === '-') deletions++;
    }
  }
  return { diff: formatPatch(patch, FILE_HEADERS_ONLY), insertions, deletions };
}

/** Lines with their terminators (a last line without one stays as it is). */
export function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** UTF-8 text without NUL bytes (git's test is the NUL byte; invalid UTF-8 is binary here too). */
export function asText(b: Buffer): string | null {
  if (b.includes(0)) return null;
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : null;
}

function totalsOf(files: FileChange[]): BranchDiff['totals'] {
  const t = { files: files.length, added: 0, modified: 0, deleted: 0, typeChanged: 0, insertions: 0, deletions: 0 };
  for (const f of files) {
    t[f.change]++;
    t.insertions += f.insertions;
    t.deletions += f.deletions;
  }
  return t;
}
