// client.files (target first, as in the SDK specification) and instance.files (bound to one
// instance). Whole trees move as tar streams; single files as raw bodies.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type * as api from '../generated/api.gen.js';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import { packDirectory, unpackInto } from '../core/tar.js';

export type FileInfo = api.FileInfo;
export type TransferResult = api.TransferResult;
export type FileContent = string | Uint8Array | Readable;

export interface WriteFileOptions extends RequestOptions {
  /** Octal permission bits, e.g. '0644' or '755'. */
  mode?: string;
  /** Create missing parent directories (default true). */
  parents?: boolean;
}

export class FileOperations {
  constructor(private readonly http: HttpTransport) {}

  private path(target: IdRef, route: string): string {
    return `/v1/instances/${seg(target)}/files/${route}`;
  }

  list(target: IdRef, path: string, options?: RequestOptions): Promise<FileInfo[]> {
    return this.http.request<api.FileList>({ ...options, method: 'GET', path: this.path(target, 'list'), query: { path } }).then((r) => r.data);
  }

  stat(target: IdRef, path: string, options?: RequestOptions): Promise<FileInfo> {
    return this.http.request({ ...options, method: 'GET', path: this.path(target, 'stat'), query: { path } });
  }

  async mkdir(target: IdRef, path: string, options: RequestOptions & { parents?: boolean; mode?: number } = {}): Promise<FileInfo> {
    const { parents, mode, ...requestOptions } = options;
    return this.http.request({ ...requestOptions, method: 'POST', path: this.path(target, 'mkdir'), json: { path, parents, mode } });
  }

  async remove(target: IdRef, path: string, options: RequestOptions & { recursive?: boolean } = {}): Promise<void> {
    const { recursive, ...requestOptions } = options;
    await this.http.request({ ...requestOptions, method: 'POST', path: this.path(target, 'remove'), json: { path, recursive } });
  }

  rename(target: IdRef, from: string, to: string, options?: RequestOptions): Promise<FileInfo> {
    return this.http.request({ ...options, method: 'POST', path: this.path(target, 'rename'), json: { from, to } });
  }

  /** The file's bytes. */
  async read(target: IdRef, path: string, options?: RequestOptions): Promise<Buffer> {
    const response = await this.http.requestRaw({ ...options, method: 'GET', path: this.path(target, 'read'), query: { path } });
    return Buffer.from(await response.arrayBuffer());
  }

  async readText(target: IdRef, path: string, options?: RequestOptions): Promise<string> {
    return (await this.read(target, path, options)).toString('utf8');
  }

  /** Replaces (or creates) the file with `content`. A stream is sent once and not retried. */
  write(target: IdRef, path: string, content: FileContent, options: WriteFileOptions = {}): Promise<FileInfo> {
    const { mode, parents, ...requestOptions } = options;
    const common = { ...requestOptions, method: 'PUT' as const, path: this.path(target, 'write'), query: { path, mode, parents } };
    if (typeof content === 'string' || content instanceof Uint8Array) return this.http.request({ ...common, body: () => content });
    return this.http.request({ ...common, oneShotBody: content });
  }

  /** Copies a local file or directory to `remotePath` (a directory's contents land under it). */
  async upload(target: IdRef, localPath: string, remotePath: string, options?: RequestOptions): Promise<TransferResult> {
    const info = await stat(localPath);
    if (!info.isDirectory()) {
      const written = await this.write(target, remotePath, createReadStream(localPath), { ...options, mode: (info.mode & 0o777).toString(8).padStart(4, '0') });
      return { files: 1, bytes: written.size };
    }
    return this.http.request({
      ...options,
      method: 'PUT',
      path: this.path(target, 'tar'),
      query: { path: remotePath },
      contentType: 'application/x-tar',
      body: () => packDirectory(localPath),
    });
  }

  /** Copies a remote file or directory to `localPath` (which becomes that file or directory). */
  async download(target: IdRef, remotePath: string, localPath: string, options?: RequestOptions): Promise<TransferResult> {
    const response = await this.http.requestRaw({ ...options, method: 'GET', path: this.path(target, 'tar'), query: { path: remotePath } });
    return unpackInto(response.body!, localPath);
  }

  /** Copies `path` from `source` into the directory `toPath` (default: the same parent) of `destination`. */
  copy(source: IdRef, destination: IdRef, path: string, options: RequestOptions & { toPath?: string } = {}): Promise<TransferResult> {
    const { toPath, ...requestOptions } = options;
    return this.http.request({ ...requestOptions, method: 'POST', path: this.path(source, 'copy'), json: { path, toInstanceId: idOf(destination), toPath } });
  }
}

/** The same operations bound to one instance (`instance.files`). */
export class InstanceFiles {
  constructor(
    private readonly ops: FileOperations,
    readonly instanceId: string,
  ) {}

  list(path: string, options?: RequestOptions) {
    return this.ops.list(this.instanceId, path, options);
  }
  stat(path: string, options?: RequestOptions) {
    return this.ops.stat(this.instanceId, path, options);
  }
  mkdir(path: string, options?: RequestOptions & { parents?: boolean; mode?: number }) {
    return this.ops.mkdir(this.instanceId, path, options);
  }
  remove(path: string, options?: RequestOptions & { recursive?: boolean }) {
    return this.ops.remove(this.instanceId, path, options);
  }
  rename(from: string, to: string, options?: RequestOptions) {
    return this.ops.rename(this.instanceId, from, to, options);
  }
  read(path: string, options?: RequestOptions) {
    return this.ops.read(this.instanceId, path, options);
  }
  readText(path: string, options?: RequestOptions) {
    return this.ops.readText(this.instanceId, path, options);
  }
  write(path: string, content: FileContent, options?: WriteFileOptions) {
    return this.ops.write(this.instanceId, path, content, options);
  }
  upload(localPath: string, remotePath: string, options?: RequestOptions) {
    return this.ops.upload(this.instanceId, localPath, remotePath, options);
  }
  download(remotePath: string, localPath: string, options?: RequestOptions) {
    return this.ops.download(this.instanceId, remotePath, localPath, options);
  }
  copyTo(destination: IdRef, path: string, options?: RequestOptions & { toPath?: string }) {
    return this.ops.copy(this.instanceId, destination, path, options);
  }
}
