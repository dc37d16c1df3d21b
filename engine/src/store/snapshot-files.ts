// Checkpoint images on local disk: <root>/<snapshotId>/{checkpoint.img,pages.img,pages_meta.img}.
// A checkpoint is written to a temporary directory and renamed into place only once complete, so a
// crash or a full disk never leaves a half-written image under a snapshot's name; the snapshot's
// row stays `creating` until the image is in place (and, for a boot, checksummed). The checksum
// (sha256 over every file's name and bytes) is verified before an image is trusted; images near a
// full disk have been seen silently truncated.
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FaasError } from '../core/errors.js';

export class SnapshotFiles {
  /** snapshotId → stat signature of the files at their last successful verification. */
  private readonly verified = new Map<string, string>();

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
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
    rmSync(this.dirOf(id), { recursive: true, force: true });
    rmSync(this.tempDirOf(id), { recursive: true, force: true });
  }

  /** Snapshot ids with a directory on disk, and leftover temp dirs. */
  scan(): { ids: string[]; temps: string[] } {
    const names = readdirSync(this.root);
    return {
      ids: names.filter((n) => n.startsWith('snap_')),
      temps: names.filter((n) => n.startsWith('.tmp-')).map((n) => n.slice(5)),
    };
  }
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
