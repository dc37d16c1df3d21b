// Checkpoint images on local disk: <root>/<snapshotId>/{checkpoint.img,pages.img,pages_meta.img}.
// A checkpoint is written to a temporary directory and renamed into place only once complete, so a
// crash or a full disk never leaves a half-written image under a snapshot's name; the snapshot's
// row stays `creating` until the image is in place (and, for a boot, checksummed). The checksum
// (sha256 over every file's name and bytes) is verified before an image is trusted; images near a
// full disk have been seen silently truncated.
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FaasError } from '../core/errors.js';
import { DEFAULT_CACHE_CONFIG, effective, toEvict, type CacheConfig, type SnapshotCachePolicy } from './images/image-cache.js';
import { storageError, type ImageStore, type ImageUsage } from './images/image-store.js';

/** Disk use of one snapshot's image (the API's `storage`). */
export interface SnapshotStorage extends Partial<ImageUsage> {
  deduplicated: boolean;
  materialized: boolean;
  /** Bytes of the whole files in snapshots/<id>/ (0 when evicted; hard links of clones counted in each). */
  materializedBytes: number;
}

export class SnapshotFiles {
  /** snapshotId → stat signature of the files at their last successful verification. */
  private readonly verified = new Map<string, string>();

  /** Last restore (or making) of each image, for LRU eviction (ms since the epoch). */
  private readonly lastUsed = new Map<string, number>();
  private readonly assembling = new Map<string, Promise<void>>();
  /** Set by the composition root: the snapshot's own cache policy (migration 15). */
  policyOf: (id: string) => SnapshotCachePolicy | undefined = () => undefined;
  /** Set by the composition root: whether a restore or checkpoint holds the snapshot now. */
  inUse: (id: string) => boolean = () => false;

  constructor(
    readonly root: string,
    /** The deduplicated store (docs/storage.md); null keeps every image whole, as before it. */
    readonly store: ImageStore | null = null,
    readonly cache: CacheConfig = DEFAULT_CACHE_CONFIG,
  ) {
    mkdirSync(root, { recursive: true });
  }

  /**
   * Puts a sealed image into the deduplicated store (unless its policy says not to), then evicts
   * what the cache policy no longer keeps. Runs in quiet moments (SnapshotService.sealLoop).
   */
  async storeImage(id: string): Promise<void> {
    if (!this.store) return;
    const policy = effective(this.cache, this.policyOf(id));
    if (!policy.deduplication || this.store.has(id) || !existsSync(this.dirOf(id))) return;
    this.lastUsed.set(id, this.lastUsed.get(id) ?? Date.now());
    await this.store.ingest(id, this.dirOf(id), policy.compressionLevel);
    this.evict();
  }

  /** Removes the materialized copies of stored images that the cache policy does not keep. */
  evict(now = Date.now()): string[] {
    if (!this.store) return [];
    const entries = [];
    for (const id of this.store.ids()) {
      const dir = this.dirOf(id);
      if (this.inUse(id) || this.assembling.has(id) || !existsSync(dir)) continue;
      entries.push({ id, bytes: dirBytes(dir), lastUsed: this.lastUsed.get(id) ?? statSync(dir).mtimeMs, policy: effective(this.cache, this.policyOf(id)) });
    }
    const out = toEvict(entries, this.cache.cacheSize, now);
    for (const id of out) {
      this.verified.delete(id);
      rmSync(this.dirOf(id), { recursive: true, force: true });
    }
    return out;
  }

  /** Makes sure the image's files are in place (assembling them from the store if evicted). */
  async ensure(id: string): Promise<void> {
    this.lastUsed.set(id, Date.now());
    const dir = this.dirOf(id);
    if (existsSync(dir) || !this.store?.has(id)) return;
    let p = this.assembling.get(id);
    if (!p) {
      p = this.store.materialize(id, dir).then(() => {
        // Every chunk was checked against its hash while assembling: the files are the stored ones.
        this.verified.set(id, signature(dir));
      });
      this.assembling.set(id, p);
      void p.catch(() => undefined).finally(() => this.assembling.delete(id));
    }
    await p;
  }

  /**
   * One file of an image: from its directory when materialized, else from the store's chunks
   * (no assembly of the rest). Null when the image has no such file.
   */
  async readFile(id: string, name: string): Promise<Buffer | null> {
    try {
      return await readFile(join(this.dirOf(id), name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return (await this.store?.readFile(id, name)) ?? null;
  }

  /** Bytes free to the engine on the state directory's filesystem. */
  freeBytes(): number {
    const st = statfsSync(this.root);
    return st.bavail * st.bsize;
  }

  /**
   * Refuses (507 storage_full) before anything is written when the disk has less room than an
   * image of `expected` bytes plus a margin: a checkpoint that runs out of space midway costs the
   * paused instance the time it took and leaves nothing.
   */
  assertRoom(id: string, expected: number): void {
    const need = Math.max(expected, 0) + MIN_FREE;
    const free = this.freeBytes();
    if (free < need) {
      throw new FaasError('storage_full', `not enough free disk for snapshot ${id}'s image (${free} bytes free, about ${need} needed); delete snapshots or free disk space, then retry`, {
        freeBytes: free,
        neededBytes: need,
      });
    }
  }

  /** A checkpoint's failure as the caller should see it: a full disk becomes storage_full. */
  explain(err: unknown): unknown {
    if (err instanceof FaasError && err.code !== 'runtime_error') return err;
    const msg = String((err as Error)?.message ?? '');
    const code = (err as NodeJS.ErrnoException)?.code;
    // runsc reports its write error as text; an almost empty disk confirms it.
    if (code === 'ENOSPC' || /no space left on device/i.test(msg) || this.freeBytes() < 1024 * 1024) {
      return storageError(Object.assign(new Error(msg), { code: 'ENOSPC' }), 'writing a checkpoint image');
    }
    return err;
  }

  storage(id: string): SnapshotStorage {
    const usage = this.store?.usage(id) ?? null;
    const dir = this.dirOf(id);
    const materialized = existsSync(dir);
    return { deduplicated: usage !== null, materialized, materializedBytes: materialized ? dirBytes(dir) : 0, ...(usage ?? {}) };
  }

  dirOf(id: string): string {
    return join(this.root, id);
  }

  tempDirOf(id: string): string {
    return join(this.root, `.tmp-${id}`);
  }

  /** Moves a freshly written image to its final place and checksums it there. */
  async commit(id: string): Promise<{ checksum: string; size: number; dir: string }> {
    const { size, dir } = await this.place(id);
    const checksum = await this.seal(id);
    if (!checksum) throw new FaasError('runtime_error', `snapshot ${id}: its image files vanished before they were checksummed`, { id, dir });
    return { checksum, size, dir };
  }

  /**
   * Moves a complete image to its final place without checksumming it yet (see SnapshotService:
   * checkpoints of running instances are sealed in a quiet moment). Until then its stat signature
   * from this moment stands in for the checksum.
   */
  async place(id: string): Promise<{ size: number; dir: string }> {
    const dir = this.dirOf(id);
    await rename(this.tempDirOf(id), dir);
    this.verified.set(id, signature(dir));
    const size = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    return { size, dir };
  }

  /** The checksum of an image in its final place, or null if it is gone (deleted meanwhile). */
  async seal(id: string): Promise<string | null> {
    const dir = this.dirOf(id);
    const sig = this.verified.get(id);
    let result: { checksum: string };
    try {
      result = await checksumDir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    // Changed while it was read (a new signature): what was hashed is not what was placed.
    if (sig !== undefined && sig !== signature(dir)) throw new FaasError('runtime_error', `snapshot ${id}: image files changed before they were checksummed`, { id });
    return result.checksum;
  }

  /** Throws unless the files still match the recorded checksum. Cheap when nothing changed. An image
   *  not checksummed yet (checksum '') is trusted while its files are as placed. */
  async verify(id: string, dir: string, checksum: string): Promise<void> {
    await this.ensure(id);
    let sig: string;
    try {
      sig = signature(dir);
    } catch {
      throw new FaasError('runtime_error', `snapshot ${id}: its image files are missing`, { id, dir });
    }
    if (this.verified.get(id) === sig) return;
    if (checksum === '') {
      throw new FaasError('runtime_error', `snapshot ${id}: image files changed before they were checksummed; restore refused`, { id, dir });
    }
    const actual = await checksumDir(dir);
    if (actual.checksum !== checksum) {
      throw new FaasError('runtime_error', `snapshot ${id}: image files are corrupt (checksum mismatch); restore refused`, {
        id,
        expected: checksum,
        actual: actual.checksum,
      });
    }
    this.verified.set(id, sig);
  }

  /**
   * Gives snapshot `to` the image of `from` without copying it: hard links in a temp dir renamed
   * into place. Image files are never written once placed (restores only read them), so sharing
   * them is safe, and removing either directory leaves the other's links whole. The names are the
   * same, so the checksum is the same; the clone is trusted exactly when `from` is (same inodes,
   * sizes and times: the same stat signature).
   */
  async link(from: string, to: string): Promise<{ dir: string }> {
    await this.ensure(from);
    this.store?.copy(from, to);
    const src = this.dirOf(from);
    const tmp = this.tempDirOf(to);
    mkdirSync(tmp, { mode: 0o700 });
    for (const f of readdirSync(src)) linkSync(join(src, f), join(tmp, f));
    const dir = this.dirOf(to);
    await rename(tmp, dir);
    const sig = signature(dir);
    if (this.verified.get(from) === sig) this.verified.set(to, sig);
    return { dir };
  }

  remove(id: string): void {
    this.verified.delete(id);
    this.lastUsed.delete(id);
    this.store?.drop(id);
    rmSync(this.dirOf(id), { recursive: true, force: true });
    rmSync(this.tempDirOf(id), { recursive: true, force: true });
  }

  /** Removes a leftover of scan(): an assembly an engine was killed in the middle of. */
  removeLeftover(name: string): void {
    if (name.endsWith('.mat')) rmSync(join(this.root, name), { recursive: true, force: true });
  }

  /** Snapshot ids with a directory on disk or an image in the store, and leftover temp dirs. */
  scan(): { ids: string[]; temps: string[]; partial: string[] } {
    const names = readdirSync(this.root);
    const ids = new Set(names.filter((n) => n.startsWith('snap_')));
    for (const id of this.store?.ids() ?? []) ids.add(id);
    return {
      ids: [...ids],
      temps: names.filter((n) => n.startsWith('.tmp-')).map((n) => n.slice(5)),
      // Assemblies an engine was killed in the middle of.
      partial: names.filter((n) => n.endsWith('.mat')),
    };
  }
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

function signature(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((f) => {
      const st = statSync(join(dir, f), { bigint: true });
      return `${f}:${st.size}:${st.mtimeNs}:${st.ino}`;
    })
    .join('|');
}

const CHECKSUM_CHUNK = 8 << 20;
/** Free space a new image must leave: the database, logs and runsc's own files need some. */
const MIN_FREE = 16 * 1024 * 1024;

export async function checksumDir(dir: string): Promise<{ checksum: string; size: number }> {
  const hash = createHash('sha256');
  // Few large reads: a stream's many small turns of the event loop cost more than the hashing.
  const buf = Buffer.allocUnsafe(CHECKSUM_CHUNK);
  let size = 0;
  for (const f of readdirSync(dir).sort()) {
    hash.update(`${f}\0`);
    const fh = await open(join(dir, f), 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
    hash.update('\0');
  }
  return { checksum: `sha256:${hash.digest('hex')}`, size };
}
