// Public surface of @faas/sdk.
import './core/dispose.js';

export { FaaSClient } from './client.js';
export type { ClientConfig, TokenProvider, Credentials, OptimizationHints } from './core/config.js';
export { credentialsPath, readCredentials, stateDir, DEFAULT_ENDPOINT } from './core/config.js';
export type { RequestOptions, HttpTransport, RequestSpec, QueryValue, BodyInit } from './core/http.js';
export * from './core/errors.js';
export { AutoPager } from './core/pagination.js';
export type { Page, FetchPage } from './core/pagination.js';
export type { IdRef } from './core/ids.js';

export { Snapshot, SnapshotPromise, SnapshotManager } from './resources/snapshots.js';
export type { SnapshotData, SnapshotConfig, SnapshotListFilter, DeleteSnapshotOptions, SnapshotExecOptions, SnapshotUploadOptions, CacheConfig, SnapshotStorage } from './resources/snapshots.js';
export { Instance, InstanceManager } from './resources/instances.js';
export { Branch, BranchManager } from './resources/branches.js';
export type { BranchData, CreateBranchConfig, BranchListFilter, DeleteBranchOptions, CommitOptions, ForkOptions } from './resources/branches.js';
export { pathBytes } from './resources/diff.js';
export type { BranchDiff, SnapshotDiff, FileChange, MergeStrategy, MergeOptions, RebaseOptions, DiffOptions } from './resources/diff.js';
export { StateOperations } from './resources/state.js';
export type { TimelineEntry, CheckpointOptions } from './resources/state.js';
export type { InstanceData, InstanceState, InstanceMetrics, InstanceLogsFilter, StartInstanceConfig, InstanceListFilter, BranchOptions, BranchResult, RestartOptions, NetworkConfig, EgressPolicy, NetworkSettings } from './resources/instances.js';
export { ImageManager } from './resources/images.js';
export type { Image, ImageListFilter, ImportImageOptions } from './resources/images.js';
export { ExecutionOperations, ExecStream } from './resources/execution.js';
export type { Command, ExecOptions, BatchOptions, ScriptOptions, ExecutionResult, ExecStreamEvent, ExecStreamOptions, ExecStreamResult, ExecStreamCallbacks } from './resources/execution.js';
export { FileOperations, InstanceFiles } from './resources/files.js';
export type { FileInfo, TransferResult, FileContent, WriteFileOptions } from './resources/files.js';
export { ProcessOperations, ProcessHandle, InstanceProcesses } from './resources/processes.js';
export type { ProcessInfo, ProcessStartOptions, ProcessOutputEvent, OutputOptions } from './resources/processes.js';
export { Terminal, TerminalOperations } from './resources/terminal.js';
export type { TerminalOptions } from './resources/terminal.js';
export { PortForwardOperations, PortForward, Tunnel } from './resources/port-forwards.js';
export type { TunnelConfig } from './resources/port-forwards.js';
export { EventManager, ANY_EVENT } from './resources/events.js';
export type { FaaSEvent, EventHandler, ErrorHandler, EventStreamOptions } from './resources/events.js';
export { ParallelOperations } from './resources/parallel.js';
export { NetworkOperations } from './resources/network.js';
export type { ServiceEndpoint, ServiceAuth, ExposeHttpOptions } from './resources/network.js';
export { KeyManager, TokenManager } from './resources/keys.js';
export type { ApiKey, CreatedKey, Token, CreateKeyConfig } from './resources/keys.js';
export { SSHClient, SSHShell, SshKeyManager, SshOperations } from './resources/ssh.js';
export type { SshKey, SshHost, SSHConnectOptions, SSHExecResult } from './resources/ssh.js';
export { SessionTokens, DEFAULT_TOKEN_EXPIRES_IN } from './core/session.js';
export type { MintedToken } from './core/session.js';
export type { Task, BranchTask, MapOptions, RaceResult } from './resources/parallel.js';

/** Types generated from spec/openapi.yaml, for code that wants the wire shapes. */
export type * as api from './generated/api.gen.js';
