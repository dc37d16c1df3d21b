// Unpacks an uploaded root-filesystem tar (plain or gzip) into a fresh directory, as root, without
// trusting the archive. The engine runs as root, so everything the archive says is checked here
// rather than left to GNU tar's defaults (which kept device nodes and followed its own symlinks):
//   - names: no absolute names, no `..`, never through a symlink the archive created earlier (the
//     destination is new and private, so the only symlinks in it are the archive's own);
//   - hard links only to entries already unpacked inside the destination;
//   - character/block devices and FIFOs are skipped (gVisor gives a sandbox its own /dev), so no
//     device node of the host's kernel ever appears in an image;
//   - setuid/setgid bits are kept (image fidelity) but never executable by other host users: the
//     images directory is 0700 (see docs/security/images.md);
//   - size: the upload and the inflated tar stream are each capped at `maxBytes`, counted as the
//     bytes flow, so a gzip bomb is stopped while it inflates, not after.
// The caller removes the destination on any error.
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync,
  symlinkSync, unlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { FaasError, invalid } from '../core/errors.js';

export interface UnpackResult {
  /** sha256 of the uploaded bytes (compressed, when gzip). */
  digest: string;
  entries: number;
  /** Entries not created: device nodes and FIFOs. */
  skipped: number;
}

export const tooLarge = (limit: number, what: string) =>
  new FaasError(
    'payload_too_large',
    `the image ${what} is over the engine's limit of ${limit} bytes (FAAS_IMAGE_MAX_BYTES): import a smaller root filesystem or raise the limit`,
    { limit },
  );

/** Counts (and optionally hashes) bytes passing through; errors once more than `limit` went by. */
class Meter extends Transform {
  bytes = 0;
  constructor(private readonly limit: number, private readonly what: string, private readonly hash?: ReturnType<typeof createHash>) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return cb(tooLarge(this.limit, this.what));
    this.hash?.update(chunk);
    cb(null, chunk);
  }
}

export async function unpackRootfs(body: Readable, dest: string, opts: { maxBytes: number }): Promise<UnpackResult> {
  const first = await peek(body);
  if (!first) throw invalid('the request body is empty: send a tar stream');
  const hash = createHash('sha256');
  const raw = new Meter(opts.maxBytes, 'upload', hash);
  const inflated = new Meter(opts.maxBytes, 'unpacked tar stream');
  const gzip = first[0] === 0x1f && first[1] === 0x8b;
  const stages: (Readable | Transform)[] = [body, raw, ...(gzip ? [createGunzip()] : []), inflated];
  const extract = tar.extract();
  const writer = new Writer(dest);

  // Node streams up to `inflated`, then tar-stream's extractor; the first error anywhere wins.
  let failure: unknown = null;
  const fail = (err: unknown) => {
    failure ??= err;
    for (const s of stages) if (s !== body) s.destroy();
    extract.destroy(err as Error);
  };
  for (let i = 0; i < stages.length - 1; i++) stages[i].pipe(stages[i + 1] as Transform);
  for (const s of stages) s.on('error', fail);
  inflated.pipe(extract as unknown as NodeJS.WritableStream);

  extract.on('entry', (header, stream, next) => {
    writer.entry(header, stream).then(() => next(), (err) => {
      stream.resume();
      next(err);
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('close', () => (failure ? reject(failure) : resolve()));
    extract.on('error', (err: Error) => {
      failure ??= err;
      reject(failure);
    });
  }).catch((err) => {
    fail(err);
    throw asApiError(failure ?? err);
  });
  if (failure) throw asApiError(failure);
  await writer.finish();
  return { digest: `sha256:${hash.digest('hex')}`, entries: writer.entries, skipped: writer.skipped };
}

/** Archive problems are the client's (400); the host's own failures are not dressed up as such. */
function asApiError(err: unknown): unknown {
  if (err instanceof FaasError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new FaasError('resource_limit', "the engine's disk is full: free space or import a smaller image", { reason: 'disk_full' });
  }
  if (code.startsWith('Z_')) return invalid(`the gzip stream is corrupt: ${msg}`);
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return invalid(`upload interrupted: ${msg}`);
  if (/^E[A-Z]+$/.test(code)) return err; // a host I/O error: 500, logged with the request id
  return invalid(`the body is not a readable tar archive: ${msg}`);
}

/** The first chunk of `body`, put back so the pipeline reads it again; null for an empty body. */
function peek(body: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      done();
      body.pause();
      body.unshift(chunk);
      resolve(chunk);
    };
    const onEnd = () => {
      done();
      resolve(null);
    };
    const onError = (err: Error) => {
      done();
      reject(new FaasError('invalid_request', `upload interrupted: ${err.message}`));
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
  });
}

type Header = tar.Header;
/** An entry's data: a streamx Readable, async-iterable. */
type EntryData = AsyncIterable<unknown> & { resume(): unknown };

/**
 * Creates the entries of one archive under `root`, one at a time, in archive order. The root is
 * new and private to root, so this class's own record of what it created is an exact model of the
 * tree: checks need no lstat, and nothing another process did can be followed. Each call is one
 * short synchronous syscall (a few µs), far cheaper than a thread-pool round trip per call.
 */
class Writer {
  entries = 0;
  skipped = 0;
  /** Relative keys (a/b/c) of the directories that exist; '' is the root. */
  private readonly dirKeys = new Set<string>(['']);
  /** Relative keys of the non-directories created so far (files, symlinks, hard links). */
  private readonly others = new Set<string>();
  /** The symlinks among them: no later entry may go through one. */
  private readonly symlinks = new Set<string>();
  /** Directory modes, owners and times are applied last: children would change them meanwhile. */
  private readonly dirs: { path: string; h: Header }[] = [];

  constructor(private readonly root: string) {}

  async entry(h: Header, data: EntryData): Promise<void> {
    this.entries++;
    await this.breathe();
    const parts = this.relParts(h.name, h.name);
    const key = parts.join('/');
    const path = join(this.root, ...parts);
    switch (h.type) {
      case 'directory':
        if (parts.length) {
          this.parents(parts);
          if (!this.dirKeys.has(key)) {
            this.clear(key, path);
            mkdirSync(path, { mode: 0o700 });
            this.dirKeys.add(key);
          }
        }
        this.dirs.push({ path, h });
        return drain(data);
      case 'file':
      case 'contiguous-file':
        return this.file(parts, key, path, h, data);
      case 'symlink': {
        if (!h.linkname || h.linkname.includes('\0')) throw invalid(`tar entry ${h.name}: empty symlink target`, { entry: h.name });
        this.place(parts, key, path, h.name);
        // The target is kept as written (absolute targets are normal in a root filesystem): it is
        // resolved by the sandbox inside its own root, never by the host.
        symlinkSync(h.linkname, path);
        this.others.add(key);
        this.symlinks.add(key);
        lchownSync(path, h.uid, h.gid);
        lutimesSync(path, h.mtime, h.mtime);
        return drain(data);
      }
      case 'link': {
        const target = this.relParts(h.linkname ?? '', h.name).join('/');
        if (!this.others.has(target)) {
          throw invalid(`tar entry ${h.name}: hard link target ${h.linkname} is not an earlier file of the archive`, { entry: h.name });
        }
        this.place(parts, key, path, h.name);
        // link(2) never follows a symlink target: at worst it links the archive's symlink itself.
        linkSync(join(this.root, target), path);
        this.others.add(key);
        if (this.symlinks.has(target)) this.symlinks.add(key);
        return drain(data);
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.skipped++;
        return drain(data);
      default:
        throw invalid(`tar entry ${h.name}: unsupported entry type ${h.type ?? 'unknown'} (sparse or vendor-specific); re-create the archive with plain entries`, { entry: h.name });
    }
  }

  /** Applies directory metadata deepest first, once every entry is in place. */
  async finish(): Promise<void> {
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      await this.breathe();
      const { path, h } = this.dirs[i];
      chownSync(path, h.uid, h.gid);
      chmodSync(path, h.mode & 0o7777);
      utimesSync(path, h.mtime, h.mtime);
    }
  }

  private lastYield = performance.now();

  /**
   * Entries arrive as resolved promises, which run as microtasks: without this, a buffered archive
   * is unpacked in one turn of the event loop and every other request waits. Yields every 5 ms.
   */
  private async breathe(): Promise<void> {
    if (performance.now() - this.lastYield < 5) return;
    await new Promise((r) => setImmediate(r));
    this.lastYield = performance.now();
  }

  private async file(parts: string[], key: string, path: string, h: Header, data: EntryData): Promise<void> {
    if (!parts.length) throw invalid(`tar entry ${h.name}: a file cannot replace the root directory`, { entry: h.name });
    this.place(parts, key, path, h.name);
    // O_EXCL|O_NOFOLLOW: a fresh inode, never a write through something already at that name.
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    this.others.add(key);
    try {
      let written = 0;
      for await (const chunk of data) {
        const buf = chunk as Buffer;
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
        written += buf.length;
        await this.breathe();
      }
      if (written !== h.size) throw invalid(`tar entry ${h.name}: the archive ends inside it`, { entry: h.name });
      // chown first: a chown clears setuid/setgid, the chmod puts the archive's bits back.
      fchownSync(fd, h.uid, h.gid);
      fchmodSync(fd, h.mode & 0o7777);
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Makes room for a non-directory entry: parents exist, nothing is at `path`. */
  private place(parts: string[], key: string, path: string, name: string): void {
    this.parents(parts);
    if (this.dirKeys.has(key)) throw invalid(`tar entry ${name} would replace a directory of the archive`, { entry: name });
    this.clear(key, path);
  }

  /** Removes the non-directory an earlier entry of the same name left (archives may repeat names). */
  private clear(key: string, path: string): void {
    if (!this.others.has(key)) return;
    unlinkSync(path);
    this.others.delete(key);
    this.symlinks.delete(key);
  }

  /** Creates missing parent directories (0755 until the archive says otherwise). */
  private parents(parts: string[]): void {
    for (let i = 1; i < parts.length; i++) {
      const key = parts.slice(0, i).join('/');
      if (this.dirKeys.has(key)) continue;
      if (this.others.has(key)) throw invalid(`tar entry ${parts.join('/')}: ${key} is not a directory`, { entry: parts.join('/') });
      mkdirSync(join(this.root, key), { mode: 0o755 });
      this.dirKeys.add(key);
    }
  }

  /**
   * An archive name as path components relative to the root. Refuses absolute names, `..` and
   * any name whose parent is a symlink of the archive (it would be followed on the host).
   */
  private relParts(name: string, entry: string): string[] {
    if (name.startsWith('/')) throw invalid(`tar entry ${entry}: absolute name ${name}; archive the root filesystem with relative names (tar -C root .)`, { entry });
    if (name.includes('\0')) throw invalid(`tar entry ${entry}: NUL in a name`, { entry });
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw invalid(`tar entry ${entry}: ${name} contains '..', which would land outside the image`, { entry });
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join('/'))) {
        throw invalid(`tar entry ${entry}: ${name} goes through the symlink ${parts.slice(0, i).join('/')} of the archive`, { entry });
      }
    }
    return parts;
  }
}

/** Reads an entry's data to its end (tar-stream waits for it before the next header). */
async function drain(data: EntryData): Promise<void> {
  for await (const _ of data) {
    /* skipped */
  }
}

/** Removes a partly unpacked image. */
export function removeTree(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
