// Files of an instance, served by its faas-agent (spec/agent-protocol.md "Files"). The engine
// only checks the instance and proxies: bodies are streams piped between the client and the agent
// (or agent to agent for a copy), never held whole, so a transfer of any size costs the engine a few
// socket buffers (and an upload of unknown length up to 1 MiB, see write). Atomic writes and tar path checks are the agent's job; it runs next to the data.
import { Readable } from 'node:stream';
import { FaasError } from '../core/errors.js';
import { assertCan, notReadyNow } from '../core/instance-states.js';
import type { Instance } from '../core/types.js';
import type { AgentClient } from '../runtime/agent-client.js';
import type { InstanceService } from './instances.js';

export interface FileInfo {
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtime: string;
  symlinkTarget: string | null;
}

export interface Transfer {
  files: number;
  bytes: number;
}

const OCTETS = { 'content-type': 'application/octet-stream' };
/** Chunk size of an upload of unknown length on its way to the agent (see coalesce). */
export const UPLOAD_CHUNK = 1 << 20;

export class FileService {
  constructor(
    private readonly instances: InstanceService,
    private readonly agents: AgentClient,
  ) {}

  stat(id: string, path: string): Promise<FileInfo> {
    return this.call(id, (ip) => this.agents.json(ip, 'GET', `/v1/files/stat?path=${enc(path)}`)) as Promise<FileInfo>;
  }

  async list(id: string, path: string): Promise<{ data: FileInfo[] }> {
    const r = (await this.call(id, (ip) => this.agents.json(ip, 'GET', `/v1/files/list?path=${enc(path)}`))) as { entries: FileInfo[] };
    return { data: r.entries ?? [] };
  }

  /** The file's bytes as a stream; aborting `signal` (client gone) drops the agent connection. */
  async read(id: string, path: string, signal: AbortSignal): Promise<{ body: Readable; length: number | null }> {
    const res = await this.call(id, (ip) => this.agents.raw(ip, { method: 'GET', path: `/v1/files/read?path=${enc(path)}`, signal }));
    const len = res.headers['content-length'];
    return { body: res.body, length: len === undefined ? null : Number(len) };
  }

  /**
   * Pipes `body` to the agent, which writes a temporary file and renames it into place only once
   * the body is complete. A client that disconnects errors `body`, which aborts the agent request,
   * so nothing appears under the final name.
   */
  write(id: string, path: string, body: Readable, opts: { mode?: string; parents?: boolean; length?: number }): Promise<FileInfo> {
    const q = `path=${enc(path)}&parents=${opts.parents ?? true}${opts.mode ? `&mode=${opts.mode}` : ''}`;
    // Every read in the sandbox is a syscall through gVisor's sentry, and the agent reads a chunked
    // body a chunk at a time: a known length goes on (the agent then reads up to 1 MiB per call),
    // and an unknown one is sent in 1 MiB chunks rather than the client's socket reads (≤ 64 KiB).
    const headers = opts.length === undefined ? OCTETS : { ...OCTETS, 'content-length': String(opts.length) };
    const upstream = opts.length === undefined ? Readable.from(coalesce(body, UPLOAD_CHUNK), { objectMode: false }) : body;
    return drainOnError(body, this.call(id, async (ip) => {
      const res = await this.agents.raw(ip, { method: 'PUT', path: `/v1/files/write?${q}`, body: upstream, headers });
      return res.body.json();
    })) as Promise<FileInfo>;
  }

  mkdir(id: string, req: { path: string; parents?: boolean; mode?: number }): Promise<FileInfo> {
    return this.call(id, (ip) => this.agents.json(ip, 'POST', '/v1/files/mkdir', { parents: false, mode: 0o755, ...req })) as Promise<FileInfo>;
  }

  async remove(id: string, req: { path: string; recursive?: boolean }): Promise<void> {
    await this.call(id, (ip) => this.agents.json(ip, 'POST', '/v1/files/remove', { recursive: false, ...req }));
  }

  rename(id: string, req: { from: string; to: string }): Promise<FileInfo> {
    return this.call(id, (ip) => this.agents.json(ip, 'POST', '/v1/files/rename', req)) as Promise<FileInfo>;
  }

  /** Extracts a tar stream under `path` (the agent refuses entries that would land outside it). */
  uploadTar(id: string, path: string, body: Readable): Promise<Transfer> {
    return drainOnError(body, this.call(id, async (ip) => {
      const res = await this.agents.raw(ip, { method: 'PUT', path: `/v1/files/tar?path=${enc(path)}`, body, headers: { 'content-type': 'application/x-tar' } });
      return res.body.json();
    })) as Promise<Transfer>;
  }

  async downloadTar(id: string, path: string, signal: AbortSignal): Promise<Readable> {
    const res = await this.call(id, (ip) => this.agents.raw(ip, { method: 'GET', path: `/v1/files/tar?path=${enc(path)}`, signal }));
    return res.body;
  }

  /**
   * Copies `path` from one instance into another: the source agent's tar stream is piped into the
   * destination agent's tar upload, through the engine but never held by it.
   */
  async copy(id: string, req: { path: string; toInstanceId: string; toPath?: string }): Promise<Transfer> {
    const dst = this.ready(req.toInstanceId);
    const toPath = req.toPath ?? (parentOf(req.path));
    const abort = new AbortController();
    const src = await this.downloadTar(id, req.path, abort.signal);
    try {
      return await this.guard(dst, async (ip) => {
        const res = await this.agents.raw(ip, { method: 'PUT', path: `/v1/files/tar?path=${enc(toPath)}`, body: src, headers: { 'content-type': 'application/x-tar' } });
        return (await res.body.json()) as Transfer;
      });
    } finally {
      abort.abort(); // a failed upload must not leave the source download running
      src.destroy();
    }
  }

  private ready(id: string): Instance {
    const inst = this.instances.get(id);
    assertCan(inst, 'files');
    return inst;
  }

  private call<T>(id: string, fn: (ip: string) => Promise<T>): Promise<T> {
    return this.guard(this.ready(id), fn);
  }

  /** An unreachable agent usually means the instance stopped meanwhile: say that instead. */
  private async guard<T>(inst: Instance, fn: (ip: string) => Promise<T>): Promise<T> {
    try {
      return await fn(inst.ip!);
    } catch (err) {
      const now = this.instances.get(inst.id);
      if (now.state !== 'ready' && err instanceof FaasError && err.code === 'runtime_error') {
        throw notReadyNow(now);
      }
      throw diskFull(err);
    }
  }
}

/** ENOSPC inside the sandbox means the instance's writable layer (diskSize) is full. */
function diskFull(err: unknown): unknown {
  if (err instanceof FaasError && err.code === 'runtime_error' && /no space left on device/i.test(err.message)) {
    return new FaasError('resource_limit', 'the instance disk is full (its diskSize)', { reason: 'disk_full' });
  }
  return err;
}

const enc = encodeURIComponent;

/** `src`'s bytes in pieces of at least `size` (the last may be shorter); its error ends it. */
export async function* coalesce(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of src) {
    parts.push(chunk);
    n += chunk.length;
    if (n >= size) {
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n) yield Buffer.concat(parts, n);
}

/**
 * When the agent refuses an upload part way (disk full, path escape), the rest of the client's
 * body is still unread: discard it so the error answer is read and the connection is reusable.
 */
export async function drainOnError<T>(body: Readable, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!body.readableEnded && !body.destroyed) body.resume();
    throw err;
  }
}

function parentOf(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i <= 0 ? '/' : trimmed.slice(0, i);
}
