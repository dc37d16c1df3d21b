// Error mapping: the one table covers every code of the spec, and each code the engine can be
// made to answer arrives as its class with statusCode, details and requestId.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '../src/index.js';
import { ERROR_CLASSES } from '../src/core/errors.js';
import { InstanceTracker, sharedSnapshotId, testClient, requireEngine } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
after(() => tracker.cleanup());

const README_NAMES: Record<string, string> = {
  invalid_request: 'InvalidRequestError',
  unauthorized: 'UnauthorizedError',
  token_expired: 'TokenExpiredError',
  key_revoked: 'KeyRevokedError',
  forbidden: 'ForbiddenError',
  image_not_found: 'ImageNotFoundError',
  snapshot_not_found: 'SnapshotNotFoundError',
  instance_not_found: 'InstanceNotFoundError',
  branch_not_found: 'BranchNotFoundError',
  branch_name_taken: 'ConflictError',
  branch_has_children: 'ConflictError',
  branch_not_checked_out: 'ConflictError',
  merge_conflict: 'MergeConflictError',
  diff_unavailable: 'ConflictError',
  process_not_found: 'ProcessNotFoundError',
  file_not_found: 'FileNotFoundError',
  service_not_found: 'ServiceNotFoundError',
  service_unreachable: 'ServiceUnreachableError',
  port_not_listening: 'NetworkError',
  storage_full: 'ResourceLimitError',
  image_corrupt: 'RuntimeFailureError',
  not_found: 'NotFoundError',
  instance_not_ready: 'InstanceNotReadyError',
  conflict: 'ConflictError',
  no_checkpoint: 'NoCheckpointError',
  payload_too_large: 'PayloadTooLargeError',
  exec_failed: 'ExecFailedError',
  resource_limit: 'ResourceLimitError',
  timeout: 'TimeoutError',
  runtime_error: 'RuntimeFailureError',
  internal: 'InternalError',
  method_not_allowed: 'NotFoundError',
};

test('every engine code maps to the class named in tests/conformance/README.md', () => {
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), Object.keys(README_NAMES).sort());
  for (const [code, name] of Object.entries(README_NAMES)) {
    const error = sdk.errorFromBody({ code, message: 'm', details: { a: 1 }, requestId: 'req_1' }, 400);
    assert.equal(error.constructor.name, name);
    assert.equal(error.name, name);
    assert.ok(error instanceof sdk.FaaSError);
    assert.equal(error.code, code);
    assert.equal(error.requestId, 'req_1');
    assert.deepEqual(error.details, { a: 1 });
    assert.equal((sdk as Record<string, unknown>)[name], error.constructor);
  }
  // A rollback past the first checkpoint is a conflict too: code that catches ConflictError still does.
  assert.ok(new sdk.NoCheckpointError('m', { code: 'no_checkpoint' }) instanceof sdk.ConflictError);
  for (const name of ['ImageNotFoundError', 'SnapshotNotFoundError', 'InstanceNotFoundError', 'BranchNotFoundError', 'ProcessNotFoundError', 'FileNotFoundError']) {
    assert.ok(new (sdk as any)[name]('m', { code: 'x' }) instanceof sdk.NotFoundError, name);
  }
  assert.ok(new sdk.NetworkError('m', { code: 'network_error' }) instanceof sdk.FaaSError);
  const merge = sdk.errorFromBody({ code: 'merge_conflict', message: 'm', details: { conflicts: [{ path: '/p', kind: 'add/add', base: null, ours: 'snap_a', theirs: 'snap_b' }] } }, 409);
  assert.ok(merge instanceof sdk.ConflictError);
  assert.equal((merge as sdk.MergeConflictError).conflicts[0].kind, 'add/add');
  // An unknown future code still gives the base class, never a crash.
  assert.equal(sdk.errorFromBody({ code: 'brand_new', message: 'm' }, 418).constructor, sdk.FaaSError);
});

async function expectError(promise: Promise<unknown>, Class: new (...args: any[]) => sdk.FaaSError, code: string, statusCode: number): Promise<any> {
  const error: any = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e) => e,
  );
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${error?.constructor?.name}: ${error?.message}`);
  assert.equal(error.code, code);
  assert.equal(error.statusCode, statusCode);
  assert.match(String(error.requestId), /^req_/);
  return error;
}

test('not-found codes from the engine', async () => {
  await expectError(client.instances.get('inst_doesnotexist'), sdk.InstanceNotFoundError, 'instance_not_found', 404);
  await expectError(client.snapshots.get('snap_doesnotexist'), sdk.SnapshotNotFoundError, 'snapshot_not_found', 404);
  await expectError(client.images.get('img_doesnotexist'), sdk.ImageNotFoundError, 'image_not_found', 404);
  await expectError(client.request('GET', '/v1/nothing-here'), sdk.NotFoundError, 'not_found', 404);
  await expectError(client.instances.start({ snapshotId: 'snap_doesnotexist' }), sdk.SnapshotNotFoundError, 'snapshot_not_found', 404);
});

test('invalid_request carries the offending field', async () => {
  const error = await expectError(client.instances.get('not-an-id'), sdk.InvalidRequestError, 'invalid_request', 400);
  assert.ok(error.details === null || typeof error.details === 'object');
  await expectError(client.snapshots.create({ vcpus: 0 }), sdk.InvalidRequestError, 'invalid_request', 400);
});

test('unauthorized with a wrong key', async () => {
  const { endpoint } = requireEngine();
  const bad = new sdk.FaaSClient({ endpoint, apiKey: 'wrong' });
  await expectError(bad.instances.list().toArray(), sdk.UnauthorizedError, 'unauthorized', 401);
});

test('instance_not_ready, timeout and conflict on a live instance', async () => {
  const instance = await tracker.start();
  await instance.pause();
  const notReady = await expectError(instance.exec('true'), sdk.InstanceNotReadyError, 'instance_not_ready', 409);
  assert.equal(notReady.details?.state, 'paused');
  await instance.resume();
  // Waiting for a state it will not reach in 1 ms runs out the caller's deadline: 409, not retried.
  await expectError(client.instances.wait(instance.id, 'stopped', 1), sdk.TimeoutError, 'timeout', 409);
  // A snapshot that a live instance uses cannot be deleted without force.
  const snapshot = await instance.snapshot();
  const child = tracker.track(await snapshot.start());
  const conflict = await expectError(snapshot.delete(), sdk.ConflictError, 'conflict', 409);
  assert.ok(conflict.details);
  await child.delete();
  await snapshot.delete({ force: true });
});

test('exec_failed from a snapshot step carries exitCode and stderr', async () => {
  const error = await expectError(client.snapshots.exec(sharedSnapshotId(), 'echo oops >&2; exit 3'), sdk.ExecFailedError, 'exec_failed', 422);
  assert.equal(error.details?.exitCode, 3);
  assert.match(String(error.details?.stderr), /oops/);
});

test('resource_limit when asking for more than the host has', async () => {
  await expectError(client.snapshots.create({ memory: 262144, vcpus: 64 }), sdk.ResourceLimitError, 'resource_limit', 422);
});
