// Starts a real engine (real runsc, real network namespaces) on a temporary state directory and
// gives tests a small HTTP client whose every response is checked against the contract.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../src/config.js';
import { createEngine, type Engine } from '../src/engine.js';
import type { Logger } from '../src/services/logger.js';
import { checkResponse } from './contract.js';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestEngine {
  url: string;
  key: string;
  engine: Engine;
  config: Config;
  api<T = any>(method: string, path: string, body?: unknown, opts?: { headers?: Record<string, string>; raw?: BodyInit | Buffer }): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

let counter = 0;

export function testConfig(stateDir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    FAAS_STATE_DIR: stateDir,
    FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.210.0.0/16',
    FAAS_NET_TAG: `t${process.pid.toString(36).slice(-3)}${counter++}`,
    FAAS_NETNS_POOL: '2',
    // Test engines run side by side: each SSH gateway takes a free port (GET /v1/ssh/host says which).
    FAAS_SSH_PORT: '0',
    ...extra,
  });
}

export async function startEngine(opts: { stateDir?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<TestEngine> {
  const stateDir = opts.stateDir ?? mkdtempSync('/tmp/faas-test-');
  const config = testConfig(stateDir, opts.env);
  const engine = await createEngine(config, opts.log);
  await engine.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = engine.app.server.address() as { port: number };
  const url = `http://127.0.0.1:${addr.port}`;
  const key = engine.apiKey;
  return {
    url, key, engine, config,
    async api(method, path, body, o = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${key}`, ...o.headers };
      let payload = o.raw as BodyInit | undefined;
      if (body !== undefined) {
        headers['content-type'] ??= 'application/json';
        payload = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const res = await fetch(url + path, { method, headers, body: payload, duplex: 'half' } as RequestInit);
      const type = res.headers.get('content-type') ?? '';
      const text = await res.text();
      const parsed = type.includes('application/json') && text ? JSON.parse(text) : text;
      checkResponse(engine.contract, method, path, res.status, type, parsed);
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      // clean: the engine's namespaces, firewall chains and runsc mount go too, so test runs
      // leave no rules behind.
      await engine.shutdown({ stopInstances: true, clean: true });
      purge(stateDir);
    },
  };
}

/** Removes a state directory, first unmounting what runsc mounted inside it. */
export function purge(stateDir: string): void {
  try {
    execFileSync('umount', ['-l', join(stateDir, 'runsc', 'null-netns')], { stdio: 'ignore' });
  } catch {
    /* not mounted */
  }
  rmSync(stateDir, { recursive: true, force: true });
}

/** Reads a text/event-stream response into [event, data] pairs. */
export async function readSse(res: Response): Promise<{ event: string; data: any }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const ev = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null';
      return { event: ev, data: JSON.parse(data) };
    });
}

export const sh = (command: string) => ({ command });

/**
 * The calls most lifecycle tests repeat, each asserting its status (and an exec's exit code 0).
 * `get` returns the suite's current engine (suites restart theirs).
 */
export function checkedCalls(get: () => TestEngine) {
  return {
    exec: async (id: string, command: string) => {
      const r = await get().api('POST', `/v1/instances/${id}/exec`, { command });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.exitCode, 0, r.body.stderr);
      return r.body as { exitCode: number; stdout: string; stderr: string };
    },
    /** Checkpoints a running instance; the snapshot's id. */
    snapshot: async (id: string) => {
      const r = await get().api('POST', `/v1/instances/${id}/snapshot`, {});
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.id as string;
    },
    /** Starts an instance of a snapshot; its id. */
    start: async (snapshotId: string) => {
      const r = await get().api('POST', '/v1/instances', { snapshotId });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.id as string;
    },
  };
}
