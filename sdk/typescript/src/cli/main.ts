#!/usr/bin/env node
// `faas` — the command line of the faas engine: faas <group> <action> [args] [--json], and a few
// single commands (faas prune|events|metrics). Global options (--json, --endpoint, --api-key)
// go before or after the group name; the command's own options anywhere after its action, up to
// the program of `exec`, whose words are all its own (`faas instance exec I ls -la`).
// Exit codes: 0 ok, 1 the engine refused (or another error), 2 usage, 3 engine unreachable;
// `faas instance exec` exits with the command's own code (124 when --timeout killed it).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FaaSClient } from '../client.js';
import type { Command, CommandGroup, Context, Options } from './command.js';
import { engineCommands } from './engine.js';
import { imageCommands } from './images.js';
import { instanceCommands } from './instances.js';
import { EXIT, Output, UsageError } from './output.js';
import { snapshotCommands } from './snapshots.js';
import { branchDiffCommands, snapshotDiffCommands } from './diff.js';
import { keyCommands, tokenCommands } from './keys.js';
import { branchCommands } from './branches.js';
import { sshKeyCommands } from './ssh.js';
import { completionCommands } from './completion.js';
import { topCommands } from './top.js';

const GROUPS: Record<string, CommandGroup> = {
  engine: engineCommands,
  image: imageCommands,
  snapshot: { ...snapshotCommands, ...snapshotDiffCommands },
  instance: instanceCommands,
  branch: { ...branchCommands, ...branchDiffCommands },
  key: keyCommands,
  token: tokenCommands,
  'ssh-key': sshKeyCommands,
};
/** Commands without an action word: `faas prune`, `faas events`, `faas metrics`. */
const TOP: Record<string, Command> = topCommands;
GROUPS.completion = completionCommands(() => ({
  ...Object.fromEntries(Object.entries(GROUPS).map(([g, actions]) => [g, Object.keys(actions)])),
  ...Object.fromEntries(Object.keys(TOP).map((t) => [t, []])),
}));

const GLOBAL_OPTIONS: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  endpoint: { type: 'string' },
  'api-key': { type: 'string' },
};

/** The CLI's version: the version of the package it ships in. */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(group?: string): string {
  const groups = group ? [group] : Object.keys(GROUPS);
  const lines = ['usage: faas [--endpoint URL] [--api-key KEY] <group> <action> [arguments] [--json]', ''];
  for (const name of groups) {
    for (const [action, command] of Object.entries(GROUPS[name])) {
      lines.push(`  faas ${name} ${action} ${command.usage}`.trimEnd(), `      ${command.summary}`);
    }
  }
  if (!group) for (const [name, command] of Object.entries(TOP)) lines.push(`  faas ${name} ${command.usage}`.trimEnd(), `      ${command.summary}`);
  lines.push('', 'Every command takes --json for machine-readable output (errors as {"error": {...}}); list commands also --format and -q.');
  lines.push('The client reads FAAS_API_KEY / FAAS_ENDPOINT (else FAAS_HOST/FAAS_PORT), else $FAAS_STATE_DIR/credentials.json (default /var/lib/faas).');
  lines.push('`faas --version` prints the version; `faas completion bash|zsh|fish` prints a completion script.');
  return lines.join('\n');
}

/** Takes the global options that come before the group name; the rest starts at the group. */
function leadingGlobals(argv: string[]): { values: Record<string, string | boolean>; rest: string[] } {
  const values: Record<string, string | boolean> = {};
  let i = 0;
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    const [name, inline] = argv[i].replace(/^--?/, '').split(/=(.*)/s, 2);
    const option = name === 'h' ? 'help' : name === 'V' ? 'version' : name;
    if (option === 'help' || option === 'version' || option === 'json') values[option] = true;
    else if (option === 'endpoint' || option === 'api-key') {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${option} needs a value`);
      values[option] = value;
    } else throw new UsageError(`unknown global option ${JSON.stringify(argv[i])} (before the group only --endpoint, --api-key, --json, --help and --version)`);
  }
  return { values, rest: argv.slice(i) };
}

/** Index in `args` where the passthrough words begin (after `after` positionals), or -1. */
function passthroughStart(args: string[], options: Options, after: number): number {
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    if (word === '--') return i;
    if (word.startsWith('-') && word.length > 1) {
      const long = word.startsWith('--');
      const name = long ? word.slice(2).split('=')[0] : word[1];
      const option = long ? options[name] : Object.values(options).find((o) => o.short === name);
      const takesValue = option?.type === 'string' && (long ? !word.includes('=') : word.length === 2);
      if (takesValue) i++;
      continue;
    }
    if (positionals++ === after) return i;
  }
  return -1;
}

function parseCommand(command: Command, args: string[]) {
  const options = { ...GLOBAL_OPTIONS, ...command.options };
  let own = args;
  let tail: string[] = [];
  if (command.passthroughAfter !== undefined) {
    const start = passthroughStart(args, options, command.passthroughAfter);
    if (start >= 0) {
      own = args.slice(0, start);
      tail = args[start] === '--' ? args.slice(start + 1) : args.slice(start);
    }
  }
  try {
    const parsed = parseArgs({ args: own, options, allowPositionals: true, strict: true });
    return { values: parsed.values as Context['values'], positionals: [...parsed.positionals, ...tail] };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export async function run(argv: string[]): Promise<number> {
  // --json anywhere is the CLI's (also after an exec program: pass `--` + sh -c to give it one).
  const json = argv.includes('--json');
  const out = new Output(json);
  try {
    const globals = leadingGlobals(argv.filter((a) => a !== '--json'));
    if (globals.values.version) {
      out.result({ version: cliVersion() }, (v: { version: string }) => `faas ${v.version}`);
      return EXIT.ok;
    }
    const [groupName, ...afterGroup] = globals.rest;
    if (!groupName || globals.values.help || groupName === 'help') {
      process.stdout.write(`${usage()}\n`);
      return EXIT.ok;
    }
    let command: Command | undefined = TOP[groupName];
    let name = groupName;
    let rest = afterGroup;
    if (!command) {
      const group = GROUPS[groupName];
      if (!group) throw new UsageError(`unknown command ${JSON.stringify(groupName)} (one of: ${[...Object.keys(GROUPS), ...Object.keys(TOP)].join(', ')})`);
      // Global options may also sit between the group and its action.
      const between = leadingGlobals(afterGroup);
      Object.assign(globals.values, between.values);
      const [actionName, ...args] = between.rest;
      if (!actionName || globals.values.help) {
        process.stdout.write(`${usage(groupName)}\n`);
        return actionName || globals.values.help ? EXIT.ok : EXIT.usage;
      }
      command = group[actionName];
      if (!command) throw new UsageError(`unknown action ${JSON.stringify(`${groupName} ${actionName}`)} (one of: ${Object.keys(group).join(', ')})`);
      name = `${groupName} ${actionName}`;
      rest = args;
    }
    const parsed = parseCommand(command, rest);
    const values = { ...globals.values, ...parsed.values };
    if (values.help) {
      process.stdout.write(`usage: faas ${name} ${command.usage}\n  ${command.summary}\n`);
      return EXIT.ok;
    }
    let client: FaaSClient | undefined;
    const ctx: Context = {
      out,
      args: parsed.positionals,
      values,
      client: () =>
        (client ??= new FaaSClient({
          endpoint: values.endpoint as string | undefined,
          apiKey: values['api-key'] as string | undefined,
        })),
    };
    try {
      return (await command.run(ctx)) ?? EXIT.ok;
    } finally {
      client?.close();
    }
  } catch (error) {
    return out.error(error);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`faas: ${error?.stack ?? error}\n`);
    process.exitCode = EXIT.engineError;
  },
);
