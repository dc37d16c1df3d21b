// client.snapshots and the Snapshot resource. Snapshots chain: every step returns a new Snapshot,
// so `await client.snapshots.create().exec('apt-get update').exec('make')` (or the same with
// `.then(s => s.exec(…))`) builds an image-like recipe whose creates and steps the engine caches
// by digest (docs/step-cache.md): run the chain again and every step is a hit (`cached: true`).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type * as api from '../generated/api.gen.js';
import { errorFromBody, networkError } from '../core/errors.js';
import type { RequestOptions } from '../core/http.js';
import { withHints } from '../core/config.js';
import { readServerSentEvents } from '../core/sse.js';
import { packDirectory } from '../core/tar.js';
import { AutoPager } from '../core/pagination.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import type { FaaSClient } from '../client.js';
import type { Instance, StartInstanceConfig } from './instances.js';
import { execBody, type Command, type ExecOptions } from './execution.js';
import type { DiffOptions, MergeOptions, SnapshotDiff } from './diff.js';

export type SnapshotData = api.Snapshot;
export type SnapshotConfig = api.CreateSnapshotRequest;
/** The seed's CacheConfig: how a snapshot's image is stored and cached (docs/storage.md). */
export type CacheConfig = api.CacheConfig;
/** Disk a snapshot's image takes; in `get` and `list` answers (docs/storage.md). */
export type SnapshotStorage = api.SnapshotStorage;

export interface SnapshotListFilter {
  metadata?: Record<string, string>;
  digest?: string;
  imageId?: string;
  parentId?: string;
  /** Page size used while iterating (1..200). */
  pageSize?: number;
}

/** Options of the chain step `exec` besides the command's own (cwd, env, user, stdin, timeout). */
export interface SnapshotExecOptions extends ExecOptions {
  /** Run the step even when the step cache has it (default: the client's `reuseSnapshots` hint, negated). */
  fresh?: boolean;
  /**
   * The step's output while it runs (then the step uses the streamed route); on a cache hit the
   * recorded output is replayed: all of stdout, then all of stderr.
   */
  onOutput?: (data: string, stream: 'stdout' | 'stderr') => void;
}

export interface SnapshotUploadOptions extends RequestOptions {
  /** Run the step even when the step cache has it. */
  fresh?: boolean;
}

export interface DeleteSnapshotOptions extends RequestOptions {
  /** Also delete dependent instances and descendant snapshots. */
  force?: boolean;
}

export class Snapshot implements SnapshotData {
  declare readonly id: string;
  declare readonly parentId: string | null;
  declare readonly imageId: string;
  declare readonly instanceId: string | null;
  declare readonly name: string | null;
  declare readonly digest: string;
  /** sha256 of the image; null for the moment after a checkpoint of a running instance, until the engine has computed it. */
  declare readonly checksum: string | null;
  declare readonly size: number;
  declare readonly resources: api.Resources;
  /** Egress policy its instances start with (unless they set their own). */
  declare readonly networkConfig: api.NetworkConfigResolved;
  declare readonly environment: Record<string, string>;
  declare readonly metadata: Record<string, string>;
  declare readonly createdAt: string;
  declare readonly expiresAt: string | null;
  /** In the answer of a create or a step: true when the step cache answered and nothing ran. */
  declare readonly cached?: boolean;
  /** In the answer of an exec step: what the run that made it did (recorded; the same on a hit). */
  declare readonly stepResult?: api.StepResult;
  /** In `get` and `list` answers: the disk its image takes, shared and exclusive (docs/storage.md). */
  declare readonly storage?: api.SnapshotStorage;
  readonly #client: FaaSClient;

  constructor(client: FaaSClient, data: SnapshotData) {
    this.#client = client;
    Object.assign(this, data);
  }

  /** A chain step: runs `command` on a copy of this snapshot and returns the resulting snapshot. */
  exec(command: Command, options?: SnapshotExecOptions, requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.exec(this.id, command, options, requestOptions);
  }

  /** A chain step: copies a local file or directory to `remotePath` and returns the resulting snapshot. */
  upload(localPath: string, remotePath: string, options?: SnapshotUploadOptions): SnapshotPromise {
    return this.#client.snapshots.upload(this.id, localPath, remotePath, options);
  }

  /** Starts an instance restored from this snapshot. */
  start(config: Omit<StartInstanceConfig, 'snapshotId'> = {}, requestOptions?: RequestOptions): Promise<Instance> {
    return this.#client.instances.start({ ...config, snapshotId: this.id }, requestOptions);
  }

  /** An engine-side copy sharing this snapshot's image files (see SnapshotManager.clone). */
  clone(config: api.CloneSnapshotRequest = {}, requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.clone(this.id, config, requestOptions);
  }

  /** What changed in the files from this snapshot to `target`. */
  diff(target: IdRef, options?: DiffOptions, requestOptions?: RequestOptions): Promise<SnapshotDiff> {
    return this.#client.snapshots.diff(this.id, target, options, requestOptions);
  }

  delete(options?: DeleteSnapshotOptions): Promise<void> {
    return this.#client.snapshots.delete(this.id, options);
  }

  setMetadata(metadata: Record<string, string>, requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.setMetadata(this.id, metadata, requestOptions);
  }
}

/**
 * A Promise of a Snapshot that also offers the chain steps, so steps can be written without an
 * `await` or `.then` between them. Awaiting it gives the last Snapshot.
 */
export class SnapshotPromise implements Promise<Snapshot> {
  /** Makes it usable wherever a Promise<Snapshot> is expected (Promise.all, assert.rejects, …). */
  readonly [Symbol.toStringTag] = 'SnapshotPromise';

  constructor(private readonly promise: Promise<Snapshot>) {}

  exec(command: Command, options?: SnapshotExecOptions, requestOptions?: RequestOptions): SnapshotPromise {
    return new SnapshotPromise(this.promise.then((s) => s.exec(command, options, requestOptions)));
  }

  upload(localPath: string, remotePath: string, options?: SnapshotUploadOptions): SnapshotPromise {
    return new SnapshotPromise(this.promise.then((s) => s.upload(localPath, remotePath, options)));
  }

  start(config?: Omit<StartInstanceConfig, 'snapshotId'>, requestOptions?: RequestOptions): Promise<Instance> {
    return this.promise.then((s) => s.start(config, requestOptions));
  }

  then<A = Snapshot, B = never>(onFulfilled?: ((value: Snapshot) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Snapshot | B> {
    return this.promise.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Snapshot> {
    return this.promise.finally(onFinally);
  }
}

export class SnapshotManager {
  constructor(private readonly client: FaaSClient) {}

  private wrap(promise: Promise<SnapshotData>): SnapshotPromise {
    return new SnapshotPromise(promise.then((data) => new Snapshot(this.client, data)));
  }

  /**
   * Boots an image (the default one unless `imageId`), checkpoints it and returns the root
   * snapshot — or, when this key already has a root with the same content and metadata, that one
   * (`cached: true`; `fresh: true` or `reuseSnapshots: false` always boots).
   */
  create(config: SnapshotConfig = {}, options?: RequestOptions): SnapshotPromise {
    // A body's reuseSnapshots: false asks for fresh, as the client's does.
    const json = withHints(this.client.http.hints, { ...config, fresh: this.fresh(config.fresh ?? (config.optimizationHints?.reuseSnapshots === false || undefined)) });
    return this.wrap(this.client.http.request({ ...options, method: 'POST', path: '/v1/snapshots', json }));
  }

  get(id: string, options?: RequestOptions): SnapshotPromise {
    return this.wrap(this.client.http.request({ ...options, method: 'GET', path: `/v1/snapshots/${seg(id)}` }));
  }

  list(filter: SnapshotListFilter = {}, options?: RequestOptions): AutoPager<Snapshot, SnapshotData> {
    const { pageSize, ...query } = filter;
    return new AutoPager(
      (cursor) => this.client.http.request({ ...options, method: 'GET', path: '/v1/snapshots', query: { ...query, limit: pageSize, cursor } }),
      (raw: SnapshotData) => new Snapshot(this.client, raw),
    );
  }

  async delete(id: IdRef, options: DeleteSnapshotOptions = {}): Promise<void> {
    const { force, ...requestOptions } = options;
    await this.client.http.request({ ...requestOptions, method: 'DELETE', path: `/v1/snapshots/${seg(id)}`, query: { force: force || undefined } });
  }

  /** The warm pool of paused clones kept for this snapshot. */
  getPool(id: IdRef, options?: RequestOptions): Promise<api.SnapshotPool> {
    return this.client.http.request({ ...options, method: 'GET', path: `/v1/snapshots/${seg(id)}/pool` });
  }

  /**
   * The snapshot's AutoScaling: keeps `minInstances` paused clones ready so starts from it take
   * milliseconds (0 drains the pool), and with `maxInstances` refuses starts beyond that many live
   * instances of it (`ResourceLimitError`). Replaces the whole setting: an omitted `maxInstances`
   * means no cap. A number is shorthand for `{ minInstances }`.
   */
  setPool(id: IdRef, scaling: number | { minInstances: number; maxInstances?: number | null }, options?: RequestOptions): Promise<api.SnapshotPool> {
    const json = typeof scaling === 'number' ? { minInstances: scaling } : { minInstances: scaling.minInstances, maxInstances: scaling.maxInstances ?? null };
    return this.client.http.request({ ...options, method: 'PUT', path: `/v1/snapshots/${seg(id)}/pool`, json });
  }

  setMetadata(id: IdRef, metadata: Record<string, string>, options?: RequestOptions): SnapshotPromise {
    return this.wrap(this.client.http.request({ ...options, method: 'PUT', path: `/v1/snapshots/${seg(id)}/metadata`, json: metadata }));
  }

  /**
   * What changed in the files from `base` to `target` (added, modified, deleted, typeChanged; with
   * unified diffs of small text files). Answered from records kept with each snapshot: nothing is
   * restored. A snapshot without such a record throws ConflictError (`diff_unavailable`).
   */
  diff(base: IdRef, target: IdRef, options: DiffOptions = {}, requestOptions?: RequestOptions): Promise<SnapshotDiff> {
    return this.client.http.request({ ...requestOptions, method: 'GET', path: `/v1/snapshots/${seg(idOf(base))}/diff/${seg(idOf(target))}`, query: { textDiffs: options.textDiffs } });
  }

  /**
   * Three-way merge of the snapshots' file changes since their common ancestor onto the first
   * (whose memory and processes the result keeps). Overlapping changes throw MergeConflictError
   * (its `conflicts` list each path) unless `strategy` resolves them.
   */
  merge(ids: IdRef[], options: MergeOptions = {}, requestOptions?: RequestOptions): SnapshotPromise {
    const { strategy, name, metadata } = options;
    return this.wrap(this.client.http.request({ ...requestOptions, method: 'POST', path: '/v1/snapshots/merge', json: { snapshotIds: ids.map(idOf), strategy, name, metadata } }));
  }

  /**
   * A build step on the engine (`POST /v1/snapshots/{id}/exec`): a new child snapshot, or the cached
   * one when this step already ran on this parent (`cached: true`, with the original `stepResult`).
   * With `onOutput` the output arrives while the step runs. A non-zero exit throws ExecFailedError.
   */
  exec(id: IdRef, command: Command, options: SnapshotExecOptions = {}, requestOptions?: RequestOptions): SnapshotPromise {
    const { fresh, onOutput, ...execOptions } = options;
    const query = { fresh: this.fresh(fresh) };
    const json = execBody(command, execOptions);
    if (!onOutput) return this.wrap(this.client.http.request({ ...requestOptions, method: 'POST', path: `/v1/snapshots/${seg(id)}/exec`, query, json }));
    return this.wrap(this.streamStep(id, json, query, onOutput, requestOptions));
  }

  /**
   * A chain step (`POST /v1/snapshots/{id}/upload`): a local file becomes the file `remotePath`
   * (its mode kept); a directory's contents go under `remotePath` (as a tar). Cached by content:
   * the same bytes to the same place on the same parent is a hit.
   */
  upload(id: IdRef, localPath: string, remotePath: string, options: SnapshotUploadOptions = {}): SnapshotPromise {
    const { fresh, ...requestOptions } = options;
    const common = { ...requestOptions, method: 'POST' as const, path: `/v1/snapshots/${seg(id)}/upload` };
    return this.wrap(
      stat(localPath).then((info): Promise<SnapshotData> => {
        const query = { path: remotePath, fresh: this.fresh(fresh) };
        if (info.isDirectory()) return this.client.http.request({ ...common, query: { ...query, format: 'tar' }, contentType: 'application/x-tar', body: () => packDirectory(localPath) });
        const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
        return this.client.http.request({ ...common, query: { ...query, mode }, body: () => createReadStream(localPath) });
      }),
    );
  }

  /** `fresh` as sent: explicit, else what the reuseSnapshots hint says; omitted when false. */
  private fresh(fresh: boolean | undefined): true | undefined {
    return (fresh ?? !this.client.http.reuseSnapshots) || undefined;
  }

  /** `execSnapshotStream`: output events as they come, then the snapshot (or the error). */
  private async streamStep(id: IdRef, json: api.ExecRequest, query: { fresh?: true }, onOutput: NonNullable<SnapshotExecOptions['onOutput']>, requestOptions?: RequestOptions): Promise<SnapshotData> {
    const response = await this.client.http.requestRaw({
      ...requestOptions, method: 'POST', path: `/v1/snapshots/${seg(id)}/exec/stream`, query, headers: { Accept: 'text/event-stream' }, json,
    });
    for await (const message of readServerSentEvents(response.body!)) {
      const data = JSON.parse(message.data);
      if (message.event === 'stdout' || message.event === 'stderr') onOutput(data.data, message.event);
      else if (message.event === 'snapshot') return data as SnapshotData;
      else if (message.event === 'error') throw errorFromBody(data.error, undefined);
    }
    throw networkError('the step stream ended before its snapshot');
  }

  /**
   * A new snapshot with the same state (memory, processes, files) as `id`, made by the engine
   * without restoring anything: it shares the image files (either can be deleted without
   * affecting the other) and has the same checksum, parent and history. `name`, `metadata`
   * (default: a copy of the original's) and `ttl` are the clone's own.
   */
  clone(id: IdRef, config: api.CloneSnapshotRequest = {}, options?: RequestOptions): SnapshotPromise {
    return this.wrap(this.client.http.request({ ...options, method: 'POST', path: `/v1/snapshots/${seg(id)}/clone`, json: config }));
  }
}

