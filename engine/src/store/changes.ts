// What each snapshot changed relative to its image, kept beside its checkpoint (docs/architecture.md
// "Diff and merge"). The agent records changed paths from boot on (agent/internal/changes); at
// every checkpoint the engine asks it for their current state and writes it as
// snapshots/<id>/changes.json (inside the checkpoint directory, so the snapshot's checksum covers
// it). Small files' bytes arrive with the manifest the first time they are hashed and are kept once
// by content hash in blobs/<sha256>, so diffs and text merges need no sandbox at all.
//
// Paths are bytes. In memory a path is a "key": its bytes as a latin1 string (one char per byte,
// lossless); host filesystem calls take Buffer.from(key, 'latin1').
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export type EntryType = 'file' | 'dir' | 'symlink' | 'other' | 'absent';

export interface FileState {
  type: EntryType;
  mode: number;
  size: number;
  sha256: string | null;
  /** Symlink target as a key (latin1 bytes). */
  target: string | null;
}

export interface ManifestEntry extends FileState {
  key: string;
  /** A directory was renamed away from here: the image's paths below it are gone unless listed. */
  subtree: boolean;
}

export interface Manifest {
  complete: boolean;
  entries: Map<string, ManifestEntry>;
  /** Keys marked subtree. */
  subtrees: Set<string>;
}

/** One entry as the agent sends it (spec/agent-protocol.md "Changes"). */
export interface AgentChange {
  path?: string;
  pathBase64?: string;
  subtree?: boolean;
  type: EntryType;
  mode: number;
  size: number;
  sha256?: string;
  target?: string;
  targetBase64?: string;
  content?: string;
}

export const ABSENT: FileState = { type: 'absent', mode: 0, size: 0, sha256: null, target: null };

export const keyOf = (text: string | undefined, b64: string | undefined): string =>
  b64 !== undefined ? Buffer.from(b64, 'base64').toString('latin1') : Buffer.from(text ?? '', 'utf8').toString('latin1');

export const bytesOf = (key: string): Buffer => Buffer.from(key, 'latin1');

/** The key's bytes as JSON fields: `path` (valid UTF-8 is exact; otherwise lossy) and `pathBase64` when not UTF-8. */
export function pathFields(key: string): { path: string; pathBase64?: string } {
  const b = bytesOf(key);
  const text = b.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(b)) return { path: text };
  return { path: text, pathBase64: b.toString('base64') };
}

export const MANIFEST_FILE = 'changes.json';
/** A blob's file name: the sha256 of its bytes, lower-case hex. */
export const BLOB_NAME = /^[0-9a-f]{64}$/;

/** An absolute path of named components only: '/a/b', never '/', '/a/../b', '/a/./b', '/a//b', NUL. */
export function isPlainPath(key: string): boolean {
  if (key.length < 2 || key[0] !== '/' || key.includes('\0') || key.endsWith('/')) return false;
  for (const part of key.slice(1).split('/')) if (part === '' || part === '.' || part === '..') return false;
  return true;
}

export class ChangeStore {
  readonly blobDir: string;
  private readonly manifests = new Map<string, Manifest>();
  private readonly imageHashes = new Map<string, string>();

  constructor(stateDir: string) {
    this.blobDir = join(stateDir, 'blobs');
    mkdirSync(this.blobDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Turns the agent's answer into the stored manifest (written into `dir`, the checkpoint's
   * directory before it is placed) and keeps inlined contents as blobs.
   */
  save(dir: string, answer: { complete: boolean; entries: AgentChange[] }, record: (hashes: Set<string>) => void = () => undefined): void {
    // The references first (services/blob-gc.ts): a blob on disk is named by a record from the
    // moment it exists, so a collection between here and the snapshot becoming ready keeps it.
    const hashes = new Set<string>();
    for (const e of answer.entries) if (e.sha256 && BLOB_NAME.test(e.sha256)) hashes.add(e.sha256);
    record(hashes);
    const stored: AgentChange[] = [];
    for (const e of answer.entries) {
      if (e.content !== undefined && e.sha256) this.putBlob(e.sha256, Buffer.from(e.content, 'base64'));
      const { content: _content, ...rest } = e;
      stored.push(rest);
    }
    writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify({ version: 1, complete: answer.complete, entries: stored }), { mode: 0o600 });
  }

  /** The manifest of a placed snapshot, or null if it has none (made before change tracking). */
  load(snapshotId: string, dir: string): Manifest | null {
    const cached = this.manifests.get(snapshotId);
    if (cached) return cached;
    const file = join(dir, MANIFEST_FILE);
    if (!existsSync(file)) return null;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    return this.parse(snapshotId, text);
  }

  /** A manifest from its stored text (changes.json), kept in memory for the next use; null if unreadable. */
  parse(snapshotId: string, text: string): Manifest | null {
    let raw: { complete: boolean; entries: AgentChange[] };
    try {
      raw = JSON.parse(text);
      if (!Array.isArray(raw.entries)) return null;
    } catch {
      return null; // unreadable (a write cut short): as if there were none
    }
    const m: Manifest = { complete: raw.complete, entries: new Map(), subtrees: new Set() };
    for (const e of raw.entries) {
      const key = keyOf(e.path, e.pathBase64);
      // The manifest comes from inside a sandbox: a path that is not a plain absolute one ('..',
      // '.', '//', NUL) would name host files once joined to the image directory. Never trusted.
      if (!isPlainPath(key) || (e.type === 'symlink' && (e.target ?? e.targetBase64) === undefined)) continue;
      m.entries.set(key, {
        key, subtree: !!e.subtree, type: e.type, mode: e.mode, size: e.size, sha256: e.sha256 ?? null,
        target: e.type === 'symlink' ? keyOf(e.target, e.targetBase64) : null,
      });
      if (e.subtree) m.subtrees.add(key);
    }
    if (this.manifests.size > 256) this.manifests.delete(this.manifests.keys().next().value as string);
    this.manifests.set(snapshotId, m);
    return m;
  }

  forget(snapshotId: string): void {
    this.manifests.delete(snapshotId);
  }

  putBlob(sha256: string, bytes: Buffer): void {
    if (!BLOB_NAME.test(sha256)) return;
    const file = join(this.blobDir, sha256);
    if (existsSync(file)) return;
    // Trust nothing the sandbox said: the name must be the bytes' hash.
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) return;
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, bytes, { mode: 0o600 });
    renameSync(tmp, file);
  }

  blob(sha256: string | null): Buffer | null {
    if (!sha256 || !BLOB_NAME.test(sha256)) return null;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.blobDir, sha256));
    } catch {
      return null;
    }
    // A blob changed on disk (a bad sector, a hand edit) is not what its name says: never served.
    return createHash('sha256').update(bytes).digest('hex') === sha256 ? bytes : null;
  }

  /**
   * Keeps blobs from collection while an operation that will read them later (a merge being
   * applied) runs, whatever happens to the snapshots that name them meanwhile. Returns the release.
   */
  pin(hashes: Iterable<string>): () => void {
    const taken = [...new Set(hashes)];
    for (const h of taken) this.pins.set(h, (this.pins.get(h) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const h of taken) {
        const n = (this.pins.get(h) ?? 1) - 1;
        if (n > 0) this.pins.set(h, n);
        else this.pins.delete(h);
      }
    };
  }

  pinned(sha256: string): boolean {
    return this.pins.has(sha256);
  }

  private readonly pins = new Map<string, number>();

  /**
   * The state of a path in an image (read-only on the host). Every ancestor must be a real
   * directory there: a path through an image symlink is not that path in the sandbox.
   */
  imageState(rootfs: string, key: string): FileState {
    const bytes = bytesOf(key);
    let st: Stats;
    try {
      st = lstatSync(Buffer.concat([Buffer.from(rootfs), bytes]));
    } catch {
      return ABSENT;
    }
    if (!this.ancestorsAreDirs(rootfs, key)) return ABSENT;
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) return { type: 'dir', mode, size: 0, sha256: null, target: null };
    if (st.isSymbolicLink()) {
      const t = readlinkSync(Buffer.concat([Buffer.from(rootfs), bytes]), { encoding: 'buffer' });
      return { type: 'symlink', mode, size: t.length, sha256: null, target: t.toString('latin1') };
    }
    if (!st.isFile()) return { type: 'other', mode, size: 0, sha256: null, target: null };
    const cacheKey = `${rootfs}\0${key}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
    let sum = this.imageHashes.get(cacheKey);
    if (!sum) {
      sum = createHash('sha256').update(readFileSync(Buffer.concat([Buffer.from(rootfs), bytes]))).digest('hex');
      this.imageHashes.set(cacheKey, sum);
    }
    return { type: 'file', mode, size: st.size, sha256: sum, target: null };
  }

  /** Bytes of an image file (for text diffs and merges). */
  imageBytes(rootfs: string, key: string): Buffer | null {
    try {
      return readFileSync(Buffer.concat([Buffer.from(rootfs), bytesOf(key)]));
    } catch {
      return null;
    }
  }

  /** Keys of every path the image has strictly below `key` (subtree markers). */
  imageDescendants(rootfs: string, key: string): string[] {
    const out: string[] = [];
    const walk = (k: string) => {
      let names: Buffer[];
      try {
        names = readdirSync(Buffer.concat([Buffer.from(rootfs), bytesOf(k)]), { encoding: 'buffer' });
      } catch {
        return;
      }
      for (const n of names) {
        const child = `${k === '/' ? '' : k}/${n.toString('latin1')}`;
        out.push(child);
        if (lstatSync(Buffer.concat([Buffer.from(rootfs), bytesOf(child)])).isDirectory()) walk(child);
      }
    };
    if (this.imageState(rootfs, key).type === 'dir') walk(key);
    return out;
  }

  private readonly dirCache = new Map<string, boolean>();

  private ancestorsAreDirs(rootfs: string, key: string): boolean {
    for (let i = key.indexOf('/', 1); i > 0; i = key.indexOf('/', i + 1)) {
      const dir = key.slice(0, i);
      const ck = `${rootfs}\0${dir}`;
      let ok = this.dirCache.get(ck);
      if (ok === undefined) {
        try {
          ok = lstatSync(Buffer.concat([Buffer.from(rootfs), bytesOf(dir)])).isDirectory();
        } catch {
          ok = false;
        }
        this.dirCache.set(ck, ok);
      }
      if (!ok) return false;
    }
    return true;
  }
}

export function sameState(a: FileState, b: FileState): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'absent') return true;
  if (a.type === 'symlink') return a.target === b.target; // a symlink's own mode means nothing
  if (a.mode !== b.mode) return false;
  if (a.type === 'file') return a.sha256 === b.sha256;
  return true;
}
