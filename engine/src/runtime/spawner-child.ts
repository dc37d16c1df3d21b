// The spawner helper (see spawner.ts): receives spawn requests over the IPC channel, runs each
// program, answers with its exit status and captured output. Exits with the engine (the channel
// closes when the engine goes away) — after the programs it started have finished, so that a
// crash of the engine never cuts a `runsc restore` or `ip netns add` in half (see spawner.ts).
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { SpawnMessage, SpawnReply } from './spawner.js';

const reply = (m: SpawnReply) => {
  if (process.connected) process.send?.(m);
};

let running = 0;
let disconnected = false;
const exitWhenDone = () => {
  if (disconnected && running === 0) process.exit(0);
};

process.on('message', (m: SpawnMessage) => {
  let fd: number | null = null;
  try {
    if (m.logFile) fd = openSync(m.logFile, 'w');
  } catch (err) {
    reply({ id: m.id, error: `cannot open ${m.logFile}: ${(err as Error).message}` });
    return;
  }
  const child = spawn(m.file, m.args, { stdio: [m.input === undefined ? 'ignore' : 'pipe', fd ?? 'pipe', fd ?? 'pipe'] });
  running++;
  let counted = true;
  const finished = () => {
    if (!counted) return;
    counted = false;
    running--;
    setImmediate(exitWhenDone);
  };
  child.once('exit', finished);
  if (child.stdin) {
    child.stdin.on('error', () => undefined); // it may exit before reading everything; its status says why
    child.stdin.end(m.input);
  }
  // The program has its own copy of the log file now.
  if (fd !== null) closeSync(fd);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d));
  child.stderr?.on('data', (d: Buffer) => (stderr += d));
  let done = false;
  child.on('error', (err) => {
    if (done) return;
    done = true;
    reply({ id: m.id, error: err.message });
    if (child.pid === undefined) finished(); // never started: an exit event may not follow
  });
  // With pipes wait for them to close (all output read); with a log file the program may leave a
  // process behind that holds it, so its own exit is the end.
  child.on(fd === null ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
    if (done) return;
    done = true;
    reply({ id: m.id, result: { code, signal, stdout, stderr } });
  });
});

process.on('disconnect', () => {
  disconnected = true;
  exitWhenDone();
});
// A Ctrl-C or a SIGTERM to the engine's process group reaches this helper too; the engine shuts
// down gracefully and still needs it for that (runsc delete, ip netns del), so it ends only when
// the engine's channel closes.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => undefined);
