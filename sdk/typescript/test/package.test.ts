// Package-level checks: the generated types match the spec, the examples type-check against the
// published types, and the README quick start runs as written against the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { testClient } from './helpers/env.js';

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

test('the README quick start runs as written', async () => {
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'README.md has a ```ts block');
  // Transpile only (the examples test covers types); run it from inside the package so that
  // `@faas/sdk` resolves to this workspace.
  const js = ts.transpileModule(block, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const dir = mkdtempSync(join(packageDir, 'build-test/readme-'));
  const file = join(dir, 'quickstart.mjs');
  writeFileSync(file, js);
  try {
    const before = (await testClient().instances.list({ state: 'ready' })).length;
    const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000, env: process.env });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /hello from faas/);
    assert.equal((await testClient().instances.list({ state: 'ready' })).length, before, 'the quick start stops what it starts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
