// Deduplicated store of checkpoint images: every file of a finished checkpoint directory is cut
// into chunks (chunking.ts), each chunk is kept once under chunks/<hh>/<sha256> (deflated as
// `<sha256>.z` when a compression level is set and it pays), and a manifest per snapshot
// (manifests/<id>.json) lists each file's chunks. Images of one lineage share every chunk they
// have in common, so a branch that changed 10 MB of a 1 GiB parent costs ~10 MB here.
//
// Lifecycle of one image:
//   ingest(id, dir)       chunks written (temp name, fsync, rename), then the manifest (same);
//                         from then on the directory is only a cache (a "materialized" copy).
//   materialize(id, dir)  assembles the files from the chunks into a temp dir beside `dir`, every
//                         chunk's hash checked, then renames it to `dir`.
//   drop(id)              removes the manifest, then every chunk no other manifest names.
// Crash safety follows from the order: a chunk exists before any manifest names it and outlives
// the last manifest that names it, and reconcile() (at start-up) rebuilds the reference counts from
// the manifests and removes chunks none names and temp files — whatever an engine killed mid-ingest
// or mid-drop left. Reference counts live in memory only, so they cannot drift from the manifests.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';
import { FaasError } from '../../core/errors.js';
import { endsChunk, PAGE } from './chunking.js';

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);
const READ = 8 << 20; // a multiple of PAGE: cuts stay on page boundaries across reads

/** [sha256 hex of the uncompressed bytes, uncompressed length] */
type ChunkRef = [string, number];
interface Manifest {
  version: 1;
  files: { name: string; size: number; chunks: ChunkRef[] }[];
}
interface Chunk {
  refs: number;
  size: number;
  /** Bytes on disk (the deflated size when compressed). */
  stored: number;
  compressed: boolean;
}

export interface ImageUsage {
  /** Bytes of the image's files. */
  logicalBytes: number;
  /** Bytes of its distinct chunks that other stored images also name. */
  sharedBytes: number;
  /** Bytes of its distinct chunks no other stored image names: what deleting it frees. */
  exclusiveBytes: number;
}

export class ImageStore {
  private readonly chunks = new Map<string, Chunk>();
  private readonly manifests = new Map<string, Manifest>();
  /** Chunk writes in flight: a second ingest of the same bytes waits for the first. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(readonly root: string) {
    mkdirSync(join(root, 'chunks'), { recursive: true, mode: 0o700 });
    mkdirSync(join(root, 'manifests'), { recursive: true, mode: 0o700 });
  }

  /**
   * Start-up: loads the manifests, counts references, removes temp files and every chunk no
   * manifest names. Returns the ids of the stored images (the caller drops those it has no
   * snapshot for). A manifest that cannot be parsed is removed (it was never renamed into place
   * whole, so its image still has its directory or never became ready).
   */
  reconcile(): { ids: string[]; removedChunks: number } {
    this.chunks.clear();
    this.manifests.clear();
    const mdir = join(this.root, 'manifests');
    for (const f of readdirSync(mdir)) {
      if (!f.endsWith('.json')) {
        rmSync(join(mdir, f), { force: true });
        continue;
      }
      try {
        this.addManifest(f.slice(0, -5), JSON.parse(readFileSync(join(mdir, f), 'utf8')) as Manifest);
      } catch {
        rmSync(join(mdir, f), { force: true });
      }
    }
    let removedChunks = 0;
    const cdir = join(this.root, 'chunks');
    for (const hh of readdirSync(cdir)) {
      for (const f of readdirSync(join(cdir, hh))) {
        const path = join(cdir, hh, f);
        const hash = f.endsWith('.z') ? f.slice(0, -2) : f;
        const c = this.chunks.get(hash);
        if (f.startsWith('.tmp-') || !c || c.stored > 0) {
          // A temp file, a chunk nothing names, or a second copy of one (raw and deflated).
          rmSync(path, { force: true });
          removedChunks++;
          continue;
        }
        c.stored = statSync(path).size;
        c.compressed = f.endsWith('.z');
      }
    }
    // A manifest naming a chunk that is gone: its image cannot be assembled. Keep the manifest (the
    // materialized copy may still exist, and a restore then reports the corruption clearly).
    return { ids: [...this.manifests.keys()], removedChunks };
  }

  has(id: string): boolean {
    return this.manifests.has(id);
  }

  ids(): string[] {
    return [...this.manifests.keys()];
  }

  /**
   * Stores the files of `dir` as snapshot `id`'s image. Deflates new chunks at `level` (1–9) when
   * that saves at least an eighth; 0 stores them raw. Idempotent per id.
   */
  async ingest(id: string, dir: string, level = 0): Promise<void> {
    if (this.manifests.has(id)) return;
    const manifest: Manifest = { version: 1, files: [] };
    // References taken while ingesting, so a drop meanwhile never removes a chunk this will name.
    const taken: string[] = [];
    try {
      for (const name of readdirSync(dir).sort()) {
        const refs: ChunkRef[] = [];
        const size = await this.cutFile(join(dir, name), async (bytes) => {
          const hash = createHash('sha256').update(bytes).digest('hex');
          refs.push([hash, bytes.length]);
          taken.push(hash);
          await this.keep(hash, bytes, level);
        });
        manifest.files.push({ name, size, chunks: refs });
      }
      const path = join(this.root, 'manifests', `${id}.json`);
      writeDurably(`${path}.tmp`, JSON.stringify(manifest));
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      for (const h of taken) this.unref(h);
      rmSync(join(this.root, 'manifests', `${id}.json.tmp`), { force: true });
      throw storageError(err, `storing the image of ${id}`);
    }
    // The references taken above become the manifest's (one per distinct chunk): counted for the
    // manifest first, so no count touches 0 in between.
    this.addManifest(id, manifest);
    for (const h of taken) this.unref(h);
  }

  /** Assembles snapshot `id`'s files into `dir` (which must not exist), checking every chunk. */
  async materialize(id: string, dir: string): Promise<void> {
    const m = this.manifests.get(id);
    if (!m) throw new FaasError('image_corrupt', `snapshot ${id}: its image is neither on disk nor in the image store`, { id });
    const tmp = `${dir}.mat`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o700 });
    try {
      for (const f of m.files) {
        const fh = await open(join(tmp, f.name), 'w', 0o600);
        try {
          for (const [hash, size] of f.chunks) {
            const bytes = await this.read(hash, size, id);
            await fh.write(bytes, 0, bytes.length);
          }
        } finally {
          await fh.close();
        }
      }
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw storageError(err, `assembling the image of ${id}`);
    }
  }

  /**
   * One file of snapshot `id`'s image read from its chunks (each checked against its hash), without
   * assembling the rest; null when the store has no such image or the image no such file. For the
   * small files read without a restore (changes.json, for diffs of an evicted image).
   */
  async readFile(id: string, name: string): Promise<Buffer | null> {
    const f = this.manifests.get(id)?.files.find((x) => x.name === name);
    if (!f) return null;
    const parts: Buffer[] = [];
    for (const [hash, size] of f.chunks) parts.push(await this.read(hash, size, id));
    return Buffer.concat(parts, f.size);
  }

  /** Gives snapshot `to` the image of `from` (a clone): one more manifest, no chunk written. */
  copy(from: string, to: string): void {
    const m = this.manifests.get(from);
    if (!m || this.manifests.has(to)) return;
    const path = join(this.root, 'manifests', `${to}.json`);
    writeDurably(`${path}.tmp`, JSON.stringify(m));
    renameSync(`${path}.tmp`, path);
    this.addManifest(to, m);
  }

  /** Forgets snapshot `id`'s image; removes the chunks no other image names. */
  drop(id: string): void {
    const m = this.manifests.get(id);
    if (!m) return;
    rmSync(join(this.root, 'manifests', `${id}.json`), { force: true });
    this.manifests.delete(id);
    for (const h of distinct(m)) this.unref(h);
  }

  usage(id: string): ImageUsage | null {
    const m = this.manifests.get(id);
    if (!m) return null;
    let sharedBytes = 0;
    let exclusiveBytes = 0;
    for (const h of distinct(m)) {
      const c = this.chunks.get(h);
      if (!c) continue;
      if (c.refs > 1) sharedBytes += c.size;
      else exclusiveBytes += c.size;
    }
    return { logicalBytes: m.files.reduce((n, f) => n + f.size, 0), sharedBytes, exclusiveBytes };
  }

  /** What the chunks take on disk, and how many there are. */
  totals(): { chunks: number; storedBytes: number } {
    let storedBytes = 0;
    for (const c of this.chunks.values()) storedBytes += c.stored;
    return { chunks: this.chunks.size, storedBytes };
  }

  pathOf(hash: string, compressed: boolean): string {
    return join(this.root, 'chunks', hash.slice(0, 2), compressed ? `${hash}.z` : hash);
  }

  private addManifest(id: string, m: Manifest): void {
    this.manifests.set(id, m);
    for (const f of m.files) for (const [h, size] of f.chunks) if (!this.chunks.has(h)) this.chunks.set(h, { refs: 0, size, stored: 0, compressed: false });
    for (const h of distinct(m)) this.chunks.get(h)!.refs++;
  }

  /** Takes a reference to the chunk, writing it first when the store does not have it. */
  private async keep(hash: string, bytes: Buffer, level: number): Promise<void> {
    const known = this.chunks.get(hash);
    if (known) {
      known.refs++;
      await this.writing.get(hash);
      return;
    }
    const c: Chunk = { refs: 1, size: bytes.length, stored: 0, compressed: false };
    this.chunks.set(hash, c);
    const write = (async () => {
      let data = bytes;
      if (level > 0) {
        const z = await deflate(bytes, { level });
        if (z.length <= bytes.length - (bytes.length >> 3)) [data, c.compressed] = [z, true];
      }
      const path = this.pathOf(hash, c.compressed);
      mkdirSync(join(this.root, 'chunks', hash.slice(0, 2)), { recursive: true, mode: 0o700 });
      const tmp = join(this.root, 'chunks', hash.slice(0, 2), `.tmp-${hash}`);
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.write(data, 0, data.length);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      c.stored = data.length;
    })();
    this.writing.set(hash, write);
    try {
      await write;
    } catch (err) {
      rmSync(join(this.root, 'chunks', hash.slice(0, 2), `.tmp-${hash}`), { force: true });
      this.unref(hash);
      throw err;
    } finally {
      this.writing.delete(hash);
    }
  }

  private unref(hash: string): void {
    const c = this.chunks.get(hash);
    if (!c || --c.refs > 0) return;
    // Synchronous, so no ingest can take a reference between the decision and the unlink.
    this.chunks.delete(hash);
    try {
      unlinkSync(this.pathOf(hash, c.compressed));
    } catch {
      /* never written (a failed write) */
    }
  }

  private async read(hash: string, size: number, id: string): Promise<Buffer> {
    const c = this.chunks.get(hash);
    let bytes: Buffer;
    try {
      const raw = await readFile(this.pathOf(hash, c?.compressed ?? false));
      bytes = c?.compressed ? await inflate(raw) : raw;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw err;
      throw new FaasError('image_corrupt', `snapshot ${id}: chunk ${hash} of its image is missing or unreadable; restore refused`, { id, chunk: hash });
    }
    if (bytes.length !== size || createHash('sha256').update(bytes).digest('hex') !== hash) {
      throw new FaasError('image_corrupt', `snapshot ${id}: chunk ${hash} of its image is corrupt (checksum mismatch); restore refused`, { id, chunk: hash });
    }
    return bytes;
  }

  /** Reads `path` once, calling `chunk` with each chunk's bytes in order; returns the file's size. */
  private async cutFile(path: string, chunk: (bytes: Buffer) => Promise<void>): Promise<number> {
    const fh = await open(path, 'r');
    let size = 0;
    try {
      let pending: Buffer[] = [];
      let len = 0;
      for (;;) {
        const buf = Buffer.allocUnsafe(READ);
        let n = 0;
        // Fill the buffer (short reads would misplace page boundaries).
        while (n < READ) {
          const { bytesRead } = await fh.read(buf, n, READ - n, null);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        if (n === 0) break;
        size += n;
        let begin = 0;
        for (let off = 0; off + PAGE <= n; off += PAGE) {
          if (!endsChunk(buf, off, len + off + PAGE - begin)) continue;
          pending.push(buf.subarray(begin, off + PAGE));
          await chunk(Buffer.concat(pending));
          pending = [];
          len = 0;
          begin = off + PAGE;
        }
        if (begin < n) {
          pending.push(buf.subarray(begin, n));
          len += n - begin;
        }
        if (n < READ) break;
      }
      if (len > 0) await chunk(Buffer.concat(pending));
    } finally {
      await fh.close();
    }
    return size;
  }
}

function distinct(m: Manifest): Set<string> {
  const s = new Set<string>();
  for (const f of m.files) for (const [h] of f.chunks) s.add(h);
  return s;
}

function writeDurably(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** ENOSPC/EDQUOT become `storage_full`; a FaasError passes; anything else is a runtime error. */
export function storageError(err: unknown, what: string): FaasError {
  if (err instanceof FaasError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new FaasError('storage_full', `the state directory's disk is full while ${what}; delete snapshots or free disk space, then retry`, { while: what });
  }
  return new FaasError('runtime_error', `${what} failed: ${(err as Error).message}`, { while: what });
}
