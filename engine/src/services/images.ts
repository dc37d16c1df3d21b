// Images: immutable base root filesystems. The default image is built by scripts/ into a cache
// outside the repo and registered here by reference; imported images are unpacked under the
// engine's state directory. Nothing may change an image's files once a snapshot uses them, so an
// image is deleted only once no snapshot was made from it.
//
// Host safety (docs/security/images.md): images live in a directory only root can enter (0700),
// imports are unpacked by store/rootfs-unpack.ts (no device nodes, no path escapes, size-capped),
// and a partly unpacked or half-deleted image never survives: `.tmp-*`/`.del-*` dirs and dirs
// without a record are removed when the engine starts.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { conflict, FaasError, invalid, notFound } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import { nowIso, type Image, type Metadata, type Page } from '../core/types.js';
import { removeTree, tooLarge, unpackRootfs } from '../store/rootfs-unpack.js';
import type { ImageRepo } from '../store/sqlite/repos.js';

/** Which snapshots were made from an image (any state): they pin its files. */
export interface ImageUsers {
  idsOfImage(imageId: string): string[];
}

export interface ImageLimits {
  /** Cap on the upload and on the inflated tar stream of one import (FAAS_IMAGE_MAX_BYTES). */
  maxBytes: number;
}

export const DEFAULT_IMAGE_NAME = 'debian-bookworm';

export class ImageService {
  constructor(
    private readonly repo: ImageRepo,
    private readonly events: EventBus,
    private readonly imagesDir: string,
    private readonly users: ImageUsers,
    readonly limits: ImageLimits,
  ) {
    mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
    chmodSync(imagesDir, 0o700); // also an images dir made by an older engine
    this.sweep();
  }

  get(id: string): Image {
    const img = this.find(id);
    if (!img) throw notFound('image', id);
    return img;
  }

  /** By id or name; undefined when there is none. */
  find(id: string): Image | undefined {
    return this.repo.get(id) ?? this.repo.byName(id);
  }

  list(q: Parameters<ImageRepo['list']>[0]): Page<Image> {
    return this.repo.list(q);
  }

  setMetadata(id: string, metadata: Metadata): Image {
    const img = this.get(id);
    this.repo.setMetadata(img.id, metadata);
    return this.get(img.id);
  }

  default(): Image {
    const img = this.repo.byName(DEFAULT_IMAGE_NAME);
    if (!img) throw new FaasError('image_not_found', 'the default image is not registered: run scripts/install.sh', { name: DEFAULT_IMAGE_NAME });
    return img;
  }

  /** Registers the cached default image (a directory with rootfs/ and .complete) once. */
  async registerDefault(cacheDir: string): Promise<Image | null> {
    const rootfs = join(cacheDir, 'rootfs');
    if (!existsSync(join(cacheDir, '.complete'))) return null;
    // Only root enters an image: its setuid files and device nodes (debootstrap makes /dev/null
    // and friends) are for the sandbox. The install does this too; an older install did not.
    chmodSync(cacheDir, 0o700);
    const existing = this.repo.all().find((i) => i.rootfs === rootfs);
    if (existing) return existing;
    const stamp = readFileSync(join(cacheDir, '.complete'), 'utf8').trim();
    const img: Image = {
      id: newId('img'),
      name: DEFAULT_IMAGE_NAME,
      source: 'debootstrap',
      size: await duBytes(rootfs),
      digest: `sha256:${createHash('sha256').update(`${rootfs}\0${stamp}`).digest('hex')}`,
      metadata: { os: 'debian', release: 'bookworm' },
      createdAt: nowIso(),
      owner: null, // shared: every key may build on the default image
      rootfs,
    };
    this.repo.insert(img);
    return img;
  }

  /**
   * Unpacks a root-filesystem tar (plain or gzip) streamed in the request body. `declaredBytes`
   * (Content-Length) lets an oversized upload be refused before a byte of it is read.
   */
  async import(name: string, body: Readable, metadata: Metadata = {}, owner: string | null = null, declaredBytes?: number): Promise<Image> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/.test(name)) throw invalid('name must be 1-64 of [a-zA-Z0-9._-]', { name });
    this.assertNameFree(name);
    if (declaredBytes !== undefined && declaredBytes > this.limits.maxBytes) throw tooLarge(this.limits.maxBytes, 'upload');
    const id = newId('img');
    const tmp = join(this.imagesDir, `.tmp-${id}`);
    const rootfs = join(tmp, 'rootfs');
    mkdirSync(tmp, { mode: 0o700 });
    mkdirSync(rootfs, { mode: 0o755 });
    try {
      const { digest } = await unpackRootfs(body, rootfs, { maxBytes: this.limits.maxBytes });
      if (!lstatOrNull(join(rootfs, 'bin')) && !lstatOrNull(join(rootfs, 'usr'))) {
        throw invalid('the tar does not look like a root filesystem (no /bin or /usr)');
      }
      prepareRootfs(rootfs);
      const final = join(this.imagesDir, id);
      const size = await duBytes(rootfs);
      this.assertNameFree(name); // a concurrent import of the same name may have finished meanwhile
      renameSync(tmp, final);
      const img: Image = { id, name, source: 'tar', size, digest, metadata, createdAt: nowIso(), owner, rootfs: join(final, 'rootfs') };
      this.repo.insert(img);
      this.events.publish('image.imported', id, { name }, owner);
      return img;
    } catch (err) {
      await removeTree(tmp);
      throw err;
    }
  }

  /**
   * Deletes an imported image: the record first (in the same turn as the check, so no snapshot can
   * start from it in between), then its files. Refused while snapshots were made from it.
   */
  async delete(idOrName: string): Promise<void> {
    const img = this.get(idOrName);
    if (img.name === DEFAULT_IMAGE_NAME || img.source !== 'tar') {
      throw conflict(`image ${img.id} is the default image, managed by scripts/install.sh; it cannot be deleted`, { id: img.id, reason: 'default_image' });
    }
    const snapshots = this.users.idsOfImage(img.id);
    if (snapshots.length) {
      const shown = snapshots.slice(0, 10).join(', ') + (snapshots.length > 10 ? `, … (${snapshots.length} in all)` : '');
      throw conflict(
        `image ${img.id} is used by ${snapshots.length} snapshot(s): ${shown}; delete them first (DELETE /v1/snapshots/{id}?force=true also stops their instances), then delete the image`,
        { id: img.id, snapshots },
      );
    }
    this.repo.delete(img.id);
    this.events.publish('image.deleted', img.id, { name: img.name }, img.owner);
    // Only ever remove what imports unpack here, by id (never the cache's default image; and the
    // recorded path may predate a move of the state dir).
    const doomed = join(this.imagesDir, `.del-${img.id}`);
    try {
      renameSync(join(this.imagesDir, img.id), doomed);
    } catch {
      return; // already gone
    }
    await removeTree(doomed);
  }

  private assertNameFree(name: string): void {
    if (this.repo.byName(name)) throw conflict(`an image named ${name} already exists; pick another name`, { name });
  }

  /** Removes what a crash left: unfinished imports and deletions, and dirs without a record. */
  private sweep(): void {
    for (const entry of readdirSync(this.imagesDir)) {
      // By id, not by recorded path: a state dir that was moved keeps its images.
      if (entry.startsWith('.tmp-') || entry.startsWith('.del-') || (entry.startsWith('img_') && !this.repo.get(entry))) {
        rmSync(join(this.imagesDir, entry), { recursive: true, force: true });
      }
    }
  }
}

/**
 * What every image needs to host faas-agent and resolve names without stalls. Never follows a
 * symlink of the archive: `etc/hosts -> /x` must not make the engine write /x on the host.
 */
function prepareRootfs(rootfs: string): void {
  for (const d of ['.faas', 'etc', 'tmp']) {
    const st = lstatOrNull(join(rootfs, d));
    if (!st) {
      mkdirSync(join(rootfs, d));
      chmodSync(join(rootfs, d), d === 'tmp' ? 0o1777 : 0o755);
    }
    if (st && !st.isDirectory()) throw invalid(`/${d} in the image must be a directory, not a ${st.isSymbolicLink() ? 'symlink' : 'file'}`, { path: `/${d}` });
  }
  // 'wx' is O_CREAT|O_EXCL, which never follows a symlink; existing entries are the image's own.
  if (!lstatOrNull(join(rootfs, 'etc/hosts'))) writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n', { flag: 'wx' });
  if (!lstatOrNull(join(rootfs, 'etc/resolv.conf'))) {
    const host = readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => /^nameserver/.test(l) && !/127\.|::1/.test(l));
    writeFileSync(join(rootfs, 'etc/resolv.conf'), [...host, 'options timeout:1 attempts:1', ''].join('\n'), { flag: 'wx' });
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

function duBytes(dir: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('du', ['-sb', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('close', () => resolve(Number(out.split(/\s/)[0]) || 0));
  });
}
