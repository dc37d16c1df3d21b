// client.instances and the Instance resource. An Instance is a live sandbox restored from a
// snapshot; its lifecycle is pending -> ready <-> paused -> stopping -> stopped (or error), and
// `restart` brings a stopped one back from its snapshot. `await using` stops it at scope exit.
import '../core/dispose.js';
import type * as api from '../generated/api.gen.js';
import type { RequestOptions } from '../core/http.js';
import { withHints, type OptimizationHints } from '../core/config.js';
import { AutoPager } from '../core/pagination.js';
import { seg, type IdRef } from '../core/ids.js';
import type { FaaSClient } from '../client.js';
import { Snapshot, type CacheConfig } from './snapshots.js';
import { Branch } from './branches.js';
import type { Command, ExecOptions, ExecStream, ExecStreamOptions, BatchOptions, ScriptOptions, ExecutionResult } from './execution.js';
import { InstanceFiles, type TransferResult } from './files.js';
import { InstanceProcesses } from './processes.js';
import type { Terminal, TerminalOptions } from './terminal.js';
import type { CheckpointOptions, TimelineEntry } from './state.js';
import type { ExposeHttpOptions, ServiceEndpoint } from './network.js';

export type InstanceData = api.Instance;
export type InstanceState = api.InstanceState;
export type InstanceMetrics = api.InstanceMetrics;
/** Egress policy (allow/deny lists of IPv4 CIDRs and host names, deny-all); see docs/networking.md. */
export type NetworkConfig = api.NetworkConfig;
export type EgressPolicy = api.EgressPolicy;
/** What `setNetwork` changes: fields present replace the instance's, omitted ones stay. */
export type NetworkSettings = api.UpdateInstanceNetworkRequest;

export interface StartInstanceConfig extends Omit<api.CreateInstanceRequest, 'snapshotId'> {
  snapshotId: string;
  /** Answer only once the instance is ready (default true). */
  wait?: boolean;
}

export interface InstanceListFilter {
  state?: InstanceState;
  snapshotId?: string;
  /** Only instances branched from this instance. */
  parentId?: string;
  metadata?: Record<string, string>;
  /** Page size used while iterating (1..200). */
  pageSize?: number;
}

export interface BranchOptions {
  count: number;
  /** Answer when every new instance is ready (default true). */
  wait?: boolean;
  metadata?: Record<string, string>;
  /** One name per new instance: each gets a Branch record (returned in `branches`). */
  names?: string[];
  /** The children's egress policy (default: the parent's). */
  networkConfig?: NetworkConfig;
  /** The children's bandwidth limit in Mbit/s, null for none (default: the parent's). */
  networkBandwidth?: number | null;
  /** How the branch point's image is stored (docs/storage.md). */
  cacheConfig?: CacheConfig;
  /** `parallelExecution: false` restores the children one after another (docs/storage.md). */
  optimizationHints?: OptimizationHints;
}

/** `restart` options: with fromLatestCheckpoint it restores the latest checkpoint of the instance's timeline instead of its snapshot. */
export interface RestartOptions extends RequestOptions {
  fromLatestCheckpoint?: boolean;
}

export interface BranchResult {
  snapshot: Snapshot;
  instances: Instance[];
  /** The Branch records made for the new instances, when `names` was given. */
  branches?: Branch[];
}

const DEFAULT_WAIT_MS = 30_000;
/** Extra time the HTTP call gets beyond an engine-side wait, so the engine answers first. */
const WAIT_MARGIN_MS = 15_000;

export interface InstanceLogsFilter {
  /** Only entries after this sequence number (the `nextSeq` of an earlier answer). */
  since?: number;
  /** At most this many of the newest entries. */
  tail?: number;
}

export class Instance implements InstanceData {
  declare readonly id: string;
  declare readonly snapshotId: string;
  declare readonly parentInstanceId: string | null;
  declare readonly state: InstanceState;
  declare readonly error: string | null;
  declare readonly resources: api.Resources;
  /** The egress policy enforced on the host, every default filled in. */
  declare readonly networkConfig: api.NetworkConfigResolved;
  declare readonly network: { ip: string | null };
  declare readonly endpoints: { agent: string | null };
  declare readonly metadata: Record<string, string>;
  declare readonly ttl: number | null;
  declare readonly ttlAction: 'stop' | 'pause';
  declare readonly autoStop: boolean;
  declare readonly createdAt: string;
  declare readonly readyAt: string | null;
  declare readonly stoppedAt: string | null;
  declare readonly wakeOn: { http: boolean; ssh: boolean };
  /** The HTTP services it exposed, as of this representation (`refresh()` to update). */
  declare readonly services: api.ServiceEndpoint[];
  readonly #client: FaaSClient;

  constructor(client: FaaSClient, data: InstanceData) {
    this.#client = client;
    Object.assign(this, data);
  }

  /** Copies the engine's latest representation into this object (after a lifecycle call). */
  private update(data: InstanceData): this {
    Object.assign(this, data);
    return this;
  }

  /** File operations on this instance (list, read, write, upload, download, …). */
  get files(): InstanceFiles {
    return new InstanceFiles(this.#client.files, this.id);
  }

  /** Background processes of this instance. */
  get processes(): InstanceProcesses {
    return new InstanceProcesses(this.#client.processes, this.id);
  }

  async refresh(options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.http.request({ ...options, method: 'GET', path: `/v1/instances/${seg(this.id)}` }));
  }

  async stop(options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.lifecycle(this.id, 'stop', options));
  }

  async pause(options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.lifecycle(this.id, 'pause', options));
  }

  async resume(options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.lifecycle(this.id, 'resume', options));
  }

  /** Restores it again from its snapshot (or, with fromLatestCheckpoint, its latest checkpoint) under the same id. */
  async restart(options?: RestartOptions): Promise<this> {
    return this.update(await this.#client.instances.restartData(this.id, options));
  }

  /** A checkpoint of this instance (`client.state.checkpoint`). */
  checkpoint(nameOrOptions?: string | CheckpointOptions, options?: RequestOptions): Promise<Snapshot> {
    return this.#client.state.checkpoint(this.id, nameOrOptions, options);
  }

  /** This instance's checkpoints, oldest first (`client.state.timeline`). */
  timeline(options?: RequestOptions): Promise<TimelineEntry[]> {
    return this.#client.state.timeline(this.id, options);
  }

  /** Back in place to the checkpoint `steps` back (1: the latest) (`client.state.rollback`). */
  async rollback(steps = 1, options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.rollbackData(this.id, steps, options));
  }

  delete(options?: RequestOptions): Promise<void> {
    return this.#client.instances.delete(this.id, options);
  }

  async waitUntilReady(timeout?: number, options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.waitUntilReady(this.id, timeout, options));
  }

  getMetrics(options?: RequestOptions): Promise<InstanceMetrics> {
    return this.#client.instances.getMetrics(this.id, options);
  }

  /** This instance's log (`client.instances.logs`). */
  logs(filter: InstanceLogsFilter = {}, options?: RequestOptions): Promise<api.InstanceLogs> {
    return this.#client.instances.logs(this.id, filter, options);
  }

  snapshot(body: api.SnapshotInstanceRequest = {}, options?: RequestOptions): Promise<Snapshot> {
    return this.#client.instances.snapshot(this.id, body, options);
  }

  branch(countOrOptions: number | BranchOptions, options?: RequestOptions): Promise<BranchResult> {
    return this.#client.instances.branch(this.id, countOrOptions, options);
  }

  async setMetadata(metadata: Record<string, string>, options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.setMetadata(this.id, metadata, options));
  }

  /** Changes the egress policy and/or bandwidth limit; a running instance gets them at once. */
  async setNetwork(settings: NetworkSettings, options?: RequestOptions): Promise<this> {
    return this.update(await this.#client.instances.setNetwork(this.id, settings, options));
  }

  exec(command: Command, options?: ExecOptions, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    return this.#client.execution.exec(this.id, command, options, requestOptions);
  }

  execStream(command: Command, options?: ExecStreamOptions, requestOptions?: RequestOptions): ExecStream {
    return this.#client.execution.execStream(this.id, command, options, requestOptions);
  }

  execBatch(commands: Array<string | api.ExecRequest>, options?: BatchOptions, requestOptions?: RequestOptions): Promise<ExecutionResult[]> {
    return this.#client.execution.execBatch(this.id, commands, options, requestOptions);
  }

  execScript(script: string, options?: ScriptOptions, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    return this.#client.execution.execScript(this.id, script, options, requestOptions);
  }

  execWithSnapshot(command: Command, options?: ExecOptions, requestOptions?: RequestOptions): Promise<Snapshot> {
    return this.#client.execution.execWithSnapshot(this.id, command, options, requestOptions);
  }

  /** Serves `port` of this instance under a URL named `name` (client.network.exposeHttp). */
  exposeHttp(name: string, port: number, opts?: ExposeHttpOptions, options?: RequestOptions): Promise<ServiceEndpoint> {
    return this.#client.network.exposeHttp(this.id, name, port, opts, options);
  }

  hideHttp(name: string, options?: RequestOptions): Promise<void> {
    return this.#client.network.hideHttp(this.id, name, options);
  }

  listServices(options?: RequestOptions): Promise<ServiceEndpoint[]> {
    return this.#client.network.listServices(this.id, options);
  }

  /** Uploads a local file or directory (`client.files.upload`; Python: `instance.upload`). */
  upload(localPath: string, remotePath: string, options?: RequestOptions): Promise<TransferResult> {
    return this.#client.files.upload(this.id, localPath, remotePath, options);
  }

  /** Downloads a remote file or directory (`client.files.download`; Python: `instance.download`). */
  download(remotePath: string, localPath: string, options?: RequestOptions): Promise<TransferResult> {
    return this.#client.files.download(this.id, remotePath, localPath, options);
  }

  /** Opens an interactive terminal over WebSocket. */
  terminal(options?: TerminalOptions): Promise<Terminal> {
    return this.#client.terminals.open(this.id, options);
  }

  /** `await using instance = await client.instances.start(…)` stops it when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => undefined);
  }
}

export class InstanceManager {
  constructor(private readonly client: FaaSClient) {}

  private wrap = (data: InstanceData): Instance => new Instance(this.client, data);

  async start(config: StartInstanceConfig, options?: RequestOptions): Promise<Instance> {
    const { wait, ...body } = config;
    return this.wrap(await this.client.http.request({ ...options, method: 'POST', path: '/v1/instances', query: { wait }, json: body }));
  }

  list(filter: InstanceListFilter = {}, options?: RequestOptions): AutoPager<Instance, InstanceData> {
    const { pageSize, ...query } = filter;
    return new AutoPager(
      (cursor) => this.client.http.request({ ...options, method: 'GET', path: '/v1/instances', query: { ...query, limit: pageSize, cursor } }),
      this.wrap,
    );
  }

  async get(id: IdRef, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.client.http.request({ ...options, method: 'GET', path: `/v1/instances/${seg(id)}` }));
  }

  /** @internal shared by the lifecycle methods here and on Instance. */
  lifecycle(id: IdRef, action: 'stop' | 'pause' | 'resume' | 'restart', options?: RequestOptions): Promise<InstanceData> {
    return this.client.http.request({ ...options, method: 'POST', path: `/v1/instances/${seg(id)}/${action}` });
  }

  async stop(id: IdRef, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.lifecycle(id, 'stop', options));
  }

  async pause(id: IdRef, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.lifecycle(id, 'pause', options));
  }

  async resume(id: IdRef, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.lifecycle(id, 'resume', options));
  }

  /**
   * Stops it if needed and restores it again under the same id, keeping its id, metadata, ttl,
   * resources and checkpoints: from its snapshot (its timeline then ends there), or with
   * `fromLatestCheckpoint` from the latest checkpoint of its timeline.
   */
  async restart(id: IdRef, options?: RestartOptions): Promise<Instance> {
    return this.wrap(await this.restartData(id, options));
  }

  /** @internal */
  restartData(id: IdRef, options: RestartOptions = {}): Promise<InstanceData> {
    const { fromLatestCheckpoint, ...requestOptions } = options;
    const json = fromLatestCheckpoint === undefined ? undefined : { fromLatestCheckpoint };
    return this.client.http.request({ ...requestOptions, method: 'POST', path: `/v1/instances/${seg(id)}/restart`, json });
  }

  /** See `client.state.rollback`. */
  async rollback(id: IdRef, steps = 1, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.rollbackData(id, steps, options));
  }

  /** @internal */
  rollbackData(id: IdRef, steps: number, options?: RequestOptions): Promise<InstanceData> {
    return this.client.http.request({ ...options, method: 'POST', path: `/v1/instances/${seg(id)}/rollback`, json: { steps } });
  }

  /** Stops the instance if it runs and forgets it. */
  async delete(id: IdRef, options?: RequestOptions): Promise<void> {
    await this.client.http.request({ ...options, method: 'DELETE', path: `/v1/instances/${seg(id)}` });
  }

  /** Server-side wait (no polling) until `state`; InstanceNotReadyError if it can no longer get there. */
  async wait(id: IdRef, state: InstanceState, timeout = DEFAULT_WAIT_MS, options?: RequestOptions): Promise<Instance> {
    const data = await this.client.http.request<InstanceData>({
      timeout: timeout + WAIT_MARGIN_MS,
      ...options,
      method: 'GET',
      path: `/v1/instances/${seg(id)}/wait`,
      query: { state, timeout },
    });
    return this.wrap(data);
  }

  waitUntilReady(id: IdRef, timeout?: number, options?: RequestOptions): Promise<Instance> {
    return this.wait(id, 'ready', timeout, options);
  }

  getMetrics(id: IdRef, options?: RequestOptions): Promise<InstanceMetrics> {
    return this.client.http.request({ ...options, method: 'GET', path: `/v1/instances/${seg(id)}/metrics` });
  }

  /**
   * The instance log the agent keeps: what background processes wrote (with their pid) and a line
   * when each started and exited, the last 1 MiB. `since` = an earlier answer's `nextSeq` reads
   * only what is new; `tail` keeps the newest N entries.
   */
  logs(id: IdRef, filter: InstanceLogsFilter = {}, options?: RequestOptions): Promise<api.InstanceLogs> {
    return this.client.http.request({ ...options, method: 'GET', path: `/v1/instances/${seg(id)}/logs`, query: { since: filter.since, tail: filter.tail } });
  }

  async setMetadata(id: IdRef, metadata: Record<string, string>, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.client.http.request({ ...options, method: 'PUT', path: `/v1/instances/${seg(id)}/metadata`, json: metadata }));
  }

  /** Changes the egress policy and/or bandwidth limit; a running instance gets them at once. */
  async setNetwork(id: IdRef, settings: NetworkSettings, options?: RequestOptions): Promise<Instance> {
    return this.wrap(await this.client.http.request({ ...options, method: 'PUT', path: `/v1/instances/${seg(id)}/network`, json: settings }));
  }

  /** Checkpoints the running instance into a new snapshot; the instance keeps running. */
  async snapshot(id: IdRef, body: api.SnapshotInstanceRequest = {}, options?: RequestOptions): Promise<Snapshot> {
    const data = await this.client.http.request<api.Snapshot>({ ...options, method: 'POST', path: `/v1/instances/${seg(id)}/snapshot`, json: withHints(this.client.http.hints, body) });
    return new Snapshot(this.client, data);
  }

  /** Live-branches the instance into `count` new running copies (all or none). */
  async branch(id: IdRef, countOrOptions: number | BranchOptions, options?: RequestOptions): Promise<BranchResult> {
    const body: BranchOptions = typeof countOrOptions === 'number' ? { count: countOrOptions } : countOrOptions;
    const result = await this.client.http.request<api.BranchResult>({ ...options, method: 'POST', path: `/v1/instances/${seg(id)}/branch`, json: withHints(this.client.http.hints, body) });
    const branches = result.branches?.map((b) => new Branch(this.client, b));
    return { snapshot: new Snapshot(this.client, result.snapshot), instances: result.instances.map(this.wrap), ...(branches ? { branches } : {}) };
  }
}
