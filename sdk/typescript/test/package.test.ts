// Package-level checks: the generated types match the spec and the examples type-check against the
// published types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: packageDir, encoding: 'utf8', timeout: 120_000 });

test('src/generated/api.gen.ts is up to date with spec/openapi.yaml', () => {
  const result = run(process.execPath, ['scripts/generate-types.mjs', '--check']);
  assert.equal(result.status, 0, result.stderr);
});

test('examples/*.ts type-check against the public types (tsc --noEmit)', () => {
  const tsc = join(packageDir, '../../node_modules/typescript/bin/tsc');
  const result = run(process.execPath, [tsc, '-p', 'tsconfig.examples.json']);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

// The README quick start (and every other docs block) runs in sdk/python/tests/test_docs_snippets.py.
