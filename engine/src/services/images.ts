// Images: immutable base root filesystems. The default image is built by scripts/ into a cache
// outside the repo and registered here by reference; imported images are unpacked under the
// engine's state directory. Nothing may change an image's files once a snapshot uses them.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { conflict, FaasError, invalid, notFound } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { newId } from '../core/ids.js';
import { nowIso, type Image, type Metadata, type Page } from '../core/types.js';
import type { ImageRepo } from '../store/sqlite/repos.js';

export const DEFAULT_IMAGE_NAME = 'debian-bookworm';

export class ImageService {
  constructor(private readonly repo: ImageRepo, private readonly events: EventBus, private readonly imagesDir: string) {
    mkdirSync(imagesDir, { recursive: true });
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

  /** Unpacks a root-filesystem tar (plain or gzip) streamed in the request body. */
  async import(name: string, body: Readable, metadata: Metadata = {}, owner: string | null = null): Promise<Image> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/.test(name)) throw invalid('name must be 1-64 of [a-zA-Z0-9._-]', { name });
    if (this.repo.byName(name)) throw conflict(`an image named ${name} already exists; pick another name`, { name });
    const id = newId('img');
    const tmp = join(this.imagesDir, `.tmp-${id}`);
    const rootfs = join(tmp, 'rootfs');
    mkdirSync(rootfs, { recursive: true });
    try {
      const digest = await untar(body, rootfs);
      if (!existsSync(join(rootfs, 'bin')) && !existsSync(join(rootfs, 'usr'))) {
        throw invalid('the tar does not look like a root filesystem (no /bin or /usr)');
      }
      prepareRootfs(rootfs);
      const final = join(this.imagesDir, id);
      renameSync(tmp, final);
      const img: Image = {
        id, name, source: 'tar', size: await duBytes(join(final, 'rootfs')), digest, metadata, createdAt: nowIso(), owner, rootfs: join(final, 'rootfs'),
      };
      this.repo.insert(img);
      this.events.publish('image.imported', id, { name });
      return img;
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }
}

/** What every image needs to host faas-agent and resolve names without stalls. */
function prepareRootfs(rootfs: string): void {
  mkdirSync(join(rootfs, '.faas'), { recursive: true });
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  if (!existsSync(join(rootfs, 'etc/hosts'))) writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  if (!existsSync(join(rootfs, 'etc/resolv.conf'))) {
    const host = readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => /^nameserver/.test(l) && !/127\.|::1/.test(l));
    writeFileSync(join(rootfs, 'etc/resolv.conf'), [...host, 'options timeout:1 attempts:1', ''].join('\n'));
  }
}

/** Streams a tar into `dest` with GNU tar (which refuses `..` members and strips leading `/`). */
function untar(body: Readable, dest: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let first = true;
    let child: ReturnType<typeof spawn> | null = null;
    let err = '';
    let bytes = 0;
    const startTar = (gzip: boolean) => {
      child = spawn('tar', ['-x', ...(gzip ? ['-z'] : []), '--numeric-owner', '-C', dest, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => (err += d));
      child.on('close', (code) => {
        if (code === 0 && bytes > 0) resolve(`sha256:${hash.digest('hex')}`);
        else reject(invalid(bytes === 0 ? 'the request body is empty: send a tar stream' : `the tar could not be unpacked: ${err.trim().slice(0, 500)}`));
      });
      child.stdin!.on('error', () => undefined);
    };
    body.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        startTar(chunk[0] === 0x1f && chunk[1] === 0x8b);
      }
      bytes += chunk.length;
      hash.update(chunk);
      if (!child!.stdin!.write(chunk)) {
        body.pause();
        child!.stdin!.once('drain', () => body.resume());
      }
    });
    body.on('end', () => {
      if (first) return reject(invalid('the request body is empty: send a tar stream'));
      child!.stdin!.end();
    });
    body.on('error', (e) => {
      (child as ReturnType<typeof spawn> | null)?.kill('SIGKILL');
      reject(new FaasError('invalid_request', `upload interrupted: ${e.message}`));
    });
  });
}

function duBytes(dir: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('du', ['-sb', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('close', () => resolve(Number(out.split(/\s/)[0]) || 0));
  });
}
