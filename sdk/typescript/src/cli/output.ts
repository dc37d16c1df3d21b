// How the CLI talks back: JSON on stdout with --json (errors as the engine's envelope), tables
// and short lines otherwise, a spinner on stderr for long work when stderr is a terminal, and
// error messages that end with what to do next.
import {
  MergeConflictError,
  BranchNotFoundError,
  FaaSError,
  ImageNotFoundError,
  InstanceNotFoundError,
  InstanceNotReadyError,
  NetworkError,
  ResourceLimitError,
  SnapshotNotFoundError,
  UnauthorizedError,
  ExecFailedError,
  ConflictError,
  PayloadTooLargeError,
} from '../core/errors.js';
import { credentialsPath } from '../core/config.js';

/** Exit codes of the CLI (besides `instance exec`, which exits with the command's own code). */
export const EXIT = { ok: 0, engineError: 1, usage: 2, unreachable: 3 } as const;

export class UsageError extends Error {}

export class Output {
  constructor(readonly json: boolean) {}

  /** Prints a result: the JSON value, or the human text produced by `human`. */
  result(value: unknown, human?: (value: any) => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value ?? null, null, 2)}\n`);
    else if (human) {
      const text = human(value);
      if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Runs `work` with a spinner on stderr (only on a terminal, and never with --json). */
  async progress<T>(label: string, work: Promise<T>): Promise<T> {
    if (this.json || !process.stderr.isTTY) return work;
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    const started = Date.now();
    let frame = 0;
    const draw = () => process.stderr.write(`\r${frames[frame++ % frames.length]} ${label} ${((Date.now() - started) / 1000).toFixed(1)}s `);
    draw();
    const timer = setInterval(draw, 100);
    try {
      return await work;
    } finally {
      clearInterval(timer);
      process.stderr.write('\r\x1b[2K');
    }
  }

  /** Reports an error and returns the exit code to use. */
  error(error: unknown): number {
    if (error instanceof UsageError) {
      if (this.json) this.result({ error: { code: 'usage', message: error.message, details: null, requestId: null } });
      else process.stderr.write(`faas: ${error.message}\nRun \`faas --help\` for usage.\n`);
      return EXIT.usage;
    }
    const fe = error instanceof FaaSError ? error : undefined;
    const code = unreachable(error) ? EXIT.unreachable : EXIT.engineError;
    if (this.json) {
      const body = fe
        ? { code: fe.code, message: fe.message, details: fe.details, requestId: fe.requestId ?? null }
        : localFileError(error) ?? { code: 'cli_error', message: (error as Error)?.message ?? String(error), details: null, requestId: null };
      this.result({ error: body });
      return code;
    }
    const message = (error as Error)?.message ?? String(error);
    const lines = [`faas: ${message}${fe?.requestId ? ` (request ${fe.requestId})` : ''}`];
    const hint = fe ? nextStep(fe) : localFileStep(error);
    if (hint) lines.push(hint);
    process.stderr.write(`${lines.join('\n')}\n`);
    return code;
  }
}

/** The engine could not be reached (not a NetworkError about an instance's port or a local port). */
const unreachable = (error: unknown) => error instanceof NetworkError && error.code === 'network_error';

/** A local file error as an envelope: code `local_file_error`, with the path and errno code. */
function localFileError(error: unknown) {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.path !== 'string') return undefined;
  return { code: 'local_file_error', message: e.message, details: { path: e.path, errno: e.code ?? null }, requestId: null };
}

/** A local file could not be read or written (an fs error that names its path). */
function localFileStep(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.path !== 'string') return undefined;
  if (e.code === 'ENOENT') return `The local path ${JSON.stringify(e.path)} does not exist: check it (relative paths start at ${process.cwd()}).`;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `This user may not use the local path ${JSON.stringify(e.path)}: check its permissions.`;
  return `Check the local path ${JSON.stringify(e.path)}.`;
}

/** What to do next, chosen from the error class (never from the message). */
function nextStep(error: FaaSError): string | undefined {
  if (unreachable(error)) return 'Is the engine running? Check with `faas engine status`, start it with `faas engine start`.';
  if (error instanceof UnauthorizedError) return `The API key was refused: check FAAS_API_KEY, or ${credentialsPath()} of the engine you talk to.`;
  if (error instanceof InstanceNotFoundError) return 'List instances with `faas instance list`.';
  if (error instanceof SnapshotNotFoundError) return 'List snapshots with `faas snapshot list`.';
  if (error instanceof ImageNotFoundError) return 'List images with `faas image list`.';
  if (error instanceof BranchNotFoundError) return 'List branches with `faas branch list`.';
  if (error.code === 'branch_name_taken') return 'Pick another --name, or find the other branch with `faas branch list --name <n>`.';
  if (error.code === 'branch_has_children') return 'Delete the child branches first, or pass --force (they move to this branch\'s parent).';
  if (error.code === 'branch_not_checked_out') return 'Check the branch out first: `faas branch checkout <id>`.';
  if (error instanceof InstanceNotReadyError) {
    const state = error.details?.state;
    if (error.details?.reason === 'out_of_memory') return 'It ran out of memory: start a new instance with more (`faas instance start <snapshot-id> --memory MB`), or make the work use less.';
    if (state === 'paused') return 'The instance is paused: `faas instance resume <id>` first.';
    if (state === 'stopped' || state === 'error') return `The instance is ${state}: \`faas instance restart <id>\` first.`;
    return `The instance is ${state ?? 'not ready'}; wait for it, then retry.`;
  }
  if (error instanceof ExecFailedError) {
    const stderr = typeof error.details?.stderr === 'string' ? error.details.stderr.trim() : '';
    return `${stderr ? `The step's stderr:\n${stderr}\n` : ''}Fix the command and run it again; steps that succeeded are cached.`;
  }
  if (error instanceof ResourceLimitError) {
    return error.statusCode === 429
      ? `Too busy: retry in ${error.retryAfter ?? 'a few'} s, or stop idle instances (\`faas instance list --state ready\`).`
      : 'Ask for less (vcpus, memory, disk or branch count).';
  }
  if (error instanceof ConflictError && error.details?.reason === 'default_image') return 'The default image belongs to the install and stays.';
  if (error instanceof ConflictError && error.details && 'snapshots' in error.details && !('instances' in error.details)) {
    return 'Snapshots were made from this image: delete them first (`faas snapshot delete <id> --force`), then the image.';
  }
  if (error instanceof PayloadTooLargeError) {
    return `The engine refuses bodies over ${error.details?.limit ?? 'its limit'} bytes (images: the engine's FAAS_IMAGE_MAX_BYTES).`;
  }
  if (error instanceof ConflictError && error.details && ('instances' in error.details || 'snapshots' in error.details)) {
    return 'Other resources depend on it: delete them first or pass --force.';
  }
  if (error instanceof MergeConflictError) {
    const list = error.conflicts.map((c) => `  ${c.kind.padEnd(13)} ${JSON.stringify(c.path).slice(1, -1)}`).join('\n');
    return `Conflicting paths:\n${list}\nResolve with --strategy ours|theirs, or per path with --ours PATH / --theirs PATH.`;
  }
  if (error.code === 'diff_unavailable') return 'Snapshot a running instance again (its record of file changes is kept from then on) and compare that snapshot.';
  if (error.code === 'missing_api_key') return undefined; // the message already says what to do
  return undefined;
}

/** A plain text table with a header row. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
