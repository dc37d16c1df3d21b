// Running commands in instances through faas-agent: one-shot, streamed, batched, scripts. Steps on
// snapshots (restore, run, checkpoint, stop; cached by digest) are services/steps.ts.
import { FaasError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { assertCan, notReadyNow } from '../core/instance-states.js';
import type { ExecRequest, ExecutionResult, Instance } from '../core/types.js';
import type { AgentClient, AgentExecEvent } from '../runtime/agent-client.js';
import type { InstanceService } from './instances.js';

export interface BatchInput {
  commands: (string | ExecRequest)[];
  stopOnError?: boolean;
  cwd?: string;
  env?: Record<string, string>;
}

export interface ScriptInput {
  script: string;
  interpreter?: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeout?: number;
}

/**
 * One-shot results are capped at `outputMax` bytes per stream (`truncated: true` beyond): the
 * engine holds what it returns, so the cap bounds its memory per exec. Full output: execStream.
 */
export class ExecService {
  constructor(
    private readonly instances: InstanceService,
    private readonly agents: AgentClient,
    private readonly events: EventBus,
    private readonly outputMax: number,
  ) {}

  /** `signal` (the client went away) kills the command: nobody is left to read its result. */
  async exec(id: string, req: ExecRequest & { snapshot?: boolean }, owner?: string | null, signal?: AbortSignal, outputMax = this.outputMax): Promise<ExecutionResult> {
    const inst = this.ready(id);
    const { snapshot, ...spec } = req;
    const result = await this.guard(inst, () => this.agents.exec(inst.ip!, spec, outputMax, signal));
    this.events.publish('execution.complete', id, { exitCode: result.exitCode, duration: result.duration });
    if (snapshot) result.snapshotId = (await this.instances.snapshot(id, { owner })).id;
    return result;
  }

  async *stream(id: string, req: ExecRequest, signal: AbortSignal): AsyncGenerator<AgentExecEvent> {
    const inst = this.ready(id);
    let it: AsyncGenerator<AgentExecEvent>;
    try {
      it = this.agents.execStream(inst.ip!, req, signal);
      for await (const ev of it) {
        yield ev;
        if (ev.type === 'exit') this.events.publish('execution.complete', id, { exitCode: ev.exitCode, duration: ev.durationMs });
      }
    } catch (err) {
      throw this.explain(inst, err);
    }
  }

  /** The output cap holds for the whole batch: each stream's total stays within `outputMax`. */
  async batch(id: string, input: BatchInput, signal?: AbortSignal): Promise<ExecutionResult[]> {
    const results: ExecutionResult[] = [];
    let out = 0;
    let err = 0;
    for (const c of input.commands) {
      const req: ExecRequest = typeof c === 'string' ? { command: c } : c;
      const left = this.outputMax - Math.max(out, err);
      const r = await this.exec(id, { cwd: input.cwd, ...req, env: { ...input.env, ...req.env } }, null, signal, left);
      out += Buffer.byteLength(r.stdout);
      err += Buffer.byteLength(r.stderr);
      results.push(r);
      if (input.stopOnError && r.exitCode !== 0) break;
    }
    return results;
  }

  script(id: string, input: ScriptInput, signal?: AbortSignal): Promise<ExecutionResult> {
    const interpreter = input.interpreter ?? '/bin/bash';
    // `<interp> -c <script> <argv0> <args…>` works for sh, bash and python3 alike, with no temp file.
    return this.exec(id, {
      argv: [interpreter, '-c', input.script, 'faas-script', ...(input.args ?? [])],
      cwd: input.cwd, env: input.env, stdin: input.stdin, timeout: input.timeout,
    }, null, signal);
  }

  private ready(id: string): Instance {
    const inst = this.instances.get(id);
    assertCan(inst, 'exec');
    return inst;
  }

  private async guard<T>(inst: Instance, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.explain(inst, err);
    }
  }

  /** An unreachable agent usually means the instance stopped under us: say so. */
  private explain(inst: Instance, err: unknown): unknown {
    const now = this.instances.get(inst.id);
    if (now.state !== 'ready' && err instanceof FaasError && err.code === 'runtime_error') {
      return notReadyNow(now);
    }
    return err;
  }
}
