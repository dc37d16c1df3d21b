// Background processes of an instance. They are children of faas-agent (PID 1), so they outlive
// the client that started them and are carried into every snapshot and branch; the engine keeps
// no state about them and proxies to the agent's process table.
import type { Readable } from 'node:stream';
import { FaasError, notFound, waitExpired } from '../core/errors.js';
import { assertCan, notReadyNow } from '../core/instance-states.js';
import type { ExecRequest, Instance } from '../core/types.js';
import { ndjson, type AgentClient } from '../runtime/agent-client.js';
import { drainOnError } from './files.js';
import type { InstanceService } from './instances.js';

export interface ProcessView {
  pid: number;
  tag: string | null;
  argv: string[];
  command: string | null;
  cwd: string | null;
  state: 'running' | 'exited';
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  exitedAt: string | null;
}

export type OutputEvent =
  | { type: 'stdout' | 'stderr'; seq: number; data: string }
  | { type: 'dropped'; from: number; to: number }
  | { type: 'exit'; exitCode: number; signal: string | null };

export class ProcessService {
  constructor(
    private readonly instances: InstanceService,
    private readonly agents: AgentClient,
  ) {}

  async start(id: string, req: ExecRequest & { tag?: string }): Promise<ProcessView> {
    const spec: Record<string, unknown> = req.argv ? { argv: req.argv } : { command: req.command };
    for (const k of ['cwd', 'env', 'user', 'stdin', 'tag'] as const) if (req[k] !== undefined) spec[k] = req[k];
    if (req.timeout !== undefined) spec.timeoutMs = req.timeout; // background: no default timeout
    return view(await this.call(id, 0, (ip) => this.agents.json(ip, 'POST', '/v1/processes', spec)));
  }

  /** The instance log the agent keeps (background output, start and exit lines): after `since`, the last `tail`. */
  async logs(id: string, opts: { since?: number; tail?: number }): Promise<unknown> {
    const q = new URLSearchParams({ since: String(opts.since ?? 0), ...(opts.tail ? { tail: String(opts.tail) } : {}) });
    return this.call(id, 0, (ip) => this.agents.json(ip, 'GET', `/v1/logs?${q}`));
  }

  async list(id: string): Promise<{ data: ProcessView[] }> {
    const r = (await this.call(id, 0, (ip) => this.agents.json(ip, 'GET', '/v1/processes'))) as { processes: unknown[] };
    return { data: (r.processes ?? []).map(view) };
  }

  async get(id: string, pid: number): Promise<ProcessView> {
    return view(await this.call(id, pid, (ip) => this.agents.json(ip, 'GET', `/v1/processes/${pid}`)));
  }

  /** Waits server-side; a process still running after `timeoutMs` is `409 timeout`. */
  async wait(id: string, pid: number, timeoutMs?: number, signal?: AbortSignal): Promise<ProcessView> {
    const q = timeoutMs ? `?timeoutMs=${timeoutMs}` : '';
    const p = view(await this.call(id, pid, (ip) => this.agents.json(ip, 'POST', `/v1/processes/${pid}/wait${q}`, undefined, undefined, signal)));
    if (p.state === 'running') {
      throw waitExpired(`process ${pid} is still running after ${timeoutMs} ms`, { pid, state: 'running' });
    }
    return p;
  }

  async writeStdin(id: string, pid: number, body: Readable): Promise<void> {
    await drainOnError(body, this.call(id, pid, async (ip) => {
      const res = await this.agents.raw(ip, { method: 'POST', path: `/v1/processes/${pid}/stdin`, body, headers: { 'content-type': 'application/octet-stream' } });
      await res.body.dump();
    }));
  }

  async closeStdin(id: string, pid: number): Promise<void> {
    await this.call(id, pid, (ip) => this.agents.json(ip, 'POST', `/v1/processes/${pid}/stdin/close`));
  }

  async signal(id: string, pid: number, sig: string | number): Promise<void> {
    await this.call(id, pid, (ip) => this.agents.json(ip, 'POST', `/v1/processes/${pid}/signal`, { signal: sig }));
  }

  /** Buffered then (with follow) live output; aborting `signal` closes the agent stream. */
  async output(id: string, pid: number, opts: { follow: boolean; since: number }, signal: AbortSignal): Promise<AsyncGenerator<OutputEvent>> {
    const res = await this.call(id, pid, (ip) =>
      this.agents.raw(ip, { method: 'GET', path: `/v1/processes/${pid}/output?follow=${opts.follow}&since=${opts.since}`, signal }),
    );
    return ndjson<OutputEvent>(res.body);
  }

  private async call<T>(id: string, pid: number, fn: (ip: string) => Promise<T>): Promise<T> {
    const inst: Instance = this.instances.get(id);
    assertCan(inst, 'exec');
    try {
      return await fn(inst.ip!);
    } catch (err) {
      // The agent says `not_found` for an unknown pid; the client mapped that to a file code.
      if (err instanceof FaasError && err.code === 'file_not_found') throw notFound('process', pid);
      const now = this.instances.get(id);
      if (now.state !== 'ready' && err instanceof FaasError && err.code === 'runtime_error') {
        throw notReadyNow(now);
      }
      throw err;
    }
  }
}

function view(raw: unknown): ProcessView {
  const p = raw as ProcessView;
  return {
    pid: p.pid,
    tag: p.tag || null,
    argv: p.argv ?? [],
    command: p.command ?? null,
    cwd: p.cwd || null,
    state: p.state,
    exitCode: p.exitCode ?? null,
    signal: p.signal || null,
    startedAt: p.startedAt,
    exitedAt: p.exitedAt || null,
  };
}
