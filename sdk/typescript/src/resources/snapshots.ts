// client.snapshots and the Snapshot resource. Snapshots chain: every step returns a new Snapshot,
// so `await client.snapshots.create().exec('apt-get update').exec('make')` (or the same with
// `.then(s => s.exec(…))`) builds an image-like recipe whose steps the engine caches by digest.
import type * as api from '../generated/api.gen.js';
import type { RequestOptions } from '../core/http.js';
import { AutoPager } from '../core/pagination.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import type { FaaSClient } from '../client.js';
import type { Instance, StartInstanceConfig } from './instances.js';
import { execBody, type Command, type ExecOptions } from './execution.js';

export type SnapshotData = api.Snapshot;
export type SnapshotConfig = api.CreateSnapshotRequest;

export interface SnapshotListFilter {
  metadata?: Record<string, string>;
  digest?: string;
  imageId?: string;
  parentId?: string;
  /** Page size used while iterating (1..200). */
  pageSize?: number;
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
  readonly #client: FaaSClient;

  constructor(client: FaaSClient, data: SnapshotData) {
    this.#client = client;
    Object.assign(this, data);
  }

  /** A chain step: runs `command` on a copy of this snapshot and returns the resulting snapshot. */
  exec(command: Command, options?: ExecOptions, requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.exec(this.id, command, options, requestOptions);
  }

  /** A chain step: copies a local file or directory to `remotePath` and returns the resulting snapshot. */
  upload(localPath: string, remotePath: string, requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.upload(this.id, localPath, remotePath, requestOptions);
  }

  /** Starts an instance restored from this snapshot. */
  start(config: Omit<StartInstanceConfig, 'snapshotId'> = {}, requestOptions?: RequestOptions): Promise<Instance> {
    return this.#client.instances.start({ ...config, snapshotId: this.id }, requestOptions);
  }

  clone(requestOptions?: RequestOptions): SnapshotPromise {
    return this.#client.snapshots.clone(this.id, requestOptions);
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

  exec(command: Command, options?: ExecOptions, requestOptions?: RequestOptions): SnapshotPromise {
    return new SnapshotPromise(this.promise.then((s) => s.exec(command, options, requestOptions)));
  }

  upload(localPath: string, remotePath: string, requestOptions?: RequestOptions): SnapshotPromise {
    return new SnapshotPromise(this.promise.then((s) => s.upload(localPath, remotePath, requestOptions)));
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

  /** Boots an image (the default one unless `imageId`), checkpoints it and returns the root snapshot. */
  create(config: SnapshotConfig = {}, options?: RequestOptions): SnapshotPromise {
    return this.wrap(this.client.http.request({ ...options, method: 'POST', path: '/v1/snapshots', json: config }));
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
   * A build step on the engine (`POST /v1/snapshots/{id}/exec`): a new child snapshot, or the cached
   * one when this step already ran on this parent. A non-zero exit throws ExecFailedError.
   */
  exec(id: IdRef, command: Command, options: ExecOptions = {}, requestOptions?: RequestOptions): SnapshotPromise {
    return this.wrap(this.client.http.request({ ...requestOptions, method: 'POST', path: `/v1/snapshots/${seg(id)}/exec`, json: execBody(command, options) }));
  }

  /**
   * A chain step that copies local files in. The engine has no upload step route, so this starts
   * an instance from the snapshot, uploads, snapshots it and deletes the instance. Unlike `exec`
   * steps it is not cached.
   */
  upload(id: IdRef, localPath: string, remotePath: string, options?: RequestOptions): SnapshotPromise {
    return new SnapshotPromise(
      this.withTemporaryInstance(id, options, async (instance) => {
        await instance.files.upload(localPath, remotePath, options);
        return instance.snapshot({}, options);
      }),
    );
  }

  /**
   * A new snapshot with the same state (memory, processes, files) as `id`, whose parent is `id`:
   * start an instance from it, snapshot the instance, delete the instance.
   */
  clone(id: IdRef, options?: RequestOptions): SnapshotPromise {
    return new SnapshotPromise(this.withTemporaryInstance(id, options, (instance) => instance.snapshot({}, options)));
  }

  private async withTemporaryInstance(id: IdRef, options: RequestOptions | undefined, work: (instance: Instance) => Promise<Snapshot>): Promise<Snapshot> {
    const instance = await this.client.instances.start({ snapshotId: idOf(id) }, options);
    try {
      return await work(instance);
    } finally {
      await instance.delete().catch(() => undefined);
    }
  }
}
