// Talks to faas-agent inside a sandbox (spec/agent-protocol.md) over HTTP/1.1 keep-alive
// connections, one small pool per instance address, so an exec round trip costs no handshake.
// Every request carries the key the agent at that address holds (Authorization: Bearer); the
// client learns it when it gives it (identify) or, after an engine restart, from the records
// (remember). Keys never leave this file except to the store.
import { randomBytes } from 'node:crypto';
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { Readable } from 'node:stream';
import { FaasError, type ErrorCode } from '../core/errors.js';
import type { ExecRequest, ExecutionResult } from '../core/types.js';

export const AGENT_PORT = 7070;

export interface AgentExecEvent {
  type: 'start' | 'stdout' | 'stderr' | 'exit';
  pid?: number;
  data?: string;
  exitCode?: number;
  signal?: string | null;
  durationMs?: number;
  timedOut?: boolean;
}

/**
 * The keys of one identity call: the one the agent holds now (null: a cold-booted agent, which
 * takes its first key on trust) and the one it holds afterwards.
 */
export interface AgentKeys {
  current: string | null;
  next: string;
}

/** A fresh agent key: 256 random bits, header-safe. */
export const newAgentKey = (): string => randomBytes(32).toString('base64url');

const AGENT_CODES: Record<string, ErrorCode> = {
  invalid_request: 'invalid_request',
  not_found: 'file_not_found',
  conflict: 'conflict',
  payload_too_large: 'payload_too_large',
};

export class AgentClient {
  private readonly pools = new Map<string, Pool>();
  private readonly keys = new Map<string, string>();

  pool(ip: string): Pool {
    let p = this.pools.get(ip);
    if (!p) {
      p = new Pool(`http://${ip}:${AGENT_PORT}`, {
        connections: 16,
        keepAliveTimeout: 60_000,
        connect: { timeout: 2_000 },
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(ip, p);
    }
    return p;
  }

  /** Records the key the agent at `ip` holds (adoption after an engine restart). */
  remember(ip: string, key: string): void {
    this.keys.set(ip, key);
  }

  /** The Authorization header value for the agent at `ip` (the terminal's raw upgrade needs it). */
  authorization(ip: string): string | undefined {
    const key = this.keys.get(ip);
    return key ? `Bearer ${key}` : undefined;
  }

  forget(ip: string | null): void {
    if (!ip) return;
    this.keys.delete(ip);
    const p = this.pools.get(ip);
    this.pools.delete(ip);
    void p?.destroy().catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.keys.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }

  /**
   * Tells a freshly booted or restored agent who it is and gives it its key, retrying while its
   * listener is not yet reachable. This call is the readiness check: when it answers, the sandbox
   * serves requests. Re-keying rides on it, so a restore costs no extra round trip.
   */
  async identify(ip: string, instanceId: string, deadlineMs: number, maxProcesses: number | null, keys: AgentKeys): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    const body = JSON.stringify({ instanceId, hostname: instanceId.replace(/_/g, '-'), maxProcesses: maxProcesses ?? 0, key: keys.next });
    let presented = keys.current;
    let delay = 1;
    for (;;) {
      let answer: { keyed?: boolean };
      try {
        const res = await this.raw(ip, { method: 'PUT', path: '/v1/identity', body, signal: AbortSignal.timeout(1_000), key: presented });
        answer = (await res.body.json()) as { keyed?: boolean };
      } catch (err) {
        if (err instanceof FaasError && err.details?.status === 401) {
          // An earlier attempt may have re-keyed it and lost only the answer: the new key then
          // works. Otherwise someone else holds the agent (a first use stolen): never use it.
          if (presented !== keys.next) {
            presented = keys.next;
            continue;
          }
          throw new FaasError('runtime_error', `faas-agent in ${instanceId} refused the engine's key; the sandbox is not used`, null);
        }
        if (Date.now() > deadline) {
          throw new FaasError('runtime_error', `faas-agent in ${instanceId} did not answer within ${deadlineMs} ms`, {
            cause: String((err as Error).message),
          });
        }
        // Connection refused/reset while the restored stack comes up: back off from 1 ms, capped.
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 25);
        continue;
      }
      // An agent from before keys existed (in an old snapshot) takes the call and then obeys
      // anyone: such a sandbox is not used.
      if (answer.keyed !== true) {
        throw new FaasError('runtime_error', `faas-agent in ${instanceId} does not enforce keys (its snapshot was made by an older faas); recreate the snapshot`, null);
      }
      this.keys.set(ip, keys.next);
      return;
    }
  }

  /**
   * One-shot exec keeping at most `maxOutputBytes` of each stream. The agent is asked for base64
   * (a control byte is 6 bytes as JSON text, 1.33 as base64) and its answer is read only up to what
   * that cap allows, so neither a flood nor a misbehaving agent can make the engine hold more.
   */
  async exec(ip: string, req: ExecRequest, maxOutputBytes: number, signal?: AbortSignal): Promise<ExecutionResult> {
    const spec = { ...toAgentSpec(req), maxOutputBytes, outputEncoding: 'base64' };
    const res = await this.raw(ip, { method: 'POST', path: '/v1/exec', body: JSON.stringify(spec), signal });
    // Agents older than the cap ignore outputEncoding and answer text: up to 6 bytes per byte kept.
    const limit = 12 * maxOutputBytes + 64 * 1024;
    const r = JSON.parse(await readBounded(res.body, limit)) as {
      exitCode: number;
      signal: string | null;
      stdout: string;
      stderr: string;
      durationMs: number;
      timedOut: boolean;
      truncated: boolean;
      outputEncoding?: string;
    };
    const stdout = capText(r.stdout, r.outputEncoding, maxOutputBytes);
    const stderr = capText(r.stderr, r.outputEncoding, maxOutputBytes);
    return {
      exitCode: r.exitCode,
      signal: r.signal ?? null,
      stdout: stdout.text,
      stderr: stderr.text,
      duration: r.durationMs,
      timedOut: r.timedOut,
      truncated: (r.truncated ?? false) || stdout.cut || stderr.cut,
    };
  }

  /** Streams NDJSON events of one exec. Aborting the signal disconnects, which kills the process. */
  async *execStream(ip: string, req: ExecRequest, signal?: AbortSignal): AsyncGenerator<AgentExecEvent> {
    const res = await this.raw(ip, { method: 'POST', path: '/v1/exec/stream', body: JSON.stringify(toAgentSpec(req)), signal });
    yield* ndjson<AgentExecEvent>(res.body);
  }

  /** A raw request for routes the engine proxies (files, processes). Errors are mapped. */
  async raw(
    ip: string,
    opts: {
      method: Dispatcher.HttpMethod;
      path: string;
      body?: string | Buffer | Readable | null;
      signal?: AbortSignal;
      headers?: Record<string, string>;
      /** The key to present instead of the one remembered for `ip` (identify; null: none). */
      key?: string | null;
    },
  ): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    const key = opts.key !== undefined ? opts.key : this.keys.get(ip);
    try {
      res = await this.pool(ip).request({
        method: opts.method,
        path: opts.path,
        body: opts.body ?? null,
        signal: opts.signal,
        headers: { 'content-type': 'application/json', ...opts.headers, ...(key ? { authorization: `Bearer ${key}` } : {}) },
      });
    } catch (err) {
      throw unreachable(err);
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text().catch(() => '');
      throw agentError(res.statusCode, text);
    }
    return res;
  }

  async json(ip: string, method: Dispatcher.HttpMethod, path: string, body?: unknown, timeoutMs?: number, signal?: AbortSignal): Promise<unknown> {
    const s = timeoutMs ? AbortSignal.timeout(timeoutMs) : signal;
    const res = await this.raw(ip, { method, path, body: body === undefined ? null : JSON.stringify(body), signal: s });
    if (res.statusCode === 204) {
      await res.body.dump();
      return null;
    }
    return res.body.json();
  }
}

/** Reads a response body as text, failing (and dropping the connection) past `limit` bytes. */
async function readBounded(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new FaasError('runtime_error', `the instance's agent answered more than ${limit} bytes for a capped exec`, { limit });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** Decodes one output stream and holds it to `max` bytes whatever the agent sent. */
function capText(value: string, encoding: string | undefined, max: number): { text: string; cut: boolean } {
  const bytes = encoding === 'base64' ? Buffer.from(value, 'base64') : null;
  const size = bytes ? bytes.length : Buffer.byteLength(value);
  if (size <= max) return { text: bytes ? bytes.toString('utf8') : value, cut: false };
  return { text: (bytes ?? Buffer.from(value)).subarray(0, max).toString('utf8'), cut: true };
}

export function toAgentSpec(req: ExecRequest): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  if (req.argv) spec.argv = req.argv;
  else spec.command = req.command;
  if (req.cwd !== undefined) spec.cwd = req.cwd;
  if (req.env !== undefined) spec.env = req.env;
  if (req.user !== undefined) spec.user = req.user;
  if (req.stdin !== undefined) spec.stdin = req.stdin;
  spec.timeoutMs = req.timeout ?? 300_000;
  return spec;
}

export async function* ndjson<T>(body: AsyncIterable<Buffer | string>): AsyncGenerator<T> {
  let buf = '';
  for await (const chunk of body) {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line) as T;
    }
  }
  if (buf.trim()) yield JSON.parse(buf) as T;
}

function agentError(status: number, text: string): FaasError {
  let code = 'internal';
  let message = text.slice(0, 500);
  try {
    const e = JSON.parse(text).error;
    code = e.code;
    message = e.message;
  } catch {
    /* not an envelope: keep the text */
  }
  const mapped = AGENT_CODES[code];
  if (mapped) return new FaasError(mapped, message, null);
  return new FaasError('runtime_error', `faas-agent answered ${status}: ${message}`, { status });
}

function unreachable(err: unknown): FaasError {
  if (err instanceof undiciErrors.RequestAbortedError || (err as Error).name === 'AbortError') {
    return new FaasError('timeout', 'the request to the instance was aborted or timed out', null);
  }
  if ((err as Error).name === 'TimeoutError') return new FaasError('timeout', 'the instance did not answer in time', null);
  return new FaasError('runtime_error', `the instance's agent is unreachable: ${(err as Error).message}`, { cause: (err as Error).message });
}
