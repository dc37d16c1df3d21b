// Conformance vocabulary for events, parallel, processes, terminals and file transfer
// (tests/conformance/README.md). The Python runner's twin is sdk/python/tests/parity_calls.py: each
// call does the same thing through each SDK's idiomatic API and returns the same plain JSON.
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { FaaSClient, FaaSEvent, Instance } from '../../src/index.js';

type Args = Record<string, any>;

/** A task's failure when its command exits non-zero (the same message as in Python). */
async function stdoutOf(c: FaaSClient, instance: Instance, command: string): Promise<string> {
  const result = await c.execution.exec(instance.id, command);
  if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}`);
  return result.stdout;
}

function withTempDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'faas-conformance-'));
  return run(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** A directory's files as { 'relative/path': utf-8 content }, sorted. */
function readTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(root, path)] = readFileSync(path, 'utf8');
    }
  };
  walk(root);
  return out;
}

export const parityCalls: Record<string, (a: Args, c: FaaSClient) => Promise<unknown>> = {
  'events.replay': async (a, c) => {
    const events: FaaSEvent[] = [];
    for await (const event of c.events.stream({ lastEventId: 0, resourceId: a.resourceId, types: a.types })) {
      events.push(event);
      if (events.length >= a.count) break;
    }
    return events;
  },
  'events.connect': async (_a, c) => {
    c.events.on('*', () => undefined);
    try {
      await c.events.connected();
      return null;
    } finally {
      c.events.close();
    }
  },
  'parallel.map': (a, c) => c.parallel.map(a.items as string[], (item, child) => stdoutOf(c, child, String(a.command).replaceAll('{item}', item)), { source: a.source }),
  'parallel.all': (a, c) => c.parallel.all(a.source, (a.commands as string[]).map((command) => (child: Instance) => stdoutOf(c, child, command))),
  'parallel.race': async (a, c) => {
    const won = await c.parallel.race(a.source, (a.commands as string[]).map((command) => (child: Instance) => stdoutOf(c, child, command)));
    await won.instance.stop();
    return { value: won.value, index: won.index, parentInstanceId: won.instance.parentInstanceId };
  },
  'processes.start': (a, c) => c.processes.start(a.target, a.command),
  'processes.list': (a, c) => c.processes.list(a.target),
  'processes.info': (a, c) => c.processes.info(a.target, a.pid),
  'processes.writeStdin': (a, c) => c.processes.writeStdin(a.target, a.pid, a.data).then(() => null),
  'processes.closeStdin': (a, c) => c.processes.closeStdin(a.target, a.pid).then(() => null),
  'processes.signal': (a, c) => c.processes.signal(a.target, a.pid, a.signal).then(() => null),
  'processes.wait': (a, c) => c.processes.wait(a.target, a.pid),
  'processes.output': async (a, c) => {
    const out = { stdout: '', stderr: '', exitCode: null as number | null };
    for await (const event of c.processes.output(a.target, a.pid)) {
      if (event.type === 'stdout' || event.type === 'stderr') out[event.type] += event.data;
      if (event.type === 'exit') out.exitCode = event.exitCode ?? null;
    }
    return out;
  },
  'terminal.run': async (a, c) => {
    const terminal = await c.terminals.open(a.target, { command: a.command });
    if (a.input !== undefined) terminal.write(a.input);
    let output = '';
    for await (const chunk of terminal) output += chunk.toString('utf8');
    return { output: output.replaceAll('\r\n', '\n'), exitCode: await terminal.exited };
  },
  'files.upload': (a, c) =>
    withTempDir(async (dir) => {
      if (a.files) {
        for (const [name, content] of Object.entries(a.files as Record<string, string>)) {
          mkdirSync(dirname(join(dir, 'tree', name)), { recursive: true });
          writeFileSync(join(dir, 'tree', name), content);
        }
        return c.files.upload(a.target, join(dir, 'tree'), a.path);
      }
      writeFileSync(join(dir, 'file'), a.content);
      return c.files.upload(a.target, join(dir, 'file'), a.path);
    }),
  'files.download': (a, c) =>
    withTempDir(async (dir) => {
      const local = join(dir, 'out');
      await c.files.download(a.target, a.path, local);
      return statSync(local).isDirectory() ? readTree(local) : readFileSync(local, 'utf8');
    }),
  'files.copy': (a, c) => c.files.copy(a.source, a.destination, a.path, { toPath: a.toPath }),
};
