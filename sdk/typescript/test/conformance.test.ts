// Runs every scenario of tests/conformance/scenarios/*.yaml (the format and vocabulary are in
// tests/conformance/README.md) against the real engine, each as one test. The Python SDK runs the
// same files; a behaviour difference between the SDKs is a failing scenario in one of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as sdk from '../src/index.js';
import { testClient } from './helpers/env.js';
import { networkCalls } from './helpers/network-calls.js';
import { parityCalls } from './helpers/parity-calls.js';

interface Step {
  call: string;
  args?: Record<string, unknown>;
  save?: string;
  expect?: unknown;
  expectError?: { code?: string; class?: string; statusCode?: number; details?: unknown };
  /** Run this step as another API key or token (`as: $tenant.secret`). */
  as?: string;
}
interface Scenario {
  name: string;
  description?: string;
  steps: Step[];
  cleanup?: Step[];
}

const scenarioDir = resolve(fileURLToPath(new URL('../../../../tests/conformance/scenarios', import.meta.url)));
const client = testClient();
/** For `raw` steps with `auth: bad`: the same engine, a key it refuses. */
const badClient = new sdk.FaaSClient({ endpoint: client.endpoint, apiKey: 'faas_wrong_key', maxRetries: 0 });

type Args = Record<string, any>;
type Operation = (a: Args, c: sdk.FaaSClient) => Promise<unknown>;

const collect = async <T>(iterable: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
};

/** The vocabulary of the README, each mapped to the idiomatic SDK call. */
const OPERATIONS: Record<string, Operation> = {
  'images.list': (_a, c) => c.images.list().toArray(),
  'images.get': (a, c) => c.images.get(a.id),
  'snapshots.create': (a, c) => c.snapshots.create(a).then((s) => s),
  'snapshots.get': (a, c) => c.snapshots.get(a.id).then((s) => s),
  'snapshots.delete': (a, c) => c.snapshots.delete(a.id, { force: a.force }).then(() => null),
  'snapshots.list': ({ pageSize, ...filter }, c) => collect(c.snapshots.list({ ...filter, pageSize })),
  'snapshots.setMetadata': (a, c) => c.snapshots.setMetadata(a.id, a.metadata).then((s) => s),
  'snapshots.exec': async (a, c) => {
    if (!a.stream) return c.snapshots.exec(a.id, a.command, { fresh: a.fresh }).then((s) => s);
    let output = '';
    const snapshot = await c.snapshots.exec(a.id, a.command, { fresh: a.fresh, onOutput: (data) => void (output += data) });
    return { ...snapshot, output };
  },
  'snapshots.upload': async (a, c) => {
    const dir = mkdtempSync(join(tmpdir(), 'faas-conformance-'));
    try {
      writeFileSync(join(dir, 'content'), a.content);
      return await c.snapshots.upload(a.id, join(dir, 'content'), a.path, { fresh: a.fresh });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  'snapshots.getPool': (a, c) => c.snapshots.getPool(a.id),
  'snapshots.diff': (a, c) => c.snapshots.diff(a.base, a.target, { textDiffs: a.textDiffs }),
  'snapshots.merge': (a, c) => c.snapshots.merge(a.snapshotIds, { strategy: a.strategy, name: a.name }).then((s) => s),
  'snapshots.setPool': (a, c) => c.snapshots.setPool(a.id, { minInstances: a.minInstances, maxInstances: a.maxInstances }),
  'instances.start': (a, c) => c.instances.start(a as sdk.StartInstanceConfig),
  'instances.get': (a, c) => c.instances.get(a.id),
  'instances.stop': (a, c) => c.instances.stop(a.id),
  'instances.pause': (a, c) => c.instances.pause(a.id),
  'instances.resume': (a, c) => c.instances.resume(a.id),
  'instances.restart': (a, c) => c.instances.restart(a.id, a.fromLatestCheckpoint === undefined ? undefined : { fromLatestCheckpoint: a.fromLatestCheckpoint }),
  'snapshots.clone': (a, c) => c.snapshots.clone(a.id, { name: a.name, metadata: a.metadata }).then((s) => s),
  'state.checkpoint': (a, c) => c.state.checkpoint(a.instance, a.name),
  'state.restore': (a, c) => c.state.restore(a.snapshotId),
  'state.timeline': (a, c) => c.state.timeline(a.instance),
  'state.rollback': (a, c) => c.state.rollback(a.instance, a.steps),
  'instances.delete': (a, c) => c.instances.delete(a.id).then(() => null),
  'instances.list': ({ pageSize, ...filter }, c) => collect(c.instances.list({ ...filter, pageSize })),
  'instances.waitUntilReady': (a, c) => c.instances.waitUntilReady(a.id, a.timeout),
  'instances.getMetrics': (a, c) => c.instances.getMetrics(a.id),
  'instances.logs': ({ id, ...filter }, c) => c.instances.logs(id, filter),
  'instances.snapshot': (a, c) => c.instances.snapshot(a.id, { name: a.name, metadata: a.metadata, cacheConfig: a.cacheConfig, optimizationHints: a.optimizationHints }),
  'instances.branch': ({ id, ...options }, c) => c.instances.branch(id, options as sdk.BranchOptions),
  'instances.setNetwork': ({ id, ...settings }, c) => c.instances.setNetwork(id, settings),
  'branches.create': (a, c) => c.branches.create(a.snapshotId, { name: a.name, metadata: a.metadata }),
  'branches.get': (a, c) => c.branches.get(a.id),
  'branches.list': (a, c) => c.branches.list({ parentId: a.parentId, name: a.name, pageSize: a.pageSize }).toArray(),
  'branches.delete': (a, c) => c.branches.delete(a.id, { force: a.force }).then(() => null),
  'branches.checkout': (a, c) => c.branches.checkout(a.id),
  'branches.commit': (a, c) => c.branches.commit(a.id, a.message),
  'branches.diff': (a, c) => c.branches.diff(a.id, a.target, { textDiffs: a.textDiffs }),
  'branches.merge': (a, c) => c.branches.merge(a.branchIds, { strategy: a.strategy, message: a.message }),
  'branches.rebase': (a, c) => c.branches.rebase(a.id, a.target, { strategy: a.strategy }),
  exec: (a, c) => c.execution.exec(a.target, a.command),
  execBatch: (a, c) => c.execution.execBatch(a.target, a.commands),
  execScript: (a, c) => c.execution.execScript(a.target, a.script, { interpreter: a.interpreter, args: a.args }),
  execWithSnapshot: (a, c) => c.execution.execWithSnapshot(a.target, a.command),
  execStream: async (a, c) => {
    const events: string[] = [];
    const result = await c.execution.execStream(a.target, a.command, {
      onStart: () => events.push('start'),
      onStdout: () => events.push('stdout'),
      onStderr: () => events.push('stderr'),
      onExit: () => events.push('exit'),
    });
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode, events };
  },
  'files.write': (a, c) => c.files.write(a.target, a.path, a.content).then(() => null),
  'files.read': (a, c) => c.files.readText(a.target, a.path),
  'files.list': (a, c) => c.files.list(a.target, a.path),
  'files.mkdir': (a, c) => c.files.mkdir(a.target, a.path, { parents: a.parents }).then(() => null),
  'files.remove': (a, c) => c.files.remove(a.target, a.path, { recursive: a.recursive }).then(() => null),
  'keys.create': (a, c) => c.keys.create({ name: a.name, admin: a.admin }),
  'keys.list': (_a, c) => c.keys.list().toArray(),
  'keys.revoke': (a, c) => c.keys.revoke(a.id).then(() => null),
  'tokens.create': (a, c) => c.tokens.create({ expiresIn: a.expiresIn }),
  'network.exposeHttp': (a, c) => c.network.exposeHttp(a.instance, a.name, a.port, { auth: a.auth }),
  'network.hideHttp': (a, c) => c.network.hideHttp(a.instance, a.name).then(() => null),
  'network.listServices': (a, c) => c.network.listServices(a.instance),
  'sshKeys.add': (a, c) => c.sshKeys.add(a.publicKey, { name: a.name }),
  'sshKeys.list': (_a, c) => c.sshKeys.list().toArray(),
  'sshKeys.remove': (a, c) => c.sshKeys.remove(a.id).then(() => null),
  'ssh.host': (_a, c) => c.ssh.host(),
  'ssh.execCommand': async (a, c) => {
    const ssh = await c.ssh.connect(a.target);
    try {
      return await ssh.execCommand(a.command);
    } finally {
      await ssh.disconnect();
    }
  },
  raw: (a, c) => (a.auth === 'bad' ? badClient : c).request(a.method, a.path, a.body),
  ...networkCalls,
  ...parityCalls,
};

/** `$name.path[0].x` reads a saved value; any other value is taken literally (recursively). */
function resolveValue(value: unknown, saved: Record<string, unknown>): unknown {
  if (typeof value === 'string' && value.startsWith('$')) {
    const [name, ...rest] = value.slice(1).split(/(?=[.[])/);
    if (!(name in saved)) throw new Error(`unknown variable $${name}`);
    let current: any = saved[name];
    for (const part of rest) {
      const key = part.startsWith('[') ? Number(part.slice(1, -1)) : part.slice(1);
      current = current?.[key];
    }
    return current;
  }
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, saved));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveValue(v, saved)]));
  return value;
}

/** Results as plain JSON; a list becomes `{ items, length }` as the README says. */
function normalize(result: unknown): unknown {
  const plain = result === undefined ? null : JSON.parse(JSON.stringify(result));
  return Array.isArray(plain) ? { items: plain, length: plain.length } : plain;
}

function match(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'string' && expected.startsWith('~')) {
    if (expected === '~any') return assert.ok(actual !== undefined && actual !== null, `${path}: expected a value`);
    if (expected.startsWith('~re:')) return assert.match(String(actual), new RegExp(expected.slice(4)), path);
    if (expected.startsWith('~len:')) return assert.equal((actual as { length?: number })?.length, Number(expected.slice(5)), `${path}: length`);
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected a list, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: list length`);
    expected.forEach((e, i) => match(actual[i], e, `${path}[${i}]`));
    return;
  }
  if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [key, value] of Object.entries(expected)) match((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

async function runStep(step: Step, saved: Record<string, unknown>, index: number): Promise<void> {
  const operation = OPERATIONS[step.call];
  assert.ok(operation, `step ${index}: unknown call ${step.call}`);
  const args = resolveValue(step.args ?? {}, saved) as Args;
  const where = `step ${index} (${step.call})`;
  const as = step.as === undefined ? undefined : String(resolveValue(step.as, saved));
  const c = as === undefined ? client : new sdk.FaaSClient({ endpoint: client.endpoint, apiKey: as, maxRetries: 0 });
  if (step.expectError) {
    const error: any = await operation(args, c).then(
      (r) => assert.fail(`${where}: expected ${step.expectError!.code}, got ${JSON.stringify(normalize(r))}`),
      (e) => e,
    );
    assert.ok(error instanceof sdk.FaaSError, `${where}: not a FaaSError: ${error}`);
    const { code, class: className, statusCode, details } = resolveValue(step.expectError, saved) as NonNullable<Step['expectError']>;
    if (code !== undefined) assert.equal(error.code, code, `${where}: code`);
    if (className !== undefined) {
      const Class = (sdk as Record<string, unknown>)[className];
      assert.ok(typeof Class === 'function', `${where}: the SDK has no class ${className}`);
      assert.ok(error instanceof (Class as Function), `${where}: expected ${className}, got ${error.constructor.name}`);
    }
    if (statusCode !== undefined) assert.equal(error.statusCode, statusCode, `${where}: statusCode`);
    if (details !== undefined) match(error.details, details, `${where}: details`);
    return;
  }
  const result = normalize(await operation(args, c));
  // Expectations may name earlier results ($snap.id); resolved before this step's own save.
  const expected = resolveValue(step.expect, saved);
  if (step.save) saved[step.save] = result;
  if (step.expect !== undefined) match(result, expected, where);
}

// FAAS_CONFORMANCE_SCENARIOS=events,parallel runs only those files (while working on them).
const only = process.env.FAAS_CONFORMANCE_SCENARIOS?.split(',').filter(Boolean);
const files = (existsSync(scenarioDir) ? readdirSync(scenarioDir).filter((f) => /\.ya?ml$/.test(f)).sort() : []).filter(
  (f) => !only || only.includes(f.replace(/\.ya?ml$/, '')),
);
if (files.length === 0) test('conformance scenarios', (t) => t.skip(`no scenarios in ${scenarioDir}`));

for (const file of files) {
  let scenario: Scenario;
  try {
    scenario = parse(readFileSync(join(scenarioDir, file), 'utf8')) as Scenario;
  } catch (error) {
    test(`conformance: ${file}`, () => assert.fail(`cannot parse ${file}: ${(error as Error).message}`));
    continue;
  }
  test(`conformance: ${scenario.name} (${file})`, async () => {
    const saved: Record<string, unknown> = {};
    try {
      for (const [i, step] of scenario.steps.entries()) await runStep(step, saved, i);
    } finally {
      for (const [i, step] of (scenario.cleanup ?? []).entries()) await runStep({ ...step, expect: undefined }, saved, i).catch(() => undefined);
    }
  });
}
