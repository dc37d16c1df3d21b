// Domain records as the engine stores and serves them. Field names match spec/openapi.yaml.

export type Metadata = Record<string, string>;

export interface Resources {
  vcpus: number;
  memory: number; // MB
  diskSize: number; // MB, the writable layer
  /** RLIMIT_NPROC for commands the agent starts (null: none). */
  maxProcesses: number | null;
  /** Mbit/s each way on the instance's veth (tc on the host side); null: no limit. */
  networkBandwidth: number | null;
}

/** Egress policy of an instance, every default filled in (see core/network-config.ts). */
export interface EgressPolicy {
  mode: 'allow-all' | 'deny-all';
  /** IPv4 addresses, CIDRs (canonical, host bits zero) and lower-case host names. */
  allow: string[];
  deny: string[];
  /** DNS to the host's resolvers passes whatever the rest says. */
  dns: boolean;
}

export interface NetworkConfig {
  egress: EgressPolicy;
}

export interface Image {
  id: string;
  name: string;
  source: 'debootstrap' | 'tar';
  size: number;
  digest: string;
  metadata: Metadata;
  createdAt: string;
  /** Id of the API key that imported it; null for the shared default image. */
  owner: string | null;
  /** Host directory of the root filesystem; immutable once a snapshot references it. */
  rootfs: string;
}

export type SnapshotState = 'creating' | 'ready';

export interface Snapshot {
  id: string;
  state: SnapshotState;
  parentId: string | null;
  imageId: string;
  instanceId: string | null;
  name: string | null;
  digest: string;
  checksum: string;
  size: number;
  resources: Resources;
  networkConfig: NetworkConfig;
  environment: Record<string, string>;
  metadata: Metadata;
  createdAt: string;
  expiresAt: string | null;
  /** Id of the API key that made it (null: made before keys existed; admin keys only). */
  owner: string | null;
  /** The OCI spec every restore of this snapshot must reproduce (runsc compares it). */
  spec: string;
  /** Directory holding the checkpoint image files. */
  imageDir: string;
}

export const INSTANCE_STATES = ['pending', 'ready', 'paused', 'stopping', 'stopped', 'error'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export interface Instance {
  id: string;
  snapshotId: string;
  parentInstanceId: string | null;
  state: InstanceState;
  error: string | null;
  resources: Resources;
  networkConfig: NetworkConfig;
  ip: string | null;
  netns: string | null;
  metadata: Metadata;
  ttl: number | null;
  ttlAction: 'stop' | 'pause';
  autoStop: boolean;
  createdAt: string;
  readyAt: string | null;
  stoppedAt: string | null;
  /** Id of the API key that started it (null: made before keys existed; admin keys only). */
  owner: string | null;
}

/** A named line of snapshots (git's branch): `head` moves with each checkpoint of its checked-out instance. */
export interface Branch {
  id: string;
  name: string;
  parentId: string | null;
  /** The snapshot it started at: its merge base with the parent. */
  divergencePoint: string;
  head: string;
  /** The instance last checked out on it; the API shows it only while that instance is live. */
  instanceId: string | null;
  metadata: Metadata;
  createdAt: string;
  /** Id of the API key that made it. */
  owner: string | null;
}

export interface ExecRequest {
  command?: string;
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  user?: string;
  stdin?: string;
  timeout?: number; // ms
}

export interface ExecutionResult {
  exitCode: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  duration: number; // ms
  timedOut: boolean;
  truncated: boolean;
  snapshotId?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface ListQuery {
  limit: number;
  cursor?: string;
  metadata?: Metadata;
}

export const nowIso = () => new Date().toISOString();
