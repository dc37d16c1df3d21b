// Running commands: plain exec (wait for the result), batch, script, exec + snapshot, and the
// streamed form whose output arrives as an async iterator or through callbacks. Breaking out of
// a `for await` over a stream closes the connection, and the engine then kills the process.
import type * as api from '../generated/api.gen.js';
import type { RequestOptions } from '../core/http.js';
import { errorFromBody, FaaSError, networkError } from '../core/errors.js';
import { readServerSentEvents } from '../core/sse.js';
import { seg, type IdRef } from '../core/ids.js';
import type { FaaSClient } from '../client.js';
import type { Snapshot } from './snapshots.js';

export type ExecutionResult = api.ExecutionResult;
/** A shell command line (run with /bin/sh -c) or an argv array (run without a shell). */
export type Command = string | readonly string[];
/** Everything an exec accepts besides the command itself. */
export type ExecOptions = Omit<api.ExecRequestFields, 'command' | 'argv'>;
export type BatchOptions = Omit<api.BatchExecRequest, 'commands'>;
export type ScriptOptions = Omit<api.ExecScriptRequest, 'script'>;

export type ExecStreamEvent =
  | ({ type: 'start' } & api.ExecStreamStart)
  | ({ type: 'stdout' } & api.ExecStreamChunk)
  | ({ type: 'stderr' } & api.ExecStreamChunk)
  | ({ type: 'exit' } & api.ExecStreamExit);

export interface ExecStreamOptions extends ExecOptions {
  onStart?: (pid: number) => void;
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  onExit?: (exit: api.ExecStreamExit) => void;
}

/** What a stream collected once it ended: the output and the exit. */
export interface ExecStreamResult extends api.ExecStreamExit {
  pid: number | null;
  stdout: string;
  stderr: string;
}

export function execBody(command: Command, options: object = {}): api.ExecRequest {
  return (typeof command === 'string' ? { ...options, command } : { ...options, argv: [...command] }) as api.ExecRequest;
}

/** Milliseconds the HTTP call gets: the command's own timeout plus a margin, at least the default. */
function httpTimeoutFor(commandTimeout: number | undefined, requestOptions?: RequestOptions): RequestOptions {
  if (requestOptions?.timeout !== undefined || commandTimeout === undefined) return requestOptions ?? {};
  return { ...requestOptions, timeout: Math.max(commandTimeout + 60_000, 10 * 60_000) };
}

export class ExecutionOperations {
  constructor(private readonly client: FaaSClient) {}

  /** Runs a command and waits for it. A non-zero exit is a normal result, not an error. */
  exec(target: IdRef, command: Command, options: ExecOptions & { snapshot?: boolean } = {}, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    return this.client.http.request({
      ...httpTimeoutFor(options.timeout, requestOptions),
      method: 'POST',
      path: `/v1/instances/${seg(target)}/exec`,
      json: execBody(command, options),
    });
  }

  /** Runs commands in order; with `stopOnError` the results stop at the first failure. */
  async execBatch(target: IdRef, commands: Array<string | api.ExecRequest>, options: BatchOptions = {}, requestOptions?: RequestOptions): Promise<ExecutionResult[]> {
    const result = await this.client.http.request<api.BatchExecResult>({
      ...requestOptions,
      method: 'POST',
      path: `/v1/instances/${seg(target)}/exec/batch`,
      json: { ...options, commands },
    });
    return result.results;
  }

  execScript(target: IdRef, script: string, options: ScriptOptions = {}, requestOptions?: RequestOptions): Promise<ExecutionResult> {
    return this.client.http.request({
      ...httpTimeoutFor(options.timeout, requestOptions),
      method: 'POST',
      path: `/v1/instances/${seg(target)}/exec/script`,
      json: { ...options, script },
    });
  }

  /**
   * Runs the command, then snapshots the instance (which keeps running) and returns the snapshot.
   * The snapshot is taken whatever the exit code; use `exec(…, { snapshot: true })` to get both.
   */
  async execWithSnapshot(target: IdRef, command: Command, options: ExecOptions = {}, requestOptions?: RequestOptions): Promise<Snapshot> {
    const result = await this.exec(target, command, { ...options, snapshot: true }, requestOptions);
    return this.client.snapshots.get(result.snapshotId!, requestOptions);
  }

  /** Streams the command's output; iterate it, or await it (callbacks still fire) for the collected result. */
  execStream(target: IdRef, command: Command, options: ExecStreamOptions = {}, requestOptions?: RequestOptions): ExecStream {
    const { onStart, onStdout, onStderr, onExit, ...execOptions } = options;
    const open = (signal: AbortSignal) =>
      this.client.http.requestRaw({
        ...requestOptions,
        signal: requestOptions?.signal ? AbortSignal.any([requestOptions.signal, signal]) : signal,
        method: 'POST',
        path: `/v1/instances/${seg(target)}/exec/stream`,
        headers: { Accept: 'text/event-stream' },
        json: execBody(command, execOptions),
      });
    return new ExecStream(open, { onStart, onStdout, onStderr, onExit });
  }
}

export type ExecStreamCallbacks = Pick<ExecStreamOptions, 'onStart' | 'onStdout' | 'onStderr' | 'onExit'>;

/**
 * One streamed command. The request is sent when iteration (or `await`) begins, once: a stream
 * can be consumed a single time. It is never retried after the engine answered, because the
 * command may already have run.
 */
export class ExecStream implements AsyncIterable<ExecStreamEvent>, PromiseLike<ExecStreamResult> {
  private consumed = false;
  private collected?: Promise<ExecStreamResult>;
  private readonly controller = new AbortController();

  constructor(
    private readonly open: (signal: AbortSignal) => Promise<Response>,
    private readonly callbacks: ExecStreamCallbacks,
  ) {}

  /** Stops the stream (the engine kills the process). */
  cancel(): void {
    this.controller.abort(new Error('exec stream cancelled'));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ExecStreamEvent, void, undefined> {
    if (this.consumed) throw new Error('an ExecStream can be consumed only once');
    this.consumed = true;
    const response = await this.open(this.controller.signal);
    try {
      for await (const message of readServerSentEvents(response.body!)) {
        const data = JSON.parse(message.data);
        if (message.event === 'error') throw errorFromBody(data.error, undefined);
        const event = { type: message.event, ...data } as ExecStreamEvent;
        this.notify(event);
        yield event;
        if (event.type === 'exit') return;
      }
      throw networkError('the exec stream ended before the command exited');
    } catch (error) {
      if (error instanceof FaaSError || (error as Error)?.name === 'AbortError' || this.controller.signal.aborted) throw error;
      throw networkError(`the exec stream broke: ${(error as Error).message}`, error);
    } finally {
      // Leaving early (break/throw) must close the connection so the process is killed.
      this.controller.abort(new Error('exec stream closed'));
    }
  }

  private notify(event: ExecStreamEvent): void {
    if (event.type === 'start') this.callbacks.onStart?.(event.pid);
    else if (event.type === 'stdout') this.callbacks.onStdout?.(event.data);
    else if (event.type === 'stderr') this.callbacks.onStderr?.(event.data);
    else this.callbacks.onExit?.({ exitCode: event.exitCode, signal: event.signal, duration: event.duration, timedOut: event.timedOut });
  }

  /** Consumes the stream and collects stdout, stderr and the exit. */
  result(): Promise<ExecStreamResult> {
    this.collected ??= (async () => {
      const out: ExecStreamResult = { pid: null, stdout: '', stderr: '', exitCode: -1, signal: null, duration: 0, timedOut: false };
      for await (const event of this) {
        if (event.type === 'start') out.pid = event.pid;
        else if (event.type === 'stdout') out.stdout += event.data;
        else if (event.type === 'stderr') out.stderr += event.data;
        else Object.assign(out, { exitCode: event.exitCode, signal: event.signal, duration: event.duration, timedOut: event.timedOut });
      }
      return out;
    })();
    return this.collected;
  }

  then<A = ExecStreamResult, B = never>(onFulfilled?: ((value: ExecStreamResult) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.result().then(onFulfilled, onRejected);
  }
}
