// Drives gVisor's runsc. Most calls are one short-lived runsc CLI process, started through the
// spawner helper (forking the engine itself stalls its event loop); checkpoint, pause and resume,
// which sit on the branch and pooled-start paths, go straight to the sandbox's control socket
// instead (see control-socket.ts). Commands that leave a sandbox behind (boot, restore) get a log
// file, never pipes, for stdio: the detached sandbox inherits it and a pipe would keep the caller
// waiting until the sandbox dies.
import { mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { FaasError } from '../../core/errors.js';
import type { SandboxRuntime } from '../../core/interfaces.js';
import { Spawner } from '../spawner.js';
import { ControlSocket } from './control-socket.js';

/** The files of an uncompressed checkpoint, in the order the Checkpoint call expects them. */
const IMAGE_FILES = ['checkpoint.img', 'pages_meta.img', 'pages.img'];

export interface RunscOptions {
  binary: string;
  /** runsc --root: where runsc keeps sandbox state. */
  root: string;
  /** Where the overlay filestores of the writable layers live (outside every image). */
  filestoreDir: string;
  /** Scratch directory for per-call logs. */
  logDir: string;
  debug?: boolean;
  /** Starts the runsc CLI processes (one is made if not given). */
  spawner?: Spawner;
  /**
   * Lazy page loading (`runsc restore --background`, default on): a restore returns once the
   * kernel state is loaded and the sandbox runs, while its memory keeps loading from the pages file
   * behind it; a page touched before it is loaded is loaded first (gVisor's pgalloc puts it at the
   * front of the queue and the touching task waits for it). So a restore costs the state file, not
   * the memory the parent holds. The sandbox keeps the pages file open until it is loaded; image
   * files are never changed in place after they are placed (replaced by rename only), so what it
   * reads later is what was checksummed.
   */
  lazyRestore?: boolean;
}

export class RunscRuntime implements SandboxRuntime {
  private readonly global: string[];
  private readonly control: ControlSocket;
  private readonly spawner: Spawner;

  constructor(private readonly opts: RunscOptions) {
    this.control = new ControlSocket(opts.root);
    this.spawner = opts.spawner ?? new Spawner();
    for (const d of [opts.root, opts.filestoreDir, opts.logDir]) mkdirSync(d, { recursive: true });
    this.global = [
      `--root=${opts.root}`,
      '--platform=systrap',
      '--network=sandbox',
      `--overlay2=root:dir=${opts.filestoreDir}`,
    ];
  }

  /**
   * With diskSizeMb, the writable layer (the overlay's upper tmpfs) gets that size: writers in the
   * sandbox see ENOSPC past it. The size is fixed here, at boot: a checkpoint carries the tmpfs
   * with its limit, and restores keep it whatever their own --overlay2 says (measured), so every
   * snapshot and instance derived from this boot has the same disk size.
   */
  boot(id: string, bundleDir: string, opts: { diskSizeMb?: number } = {}): Promise<void> {
    const size = opts.diskSizeMb ? [`--overlay2=root:dir=${this.opts.filestoreDir},size=${opts.diskSizeMb}m`] : [];
    return this.detached(id, 'run', [...size, 'run', '--detach', `--bundle=${bundleDir}`, id]);
  }

  create(id: string, bundleDir: string): Promise<void> {
    return this.detached(id, 'create', ['create', `--bundle=${bundleDir}`, id]);
  }

  restore(id: string, bundleDir: string, imageDir: string, opts: { eager?: boolean } = {}): Promise<void> {
    const lazy = this.opts.lazyRestore === false || opts.eager ? [] : ['--background'];
    return this.detached(id, 'restore', ['restore', '--detach', ...lazy, `--image-path=${imageDir}`, `--bundle=${bundleDir}`, id]);
  }

  /** What `runsc checkpoint [--leave-running]` does (uncompressed, pages in their own file), minus
   *  the CLI: the image files are created here and handed to the sandbox. */
  async checkpoint(id: string, imageDir: string, leaveRunning: boolean): Promise<void> {
    mkdirSync(imageDir, { recursive: true });
    const fds: number[] = [];
    try {
      for (const f of IMAGE_FILES) fds.push(openSync(join(imageDir, f), fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o644));
      await this.control.call(id, 'containerManager.Checkpoint', { metadata: { compression: 'none' }, have_pages_file: true, Resume: leaveRunning }, fds);
    } catch (err) {
      throw runtimeError('checkpoint', id, (err as Error).message);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  /** Pause and resume stop and start the sandbox's kernel. runsc's own record of the container keeps
   *  saying "running" (only its CLI writes that record); nothing here reads that status but for
   *  "stopped". */
  async pause(id: string): Promise<void> {
    await this.control.call(id, 'containerManager.Pause', null).catch((err: Error) => {
      throw runtimeError('pause', id, err.message);
    });
  }

  async resume(id: string): Promise<void> {
    await this.control.call(id, 'containerManager.Resume', null).catch((err: Error) => {
      throw runtimeError('resume', id, err.message);
    });
  }

  async destroy(id: string): Promise<void> {
    try {
      await this.call(['delete', '--force', id], 'delete', id);
    } catch (err) {
      if (!/does not exist|not found|no such/i.test(String((err as FaasError).details?.log ?? ''))) throw err;
    }
    rmSync(join(this.opts.root, lockFileOf(id)), { force: true });
  }

  /** `runsc delete` leaves the container's lock file (`<id>_sandbox:<id>.lock`) in --root, and a
   *  `runsc list` or `ps` that overlaps a delete re-creates it afterwards: one file per sandbox ever
   *  made piled up (the kill test's inventory and the soak showed them). destroy() removes it; this
   *  sweeps the rest: lock files without a state file of sandboxes not in `known`, older than
   *  `minAgeMs` (a sandbox being created has its lock file a moment before its state file). */
  pruneLeftovers(known: Set<string>, minAgeMs = 0): void {
    let entries: string[] = [];
    try {
      entries = readdirSync(this.opts.root);
    } catch {
      return;
    }
    const names = new Set(entries);
    const now = Date.now();
    for (const e of entries) {
      const m = /^(.+)_sandbox:\1\.lock$/.exec(e);
      if (!m || known.has(m[1]) || names.has(`${m[1]}_sandbox:${m[1]}.state`)) continue;
      const path = join(this.opts.root, e);
      try {
        if (minAgeMs && now - statSync(path).mtimeMs < minAgeMs) continue;
        rmSync(path, { force: true });
      } catch {
        /* gone meanwhile */
      }
    }
  }

  async list(): Promise<{ id: string; status: string; pid: number }[]> {
    const out = await this.call(['list', '--format=json'], 'list', '');
    const parsed = JSON.parse(out || '[]') as { id: string; status: string; pid: number }[] | null;
    return (parsed ?? []).map((c) => ({ id: c.id, status: c.status, pid: c.pid }));
  }

  /**
   * runsc bind-mounts an empty network namespace for its gofers at <root>/null-netns and leaves
   * it mounted; concurrent runsc calls can stack several mounts there, so unmount until none is
   * left (bounded, in case umount keeps succeeding on something else).
   */
  async uninstall(): Promise<void> {
    const path = join(this.opts.root, 'null-netns');
    for (let i = 0; i < 64; i++) {
      const r = await this.spawner.run({ file: 'umount', args: ['-l', path] }).catch(() => null);
      if (!r || r.code !== 0) return;
    }
  }

  async processCount(id: string): Promise<number> {
    const out = await this.call(['ps', '--format=json', id], 'ps', id);
    const parsed = JSON.parse(out || '[]') as unknown[] | null;
    return (parsed ?? []).length;
  }

  /** Run a runsc command whose process exits on its own; stdout is returned. */
  private async call(args: string[], op: string, id: string): Promise<string> {
    let r;
    try {
      r = await this.spawner.run({ file: this.opts.binary, args: [...this.global, ...args] });
    } catch (err) {
      throw runtimeError(op, id, (err as Error).message);
    }
    if (r.code === 0) return r.stdout;
    throw runtimeError(op, id, r.stderr.trim() || `exit ${r.code ?? r.signal}`);
  }

  /** Run a runsc command that leaves a sandbox process behind; its stdio goes to a file. Flags before
   *  the subcommand in `args` override the global ones (runsc's flag parsing keeps the last). */
  private async detached(id: string, op: string, args: string[]): Promise<void> {
    const logPath = join(this.opts.logDir, `${id}.${op}.log`);
    let r;
    try {
      r = await this.spawner.run({ file: this.opts.binary, args: [...this.global, ...args], logFile: logPath });
    } catch (err) {
      throw runtimeError(op, id, (err as Error).message);
    }
    if (r.code === 0) {
      rmSync(logPath, { force: true });
      return;
    }
    let log = '';
    try {
      log = readFileSync(logPath, 'utf8').slice(-4000);
    } catch {
      /* the message below still says what failed */
    }
    throw runtimeError(op, id, log.trim() || `exit ${r.code ?? r.signal}`);
  }
}

const lockFileOf = (id: string) => `${id}_sandbox:${id}.lock`;

function runtimeError(op: string, id: string, log: string): FaasError {
  // The engine's own disk (a checkpoint writes its image there): 507 storage_full, docs/storage.md.
  const enospc = /no space left on device/i.test(log);
  return new FaasError(
    enospc ? 'storage_full' : 'runtime_error',
    enospc ? `runsc ${op} failed: the engine's disk is full; delete snapshots or free disk space, then retry` : `runsc ${op} failed for ${id}: ${lastLine(log)}`,
    { op, sandbox: id, log },
  );
}

const lastLine = (s: string) => s.split('\n').filter(Boolean).pop()?.slice(0, 500) ?? '';
