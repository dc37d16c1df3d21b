#!/usr/bin/env node
// Fails when a public method or resource exists in one SDK and not the other (issue 16, item 4).
// TypeScript is introspected at run time from the built package (sdk/typescript/dist: the client's
// resources and their prototype chains, the bound classes, the exported error classes); Python by
// scripts/sdk-surface.py (inspect). camelCase is mapped to snake_case. What exists in one language
// only, or under another name, is listed with a reason in sdk/parity-allowlist.json; an entry that
// no longer matches anything fails too, so the list cannot rot.
//   node scripts/check-sdk-parity.mjs [--json] [--allowlist FILE]
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BOUND = ['Instance', 'Snapshot', 'Branch', 'ProcessHandle', 'Terminal', 'PortForward', 'Tunnel', 'SSHClient', 'SSHShell', 'ExecStream'];
const ERROR_RENAMES = { TimeoutError: 'FaaSTimeoutError' };

export const snake = (name) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toLowerCase();

/**
 * The SDK's classes and their `private`/`@internal` members, from the compiled declarations: at run
 * time TypeScript's private methods are ordinary properties, so the d.ts says what is public.
 */
function declaredClasses() {
  const classes = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = resolve(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.d.ts')) {
        let current;
        let internal = false;
        for (const line of readFileSync(path, 'utf8').split('\n')) {
          const declared = /^(?:export )?declare (?:abstract )?class (\w+)/.exec(line);
          if (declared) classes.set((current = declared[1]), new Set());
          if (/@internal/.test(line)) internal = true;
          const member = /^    (private |protected )?(?:static )?(?:readonly )?(?:get |set |async )?(\w+)[?(:<;]/.exec(line);
          if (current && member) {
            if (member[1] || internal) classes.get(current).add(member[2]);
            internal = false;
          }
        }
      }
    }
  };
  walk(resolve(root, 'sdk/typescript/dist'));
  return classes;
}
const CLASSES = declaredClasses();

/** Public method and accessor names along a prototype chain of SDK classes (inherited Node classes such as EventEmitter are not the SDK's surface). */
function members(proto) {
  const names = new Set();
  for (let p = proto; p && CLASSES.has(p.constructor?.name); p = Object.getPrototypeOf(p)) {
    const hidden = CLASSES.get(p.constructor.name);
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) {
      if (name === 'constructor' || name.startsWith('_') || hidden.has(name)) continue;
      if (typeof d.value === 'function' || d.get) names.add(name);
    }
  }
  return [...names];
}

async function typescriptSurface() {
  const sdk = await import(pathToFileURL(resolve(root, 'sdk/typescript/dist/index.js')).href);
  const client = new sdk.FaaSClient({ apiKey: 'parity-check', endpoint: 'http://127.0.0.1:1' });
  const surface = { client: members(Object.getPrototypeOf(client)).map(snake) };
  for (const [name, value] of Object.entries(client)) {
    if (name === 'http' || typeof value !== 'object' || value === null) continue;
    surface[snake(name)] = members(Object.getPrototypeOf(value)).map(snake);
  }
  for (const name of BOUND) surface[`class ${name}`] = sdk[name] ? members(sdk[name].prototype).map(snake) : [];
  surface.errors = Object.keys(sdk).filter((n) => typeof sdk[n] === 'function' && sdk[n].prototype instanceof Error).map((n) => ERROR_RENAMES[n] ?? n);
  client.close();
  return surface;
}

function pythonSurface() {
  const run = spawnSync('python3', [resolve(root, 'scripts/sdk-surface.py')], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`scripts/sdk-surface.py failed:\n${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** `area.name` keys of one surface. */
function keys(surface) {
  const out = new Set();
  for (const [area, names] of Object.entries(surface)) {
    out.add(`${area}`);
    for (const n of names) out.add(`${area}.${n}`);
  }
  return out;
}

const listArg = process.argv.indexOf('--allowlist');
const allowPath = listArg > 0 ? resolve(process.argv[listArg + 1]) : resolve(root, 'sdk/parity-allowlist.json');
const allow = JSON.parse(readFileSync(allowPath, 'utf8'));
const ts = keys(await typescriptSurface());
const py = keys(pythonSurface());
const used = new Set();
const covered = (key, side) =>
  allow.entries.some((e, i) => {
    const hit = (e[side] === key || (e[side]?.endsWith('.*') && key.startsWith(e[side].slice(0, -1)))) && (e.only === side || e.only === undefined);
    if (hit) used.add(i);
    return hit;
  });
const problems = [];
for (const key of ts) if (!py.has(key) && !covered(key, 'typescript')) problems.push(`only in TypeScript: ${key}`);
for (const key of py) if (!ts.has(key) && !covered(key, 'python')) problems.push(`only in Python: ${key}`);
allow.entries.forEach((e, i) => {
  if (!e.reason) problems.push(`allow-list entry without a reason: ${JSON.stringify(e)}`);
  if (!used.has(i)) problems.push(`stale allow-list entry (matches nothing missing): ${JSON.stringify(e)}`);
});
if (process.argv.includes('--json')) console.log(JSON.stringify({ problems }, null, 2));
else if (problems.length) console.error(`SDK parity check failed (${problems.length}); add the missing method to the other SDK, or list it with a reason in sdk/parity-allowlist.json:\n  ${problems.join('\n  ')}`);
else console.log(`SDK parity: ${ts.size} TypeScript and ${py.size} Python names compared, ${allow.entries.length} allow-listed differences`);
process.exit(problems.length ? 1 : 0);
