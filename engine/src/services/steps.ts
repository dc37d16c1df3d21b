// The step cache (docs/step-cache.md): snapshots are content-addressed by how they were made, so a
// create or a build step whose result already exists is answered from the cache instead of run.
//   root:   create(config)        → digest of (image digest, resources, boot template with the
//                                   environment and the agent's sha, recipe version); a hit also
//                                   needs equal metadata (not content, but never answered otherwise)
//   exec:   parent + command      → digest of (parent digest, command|argv, env, cwd, user, stdin)
//   upload: parent + bytes        → digest of (parent digest, sha256 of the body, path, format, mode)
// Lookups are always within one API key (a hit never crosses keys, admin keys included), only
// ready snapshots that are not being deleted answer, and `fresh` skips the lookup. A step that
// fails (non-zero exit, timeout, killed) makes no snapshot, so nothing is cached for it.
// An exec step's result (exit code, output up to the one-shot cap, duration) is recorded with its
// snapshot and replayed on a hit, so a chain sees the same thing either way.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FaasError } from '../core/errors.js';
import type { ExecRequest, Snapshot } from '../core/types.js';
import type { AgentClient } from '../runtime/agent-client.js';
import type { StepCacheRepo, StepResult } from '../store/sqlite/step-cache.js';
import type { FileService } from './files.js';
import type { InstanceService } from './instances.js';
import { digestOf, type CreateSnapshotInput, type SnapshotService } from './snapshots.js';

export type { StepResult };
export type OutputStream = 'stdout' | 'stderr';

export interface StepAnswer {
  snapshot: Snapshot;
  /** True when the cache answered and nothing ran (a concurrent identical create joined counts). */
  cached: boolean;
  /** Exec steps only: the run that made the snapshot (recorded; replayed on a hit). */
  result?: StepResult;
}

export interface StepOptions {
  fresh?: boolean;
  /** Output as it is produced (on a hit: the recorded output). Awaited, so a slow reader slows the step. */
  onOutput?: (stream: OutputStream, data: string) => unknown;
  /** Aborting kills a running step; nothing is cached then. */
  signal?: AbortSignal;
}

export interface UploadStep {
  path: string;
  format?: 'file' | 'tar';
  mode?: string;
}

export interface StepDeps {
  snapshots: SnapshotService;
  instances: InstanceService;
  files: FileService;
  agents: AgentClient;
  cache: StepCacheRepo;
  /** Bytes of each of stdout/stderr kept in a recorded result (the one-shot exec cap). */
  outputMax: number;
  /** Private directory where upload bodies are spooled while they are hashed. */
  uploadDir: string;
  uploadMax: number;
}

export class StepService {
  /** Root boots in flight by owner + digest: concurrent identical creates share one boot. */
  private readonly booting = new Map<string, Promise<Snapshot>>();

  constructor(private readonly d: StepDeps) {
    // Spooled bodies of requests a crash interrupted.
    mkdirSync(d.uploadDir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(d.uploadDir)) rmSync(join(d.uploadDir, f), { force: true, recursive: true });
  }

  /**
   * `snapshots.create`: the cached root with this content and metadata, or a new boot. A name or a
   * ttl asks for a record of its own (a hit would share one name or one deadline between callers).
   */
  async createRoot(input: CreateSnapshotInput & { fresh?: boolean; ttl?: number }, owner: string | null): Promise<StepAnswer> {
    const { fresh, ttl: _ttl, ...config } = input;
    if (fresh || input.name || input.ttl) return { snapshot: await this.d.snapshots.createFromImage({ ...config, owner }), cached: false };
    const { digest } = this.d.snapshots.rootRecipe(config);
    const hit = this.visible(this.d.cache.root(digest, owner, config.metadata ?? {}));
    if (hit) return { snapshot: hit, cached: true };
    const key = `${owner}\0${digest}`;
    const running = this.booting.get(key);
    if (running) return { snapshot: await running, cached: true };
    const boot = this.d.snapshots.createFromImage({ ...config, owner });
    this.booting.set(key, boot);
    try {
      return { snapshot: await boot, cached: false };
    } finally {
      this.booting.delete(key);
    }
  }

  /** `snapshot.exec`: restore the parent, run the command, checkpoint the child. */
  async exec(parentId: string, req: ExecRequest, owner: string | null, opts: StepOptions = {}): Promise<StepAnswer> {
    const parent = this.d.snapshots.get(parentId);
    const { command, argv, env, cwd, user, stdin } = req;
    const digest = digestOf([parent.digest, 'exec/2', canonical({ command, argv, env: env && Object.keys(env).length ? env : undefined, cwd, user, stdin })]);
    const hit = opts.fresh ? undefined : this.visible(this.d.cache.child(parent.id, digest, owner));
    if (hit) {
      const result = this.d.cache.result(hit.id);
      if (result && opts.onOutput) {
        if (result.stdout) await opts.onOutput('stdout', result.stdout);
        if (result.stderr) await opts.onOutput('stderr', result.stderr);
      }
      return { snapshot: hit, cached: true, result };
    }
    return this.inTemporaryInstance(parent, owner, 'exec', async (ip) => {
      const result = await this.run(ip, req, opts);
      if (result.exitCode !== 0) {
        throw new FaasError('exec_failed', `the step exited with ${result.exitCode}`, { exitCode: result.exitCode, stdout: result.stdout.slice(-4096), stderr: result.stderr.slice(-4096) });
      }
      return { digest, result };
    });
  }

  /** `snapshot.upload`: the body is spooled and hashed first (its hash is the key), then written into a restored parent. */
  async upload(parentId: string, step: UploadStep, body: Readable, owner: string | null, opts: StepOptions = {}): Promise<StepAnswer> {
    const parent = this.d.snapshots.get(parentId);
    const format = step.format ?? 'file';
    const mode = format === 'file' ? parseInt(step.mode ?? '644', 8).toString(8).padStart(4, '0') : null;
    const spooled = join(this.d.uploadDir, `up-${randomUUID()}`);
    try {
      const sha256 = await this.spool(body, spooled);
      const digest = digestOf([parent.digest, 'upload/1', canonical({ sha256, path: step.path, format, mode })]);
      const hit = opts.fresh ? undefined : this.visible(this.d.cache.child(parent.id, digest, owner));
      if (hit) return { snapshot: hit, cached: true };
      return await this.inTemporaryInstance(parent, owner, 'upload', async (_ip, instId) => {
        const content = createReadStream(spooled);
        if (format === 'tar') await this.d.files.uploadTar(instId, step.path, content);
        else await this.d.files.write(instId, step.path, content, { mode: mode ?? undefined, parents: true });
        return { digest };
      });
    } finally {
      rmSync(spooled, { force: true });
    }
  }

  private visible(id: string | undefined): Snapshot | undefined {
    return id === undefined ? undefined : this.d.snapshots.visible(id);
  }

  /** Start from `parent`, do the step, checkpoint the child (recording the exec result), always delete the instance. */
  private async inTemporaryInstance(
    parent: Snapshot, owner: string | null, kind: 'exec' | 'upload',
    work: (ip: string, instanceId: string) => Promise<{ digest: string; result?: StepResult }>,
  ): Promise<StepAnswer> {
    const inst = await this.d.instances.start({ snapshotId: parent.id, metadata: { 'faas.step': kind }, owner });
    try {
      const { digest, result } = await work(inst.ip!, inst.id);
      const snap = await this.d.instances.lock.run(inst.id, () =>
        this.d.snapshots.checkpointInstance(inst, { digest, metadata: parent.metadata, name: null, owner }),
      );
      if (result) this.d.cache.record(snap.id, result);
      return { snapshot: snap, cached: false, result };
    } finally {
      await this.d.instances.delete(inst.id).catch(() => undefined);
    }
  }

  /** Runs the command streamed (so output can be passed on live), keeping up to outputMax bytes of each stream. */
  private async run(ip: string, req: ExecRequest, opts: StepOptions): Promise<StepResult> {
    const kept = { stdout: new Capped(this.d.outputMax), stderr: new Capped(this.d.outputMax) };
    let exit: { exitCode: number; duration: number; timedOut: boolean } | undefined;
    for await (const ev of this.d.agents.execStream(ip, req, opts.signal)) {
      if ((ev.type === 'stdout' || ev.type === 'stderr') && ev.data) {
        kept[ev.type].add(ev.data);
        await opts.onOutput?.(ev.type, ev.data);
      } else if (ev.type === 'exit') {
        exit = { exitCode: ev.exitCode ?? -1, duration: ev.durationMs ?? 0, timedOut: ev.timedOut ?? false };
      }
    }
    if (!exit) throw new FaasError('runtime_error', 'the step ended without an exit status', null);
    // A timed-out step is a failed one, whatever status the killed process had.
    const exitCode = exit.timedOut && exit.exitCode === 0 ? -1 : exit.exitCode;
    return { exitCode, stdout: kept.stdout.text, stderr: kept.stderr.text, duration: exit.duration, truncated: kept.stdout.truncated || kept.stderr.truncated };
  }

  /** Writes the body to `file` while hashing it; more than uploadMax bytes is payload_too_large. */
  private async spool(body: Readable, file: string): Promise<string> {
    const hash = createHash('sha256');
    let bytes = 0;
    const max = this.d.uploadMax;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > max) return done(new FaasError('payload_too_large', `an upload step may be at most ${max} bytes`, { limit: max }));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(body, meter, createWriteStream(file, { mode: 0o600 }));
    return `sha256:${hash.digest('hex')}`;
  }
}

/** The first `max` bytes of a text stream (cut on a character boundary). */
class Capped {
  text = '';
  truncated = false;
  private bytes = 0;
  constructor(private readonly max: number) {}
  add(data: string): void {
    if (this.truncated) return;
    const n = Buffer.byteLength(data);
    if (this.bytes + n <= this.max) {
      this.text += data;
      this.bytes += n;
      return;
    }
    const room = Buffer.from(data).subarray(0, this.max - this.bytes).toString('utf8').replace(/\uFFFD$/, '');
    this.text += room;
    this.bytes = this.max;
    this.truncated = true;
  }
}

/** JSON with sorted keys and undefined dropped: equal steps give equal text. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
