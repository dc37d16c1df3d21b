// The SDK's error tree. Every engine error arrives as {error: {code, message, details, requestId}};
// the class is chosen from `code` through the one table below (never from the message, which is
// not stable). The names match tests/conformance/README.md so both SDKs raise the same classes.
import type { ErrorCode } from '../generated/api.gen.js';

export interface FaaSErrorInit {
  code: string;
  statusCode?: number;
  details?: Record<string, unknown> | null;
  requestId?: string;
  /** Seconds the engine asked us to wait (Retry-After), when it sent one. */
  retryAfter?: number;
  cause?: unknown;
}

/** Base class of every error the SDK throws on purpose. Branch on `code` or on the subclass. */
export class FaaSError extends Error {
  /** Stable snake_case code from the engine (`instance_not_found`, …) or `network_error`. */
  readonly code: string;
  /** HTTP status of the response, when there was one. */
  readonly statusCode?: number;
  /** Machine-readable context for the code (e.g. `state`, `exitCode`, `field`), or null. */
  readonly details: Record<string, unknown> | null;
  /** The engine's request id (X-Request-Id); quote it in bug reports. */
  readonly requestId?: string;
  readonly retryAfter?: number;

  constructor(message: string, init: FaaSErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.statusCode = init.statusCode;
    this.details = init.details ?? null;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter;
  }
}

export class InvalidRequestError extends FaaSError {}
export class UnauthorizedError extends FaaSError {}
/** A session token's `expiresAt` has passed (clients with `useSessionTokens` refresh it themselves). */
export class TokenExpiredError extends UnauthorizedError {}
/** The API key (or the key a token was minted from) has been revoked. */
export class KeyRevokedError extends UnauthorizedError {}
/** The key is valid but may not do this (key management needs an admin key; tokens cannot mint). */
export class ForbiddenError extends FaaSError {}
/** Base of every "does not exist" error; also raised alone for an unknown route (`not_found`). */
export class NotFoundError extends FaaSError {}
export class ImageNotFoundError extends NotFoundError {}
export class SnapshotNotFoundError extends NotFoundError {}
export class InstanceNotFoundError extends NotFoundError {}
export class BranchNotFoundError extends NotFoundError {}
export class ProcessNotFoundError extends NotFoundError {}
export class FileNotFoundError extends NotFoundError {}
/** The instance exposes no HTTP service of that name (`hideHttp` of a name not exposed). */
export class ServiceNotFoundError extends NotFoundError {}
/** The instance is in a state that does not allow the call; `details.state` holds it. */
export class InstanceNotReadyError extends FaaSError {}
export class ConflictError extends FaaSError {}
/** A merge found paths changed on both sides; `conflicts` lists each path, its kind and the sides. */
export class MergeConflictError extends ConflictError {
  get conflicts(): MergeConflict[] {
    return ((this.details as { conflicts?: MergeConflict[] } | null)?.conflicts ?? []);
  }
}
/** One conflicting path of a merge (`MergeConflictError.conflicts`). */
export interface MergeConflict {
  path: string;
  /** The exact bytes, base64, when the path is not valid UTF-8. */
  pathBase64?: string;
  kind: 'modify/modify' | 'add/add' | 'modify/delete' | 'delete/modify' | 'typeChange';
  base: string | null;
  ours: string;
  theirs: string;
}
/** A rollback (or restart fromLatestCheckpoint) has no checkpoint that far back; `details.available` says how many there are. */
export class NoCheckpointError extends ConflictError {}
export class PayloadTooLargeError extends FaaSError {}
/** A snapshot step exited non-zero; `details` = {exitCode, stdout, stderr}. */
export class ExecFailedError extends FaaSError {}
/** Too much asked of the host (422) or too many things at once (429, with `retryAfter`). */
export class ResourceLimitError extends FaaSError {}
/** A wait reached its `timeout` (409) or an engine-side operation hit its limit (504). Not the client's own request timeout. */
export class TimeoutError extends FaaSError {}
/** The sandbox runtime (gVisor runsc) failed; `details` carries its message. */
export class RuntimeFailureError extends FaaSError {}
export class InternalError extends FaaSError {}
/** The engine's proxy reached the instance but nothing accepts connections on the service's port (502). */
export class ServiceUnreachableError extends FaaSError {}
/** The client could not get an answer from the engine: connection refused/reset, or the client-side timeout. */
export class NetworkError extends FaaSError {}

/**
 * Every task of a parallel operation failed (`parallel.race`): `errors` holds each task's error,
 * in task order. Same class and fields in the Python SDK. Code `parallel_failed` (client-side only).
 */
export class ParallelError extends FaaSError {
  readonly errors: unknown[];

  constructor(message: string, errors: unknown[]) {
    super(message, { code: 'parallel_failed', cause: errors[errors.length - 1] });
    this.errors = errors;
  }
}

export type ErrorClass = new (message: string, init: FaaSErrorInit) => FaaSError;

/** THE table: engine code -> class. Typed against the spec's ErrorCode so a new code fails the build. */
export const ERROR_CLASSES: Record<ErrorCode, ErrorClass> = {
  invalid_request: InvalidRequestError,
  unauthorized: UnauthorizedError,
  token_expired: TokenExpiredError,
  key_revoked: KeyRevokedError,
  forbidden: ForbiddenError,
  image_not_found: ImageNotFoundError,
  snapshot_not_found: SnapshotNotFoundError,
  instance_not_found: InstanceNotFoundError,
  branch_not_found: BranchNotFoundError,
  process_not_found: ProcessNotFoundError,
  file_not_found: FileNotFoundError,
  service_not_found: ServiceNotFoundError,
  service_unreachable: ServiceUnreachableError,
  not_found: NotFoundError,
  // The SDK never sends a method the spec does not list; a 405 means the route is not there.
  method_not_allowed: NotFoundError,
  instance_not_ready: InstanceNotReadyError,
  conflict: ConflictError,
  // Conflicts with a branch: `code` says which (details.name / details.children / details.id).
  branch_name_taken: ConflictError,
  branch_has_children: ConflictError,
  branch_not_checked_out: ConflictError,
  merge_conflict: MergeConflictError,
  // A snapshot without a record of its file changes (details.reason).
  diff_unavailable: ConflictError,
  no_checkpoint: NoCheckpointError,
  payload_too_large: PayloadTooLargeError,
  exec_failed: ExecFailedError,
  resource_limit: ResourceLimitError,
  timeout: TimeoutError,
  runtime_error: RuntimeFailureError,
  internal: InternalError,
  // Nothing in the instance listens on a forwarded port: a network failure, on the instance's side.
  port_not_listening: NetworkError,
  // The engine's disk is full (507): a host resource ran out; nothing was stored (docs/storage.md).
  storage_full: ResourceLimitError,
  // A stored image failed its checksum at restore: the runtime refused it (details.chunk).
  image_corrupt: RuntimeFailureError,
};

export interface ErrorBodyLike {
  code?: unknown;
  message?: unknown;
  details?: unknown;
  requestId?: unknown;
}

/** Builds the right subclass from an engine error body (HTTP response or an SSE `error` event). */
export function errorFromBody(body: ErrorBodyLike | undefined, statusCode?: number, extra: Partial<FaaSErrorInit> = {}): FaaSError {
  const code = typeof body?.code === 'string' ? body.code : statusCode ? `http_${statusCode}` : 'unknown';
  const message = typeof body?.message === 'string' ? body.message : `engine answered HTTP ${statusCode ?? '?'}`;
  const Class = (ERROR_CLASSES as Record<string, ErrorClass>)[code] ?? FaaSError;
  const details = body?.details && typeof body.details === 'object' ? (body.details as Record<string, unknown>) : null;
  const requestId = typeof body?.requestId === 'string' ? body.requestId : undefined;
  return new Class(message, { code, statusCode, details, requestId, ...extra });
}

export function networkError(message: string, cause?: unknown): NetworkError {
  return new NetworkError(message, { code: 'network_error', cause });
}

/** The SSH gateway refused or broke a session (SSHClient); `code` is `ssh_error`. */
export class SSHError extends FaaSError {}
/** The SSH gateway did not accept the credential (API key or private key); `code` is `ssh_auth_failed`. */
export class SSHAuthenticationError extends SSHError {}
