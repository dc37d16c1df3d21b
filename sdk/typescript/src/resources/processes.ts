// Background processes: start one and get a handle to wait for it, signal or kill it, feed its
// stdin and follow its output (an async iterator that can resume from a sequence number).
import type * as api from '../generated/api.gen.js';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { readServerSentEvents } from '../core/sse.js';
import { seg, type IdRef } from '../core/ids.js';
import { execBody, type Command } from './execution.js';

export type ProcessInfo = api.Process;
export type ProcessStartOptions = Omit<api.ProcessStartRequestFields, 'command' | 'argv'>;
export type ProcessOutputEvent =
  | ({ type: 'stdout' } & api.ProcessOutputChunk)
  | ({ type: 'stderr' } & api.ProcessOutputChunk)
  | ({ type: 'dropped' } & api.ProcessOutputDropped)
  | ({ type: 'exit' } & api.ProcessOutputExit);

export interface OutputOptions extends RequestOptions {
  /** Keep streaming live output until the process exits (default true). */
  follow?: boolean;
  /** Only chunks after this sequence number (resume a reader). */
  since?: number;
}

export class ProcessOperations {
  constructor(private readonly http: HttpTransport) {}

  private path(target: IdRef, pid?: number, route = ''): string {
    return `/v1/instances/${seg(target)}/processes${pid === undefined ? '' : `/${pid}`}${route}`;
  }

  async start(target: IdRef, command: Command, options: ProcessStartOptions = {}, requestOptions?: RequestOptions): Promise<ProcessHandle> {
    const info = await this.http.request<ProcessInfo>({ ...requestOptions, method: 'POST', path: this.path(target), json: execBody(command, options) });
    return new ProcessHandle(this, target, info);
  }

  async list(target: IdRef, options?: RequestOptions): Promise<ProcessHandle[]> {
    const list = await this.http.request<api.ProcessList>({ ...options, method: 'GET', path: this.path(target) });
    return list.data.map((info) => new ProcessHandle(this, target, info));
  }

  async get(target: IdRef, pid: number, options?: RequestOptions): Promise<ProcessHandle> {
    return new ProcessHandle(this, target, await this.info(target, pid, options));
  }

  info(target: IdRef, pid: number, options?: RequestOptions): Promise<ProcessInfo> {
    return this.http.request({ ...options, method: 'GET', path: this.path(target, pid) });
  }

  /** Waits for the exit (engine-side); TimeoutError after `timeout` ms while it still runs. */
  wait(target: IdRef, pid: number, timeout?: number, options?: RequestOptions): Promise<ProcessInfo> {
    // Without an engine timeout the wait is unbounded, so the HTTP call must not time out first.
    const httpTimeout = timeout === undefined ? 2 ** 31 - 1 : timeout + 15_000;
    return this.http.request({ timeout: httpTimeout, ...options, method: 'POST', path: this.path(target, pid, '/wait'), query: { timeout } });
  }

  async signal(target: IdRef, pid: number, signal: string | number, options?: RequestOptions): Promise<void> {
    await this.http.request({ ...options, method: 'POST', path: this.path(target, pid, '/signal'), json: { signal } });
  }

  async writeStdin(target: IdRef, pid: number, data: string | Uint8Array, options?: RequestOptions): Promise<void> {
    // Raw bodies skip the engine's idempotency store, so a retried write could repeat the data.
    await this.http.request({ ...options, idempotencyKey: null, method: 'POST', path: this.path(target, pid, '/stdin'), body: () => data });
  }

  async closeStdin(target: IdRef, pid: number, options?: RequestOptions): Promise<void> {
    await this.http.request({ ...options, method: 'POST', path: this.path(target, pid, '/stdin/close') });
  }

  async *output(target: IdRef, pid: number, options: OutputOptions = {}): AsyncGenerator<ProcessOutputEvent, void, undefined> {
    const { follow = true, since, ...requestOptions } = options;
    const response = await this.http.requestRaw({
      ...requestOptions,
      method: 'GET',
      path: this.path(target, pid, '/output'),
      query: { follow, since },
      headers: { Accept: 'text/event-stream' },
    });
    for await (const message of readServerSentEvents(response.body!)) {
      yield { type: message.event, ...JSON.parse(message.data) } as ProcessOutputEvent;
      if (message.event === 'exit') return;
    }
  }
}

/** A background process. Its fields are a snapshot of when it was fetched; `refresh()` updates them. */
export class ProcessHandle {
  constructor(
    private readonly ops: ProcessOperations,
    private readonly target: IdRef,
    public info: ProcessInfo,
  ) {}

  get pid(): number {
    return this.info.pid;
  }

  async refresh(options?: RequestOptions): Promise<ProcessInfo> {
    return (this.info = await this.ops.info(this.target, this.pid, options));
  }

  async wait(timeout?: number, options?: RequestOptions): Promise<ProcessInfo> {
    return (this.info = await this.ops.wait(this.target, this.pid, timeout, options));
  }

  signal(signal: string | number, options?: RequestOptions): Promise<void> {
    return this.ops.signal(this.target, this.pid, signal, options);
  }

  /** Sends SIGKILL (or the given signal) to the process group. */
  kill(signal: string | number = 'SIGKILL', options?: RequestOptions): Promise<void> {
    return this.ops.signal(this.target, this.pid, signal, options);
  }

  sendStdin(data: string | Uint8Array, options?: RequestOptions): Promise<void> {
    return this.ops.writeStdin(this.target, this.pid, data, options);
  }

  closeStdin(options?: RequestOptions): Promise<void> {
    return this.ops.closeStdin(this.target, this.pid, options);
  }

  output(options?: OutputOptions): AsyncGenerator<ProcessOutputEvent, void, undefined> {
    return this.ops.output(this.target, this.pid, options);
  }

  toJSON(): ProcessInfo {
    return this.info;
  }
}

/** Processes bound to one instance (`instance.processes`). */
export class InstanceProcesses {
  constructor(
    private readonly ops: ProcessOperations,
    readonly instanceId: string,
  ) {}

  start(command: Command, options?: ProcessStartOptions, requestOptions?: RequestOptions) {
    return this.ops.start(this.instanceId, command, options, requestOptions);
  }
  list(options?: RequestOptions) {
    return this.ops.list(this.instanceId, options);
  }
  get(pid: number, options?: RequestOptions) {
    return this.ops.get(this.instanceId, pid, options);
  }
}
