// faas instance exec|shell|cp: the commands that move bytes between this terminal and an instance.
import type { ExecStreamResult } from '../resources/execution.js';
import type { TransferResult } from '../resources/files.js';
import { arg, int, pairs, str, type CommandGroup } from './command.js';
import { commandFrom } from './snapshots.js';
import { UsageError } from './output.js';

/** `inst_x:/path` names a path in an instance; anything else is a local path. */
function parseLocation(text: string): { instanceId?: string; path: string } {
  const match = /^(inst_[a-z0-9]+):(\/.*)$/.exec(text);
  return match ? { instanceId: match[1], path: match[2] } : { path: text };
}

/** The exit code of a command killed at its --timeout (as GNU timeout(1) and `docker exec` tools use). */
export const TIMED_OUT = 124;

/** Everything piped into this CLI (not a terminal), as text for the command; undefined when none. */
async function pipedStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks.length ? Buffer.concat(chunks).toString('utf8') : undefined;
}

export const instanceIoCommands: CommandGroup = {
  exec: {
    usage: "<instance-id> [--cwd DIR] [--env K=V]… [--user U] [--timeout MS] [--no-stdin] ('<shell line>' | <program> [args…])",
    summary:
      "Run a command, streaming its output; exits with the command's exit code (124 when --timeout killed it). " +
      'Words after the program are its own (`exec I ls -la`). Piped stdin is sent to it (--no-stdin: not read)',
    options: { cwd: { type: 'string' }, env: { type: 'string', multiple: true, short: 'e' }, user: { type: 'string' }, timeout: { type: 'string' }, 'no-stdin': { type: 'boolean' } },
    passthroughAfter: 1,
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const timeout = int(ctx, 'timeout');
      const stdin = ctx.values['no-stdin'] === true ? undefined : await pipedStdin();
      const options = { cwd: str(ctx, 'cwd'), env: pairs(ctx, 'env'), user: str(ctx, 'user'), timeout, stdin };
      const stream = ctx.client().execution.execStream(id, commandFrom(ctx, 1), {
        ...options,
        onStdout: ctx.out.json ? undefined : (data) => process.stdout.write(data),
        onStderr: ctx.out.json ? undefined : (data) => process.stderr.write(data),
      });
      // Ctrl-C closes the stream, and the engine kills the command.
      let interrupted = false;
      const onInterrupt = () => {
        interrupted = true;
        stream.cancel();
      };
      process.once('SIGINT', onInterrupt);
      try {
        const result: ExecStreamResult = await stream;
        ctx.out.result(result);
        if (result.timedOut) {
          // Without this line the user sees only the kill's exit status (137) and no reason.
          const limit = timeout === undefined ? 'the default limit of 300000 ms (5 min)' : `--timeout ${timeout} ms`;
          if (!ctx.out.json) process.stderr.write(`faas: the command ran past ${limit} and was killed; give it more with --timeout MS (at most 3600000), or split the work\n`);
          return TIMED_OUT;
        }
        return result.exitCode;
      } catch (error) {
        if (interrupted) return 130; // the shell convention for a command ended by Ctrl-C
        throw error;
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    },
  },
  shell: {
    usage: '<instance-id> [--command <cmd>]',
    summary: 'Open an interactive terminal (with --json: run --command and print its output)',
    options: { command: { type: 'string', short: 'c' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const command = str(ctx, 'command');
      const stdout = process.stdout;
      const terminal = await ctx.client().terminals.open(id, { command, cols: stdout.columns, rows: stdout.rows });
      if (ctx.out.json) {
        if (!command) throw new UsageError('shell --json needs --command, since nobody types into it');
        let output = '';
        terminal.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
        const exitCode = await terminal.exited;
        ctx.out.result({ exitCode, output });
        return exitCode ?? 1;
      }
      const stdin = process.stdin;
      const raw = stdin.isTTY === true;
      if (raw) stdin.setRawMode(true);
      const onInput = (chunk: Buffer) => terminal.write(chunk);
      const onResize = () => terminal.resize(stdout.columns, stdout.rows);
      stdin.on('data', onInput);
      stdout.on('resize', onResize);
      terminal.on('data', (chunk: Buffer) => stdout.write(chunk));
      try {
        return (await terminal.exited) ?? 0;
      } finally {
        stdin.off('data', onInput);
        stdout.off('resize', onResize);
        if (raw) stdin.setRawMode(false);
        stdin.pause();
      }
    },
  },
  cp: {
    usage: '<src> <dst>   (one or both as <instance-id>:/path)',
    summary: 'Copy files or directories between here and instances',
    async run(ctx) {
      const source = parseLocation(arg(ctx, 0, 'src'));
      const destination = parseLocation(arg(ctx, 1, 'dst'));
      const files = ctx.client().files;
      let work: Promise<TransferResult>;
      if (!source.instanceId && !destination.instanceId) throw new UsageError('one side of cp must be <instance-id>:/path');
      if (source.instanceId && destination.instanceId) {
        work = files.copy(source.instanceId, destination.instanceId, source.path, { toPath: destination.path });
      } else if (destination.instanceId) {
        work = files.upload(destination.instanceId, source.path, destination.path);
      } else {
        work = files.download(source.instanceId!, source.path, destination.path);
      }
      const result = await ctx.out.progress('copying', work);
      ctx.out.result(result, (r: TransferResult) => `copied ${r.files} file(s), ${r.bytes} bytes`);
    },
  },
};
