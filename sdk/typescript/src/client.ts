// FaaSClient: configuration, the transport and one object per API area. Resource methods are
// thin; the HTTP details (auth, retries, errors) live in core/http.ts and core/retry.ts.
import { resolveConfig, type ClientConfig } from './core/config.js';
import { HttpTransport, type RequestOptions } from './core/http.js';
import { idOf, type IdRef } from './core/ids.js';
import type * as api from './generated/api.gen.js';
import { ImageManager } from './resources/images.js';
import { SnapshotManager } from './resources/snapshots.js';
import { InstanceManager } from './resources/instances.js';
import { ExecutionOperations, type BatchOptions, type Command, type ExecOptions, type ExecutionResult, type ScriptOptions } from './resources/execution.js';
import type { Snapshot } from './resources/snapshots.js';
import { FileOperations } from './resources/files.js';
import { ProcessOperations } from './resources/processes.js';
import { TerminalOperations } from './resources/terminal.js';
import { EventManager } from './resources/events.js';
import { ParallelOperations } from './resources/parallel.js';
import { BranchManager, type Branch, type CreateBranchConfig } from './resources/branches.js';
import { StateOperations } from './resources/state.js';
import { KeyManager, TokenManager } from './resources/keys.js';
import { SshKeyManager, SshOperations } from './resources/ssh.js';
import { NetworkOperations } from './resources/network.js';

export class FaaSClient {
  /** @internal the transport; use `request()` for routes the SDK does not wrap. */
  readonly http: HttpTransport;
  readonly images: ImageManager;
  readonly snapshots: SnapshotManager;
  readonly instances: InstanceManager;
  readonly branches: BranchManager;
  /** Checkpoints, timelines and rollback of instances (the seed's StateOperations). */
  readonly state: StateOperations;
  readonly execution: ExecutionOperations;
  readonly files: FileOperations;
  readonly processes: ProcessOperations;
  readonly terminals: TerminalOperations;
  /** Port forwards and tunnels (the seed's NetworkOperations). */
  readonly events: EventManager;
  readonly parallel: ParallelOperations;
  /** API keys of the engine (admin keys only). */
  readonly keys: KeyManager;
  /** Short-lived tokens minted from this client's key. */
  readonly tokens: TokenManager;
  /** SSH public keys that may log in through the engine's SSH gateway (owned by this client's key). */
  readonly sshKeys: SshKeyManager;
  /** The SSH gateway: its host key, and `connect(instance)` for an SSHClient. */
  readonly ssh: SshOperations;
  /** HTTP services of instances (exposeHttp, hideHttp, listServices). */
  readonly network: NetworkOperations;

  /**
   * With no arguments the client reads FAAS_API_KEY / FAAS_ENDPOINT, else the local engine's
   * credentials.json ($FAAS_STATE_DIR or /var/lib/faas).
   */
  constructor(config: ClientConfig = {}) {
    this.http = new HttpTransport(resolveConfig(config));
    this.images = new ImageManager(this.http);
    this.snapshots = new SnapshotManager(this);
    this.instances = new InstanceManager(this);
    this.branches = new BranchManager(this);
    this.state = new StateOperations(this);
    this.execution = new ExecutionOperations(this);
    this.files = new FileOperations(this.http);
    this.processes = new ProcessOperations(this.http);
    this.terminals = new TerminalOperations(this.http);
    this.events = new EventManager(this.http);
    this.parallel = new ParallelOperations(this);
    this.keys = new KeyManager(this.http);
    this.tokens = new TokenManager(this.http);
    this.sshKeys = new SshKeyManager(this.http);
    this.ssh = new SshOperations(this.http);
    this.network = new NetworkOperations(this.http);
  }

  get endpoint(): string {
    return this.http.endpoint;
  }

  /** Engine health (no auth needed). */
  health(options?: RequestOptions): Promise<api.HealthResponse> {
    return this.http.request({ ...options, method: 'GET', path: '/v1/health' });
  }

  /** Engine-wide counts and usage (`GET /v1/metrics`). */
  metrics(options?: RequestOptions): Promise<api.EngineMetrics> {
    return this.http.request({ ...options, method: 'GET', path: '/v1/metrics' });
  }

  /**
   * Runs a command. With an instance (or its id) it runs there. With a snapshot id, or nothing
   * (the default root snapshot: your cached one, else a new boot), it runs in a throwaway instance that is deleted
   * afterwards; the result's `snapshotId` is a snapshot taken after the command, so you can
   * continue from that state (the seed's "automatic snapshot creation"; same as the Python SDK).
   */
  async exec(command: Command, target?: IdRef, options?: ExecOptions, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    const id = target === undefined ? undefined : idOf(target);
    if (id !== undefined && !id.startsWith('snap_')) return this.execution.exec(id, command, options, requestOptions);
    const snapshot = id ?? (await this.snapshots.create({}, requestOptions)).id;
    const instance = await this.instances.start({ snapshotId: snapshot }, requestOptions);
    try {
      return await this.execution.exec(instance.id, command, { ...options, snapshot: true }, requestOptions);
    } finally {
      await instance.delete().catch(() => undefined);
    }
  }

  /** `execution.execBatch` (Python: `client.exec_batch`): the commands in order in one instance. */
  execBatch(target: IdRef, commands: Array<string | api.ExecRequest>, options?: BatchOptions, requestOptions?: RequestOptions): Promise<ExecutionResult[]> {
    return this.execution.execBatch(idOf(target), commands, options, requestOptions);
  }

  /** `execution.execScript` (Python: `client.exec_script`). */
  execScript(target: IdRef, script: string, options?: ScriptOptions, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    return this.execution.execScript(idOf(target), script, options, requestOptions);
  }

  /** `execution.execWithSnapshot` (Python: `client.exec_with_snapshot`). */
  execWithSnapshot(target: IdRef, command: Command, options?: ExecOptions, requestOptions?: RequestOptions): Promise<Snapshot> {
    return this.execution.execWithSnapshot(idOf(target), command, options, requestOptions);
  }

  /** A new Branch at `snapshotId` (a fresh root snapshot of the default image when omitted); see `branches`. */
  async branch(snapshotId?: IdRef, config: CreateBranchConfig = {}, options?: RequestOptions): Promise<Branch> {
    const at = snapshotId ?? (await this.snapshots.create({}, options)).id;
    return this.branches.create(at, config, options);
  }

  /** Escape hatch: any route, with the SDK's auth, errors and retries. Returns the parsed JSON. */
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.http.request<T>({ ...options, method, path, json: body });
  }

  /** Closes background connections (the event subscription). */
  close(): void {
    this.events.close();
  }
}
