// Errors with a stable snake_case code. The HTTP layer maps codes to statuses through the one
// table below; SDKs map them back to classes. Never branch on message text.

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  token_expired: 401,
  key_revoked: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  image_not_found: 404,
  snapshot_not_found: 404,
  instance_not_found: 404,
  branch_not_found: 404,
  process_not_found: 404,
  file_not_found: 404,
  service_not_found: 404,
  instance_not_ready: 409,
  conflict: 409,
  merge_conflict: 409,
  diff_unavailable: 409,
  branch_name_taken: 409,
  branch_has_children: 409,
  branch_not_checked_out: 409,
  no_checkpoint: 409,
  payload_too_large: 413,
  exec_failed: 422,
  resource_limit: 422,
  timeout: 504,
  // The proxy reached the instance, but nothing accepts connections on the service's port.
  service_unreachable: 502,
  runtime_error: 500,
  // The state directory's disk is full: nothing was stored (docs/storage.md).
  storage_full: 507,
  // A stored image failed its checksum (a chunk or file changed on disk): restore refused.
  image_corrupt: 500,
  internal: 500,
  port_not_listening: 502,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class FaasError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | null;
  /** Overrides the table's status where one code has two (resource_limit: 422 or 429). */
  readonly status: number;
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> | null = null,
    opts: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'FaasError';
    this.code = code;
    this.details = details;
    this.status = opts.status ?? ERROR_STATUS[code];
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

export const notFound = (kind: 'image' | 'snapshot' | 'instance' | 'branch' | 'process' | 'file', id: string | number) =>
  new FaasError(`${kind}_not_found` as ErrorCode, `${kind} ${id} does not exist`, { id });

export const forbidden = (message: string, details: Record<string, unknown> | null = null) =>
  new FaasError('forbidden', message, details);

export const invalid = (message: string, details: Record<string, unknown> | null = null) =>
  new FaasError('invalid_request', message, details);

export const conflict = (message: string, details: Record<string, unknown> | null = null) =>
  new FaasError('conflict', message, details);

/**
 * A wait whose deadline the caller chose ran out: nothing failed, the resource is just not there
 * yet. 409 (its state conflicts with the one awaited), not a 5xx that clients retry as transient.
 */
export const waitExpired = (message: string, details: Record<string, unknown>) => new FaasError('timeout', message, details, { status: 409 });

export const tooBusy = (message: string, retryAfterSeconds = 1) =>
  new FaasError('resource_limit', message, null, { status: 429, retryAfterSeconds });
