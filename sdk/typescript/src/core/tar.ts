// Packs a local file tree into a tar stream and unpacks one into a local directory, for the files
// routes (`PUT/GET …/files/tar`). Unpacking refuses entries that would land outside the target.
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, realpath, symlink, utimes, chmod } from 'node:fs/promises';
import { join, resolve, sep, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { FaaSError } from './errors.js';

/** A tar of the contents of `dir` (names relative to it), streamed as it is read. */
export function packDirectory(dir: string): Readable {
  const pack = tar.pack();
  const addTree = async (relative: string): Promise<void> => {
    const absolute = join(dir, relative);
    for (const name of (await readdir(absolute)).sort()) {
      const entryRelative = relative ? `${relative}/${name}` : name;
      const entryPath = join(dir, entryRelative);
      const info = await lstat(entryPath);
      const header = { name: entryRelative, mode: info.mode & 0o7777, mtime: info.mtime };
      if (info.isDirectory()) {
        pack.entry({ ...header, type: 'directory' });
        await addTree(entryRelative);
      } else if (info.isSymbolicLink()) {
        pack.entry({ ...header, type: 'symlink', linkname: await readlink(entryPath) });
      } else if (info.isFile()) {
        await new Promise<void>((done, fail) => {
          const entry = pack.entry({ ...header, type: 'file', size: info.size }, (err) => (err ? fail(err) : done()));
          createReadStream(entryPath).on('error', fail).pipe(entry as unknown as NodeJS.WritableStream);
        });
      }
      // Sockets, fifos and devices are skipped: they cannot be recreated by an upload.
    }
  };
  addTree('').then(
    () => pack.finalize(),
    (err: Error) => pack.destroy(err),
  );
  return Readable.from(pack as AsyncIterable<Buffer>);
}

function insideTarget(root: string, name: string): string {
  const target = resolve(root, name);
  if (name.startsWith('/') || (target !== root && !target.startsWith(root + sep))) {
    throw new FaaSError(`refusing tar entry ${JSON.stringify(name)}: it would land outside ${root}`, { code: 'invalid_request' });
  }
  return target;
}

/** Guards against an earlier symlink entry redirecting a later entry outside the root. */
async function parentInsideRoot(root: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  if (target === root) return; // the top entry itself: `destination` as the caller named it
  const realRoot = await realpath(root);
  const realParent = await realpath(dirname(target));
  if (realParent !== realRoot && !realParent.startsWith(realRoot + sep)) {
    throw new FaaSError(`refusing tar entry ${JSON.stringify(target)}: its directory resolves outside ${root}`, { code: 'invalid_request' });
  }
}

/**
 * Unpacks a tar whose entries are `<top>/…` (the engine's download format) so that `<top>` itself
 * becomes `destination`: a file is written to `destination`, a directory's contents go under it.
 */
export async function unpackInto(body: ReadableStream<Uint8Array>, destination: string): Promise<{ files: number; bytes: number }> {
  const root = resolve(destination);
  const extract = tar.extract();
  const source = Readable.fromWeb(body as never);
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as NodeJS.WritableStream);
  let files = 0;
  let bytes = 0;
  for await (const entry of extract) {
    const header = entry.header;
    const slash = header.name.indexOf('/');
    const rest = slash < 0 ? '' : header.name.slice(slash + 1).replace(/\/+$/, '');
    const target = rest ? insideTarget(root, rest) : root;
    if (header.type === 'directory') {
      await mkdir(target, { recursive: true, mode: header.mode ?? 0o755 });
      entry.resume();
    } else if (header.type === 'symlink') {
      await parentInsideRoot(root, target);
      await symlink(header.linkname ?? '', target).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      entry.resume();
    } else if (header.type === 'file' || header.type === 'contiguous-file') {
      await parentInsideRoot(root, target);
      await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(target, { mode: header.mode ?? 0o644 }));
      if (header.mode !== undefined) await chmod(target, header.mode & 0o7777);
      if (header.mtime) await utimes(target, header.mtime, header.mtime);
      files += 1;
      bytes += header.size ?? 0;
    } else {
      entry.resume();
    }
  }
  return { files, bytes };
}
