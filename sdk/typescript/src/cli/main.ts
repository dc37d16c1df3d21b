#!/usr/bin/env node
// `faas` — the command line of the faas engine: faas <group> <action> [args] [--json].
// Exit codes: 0 ok, 1 the engine refused (or another error), 2 usage, 3 engine unreachable;
// `faas instance exec` exits with the command's own code.
import { parseArgs } from 'node:util';
import { FaaSClient } from '../client.js';
import type { CommandGroup, Context, Options } from './command.js';
import { engineCommands } from './engine.js';
import { imageCommands } from './images.js';
import { instanceCommands } from './instances.js';
import { EXIT, Output, UsageError } from './output.js';
import { snapshotCommands } from './snapshots.js';
import { branchDiffCommands, snapshotDiffCommands } from './diff.js';
import { keyCommands, tokenCommands } from './keys.js';
import { branchCommands } from './branches.js';
import { sshKeyCommands } from './ssh.js';

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

const GLOBAL_OPTIONS: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  endpoint: { type: 'string' },
  'api-key': { type: 'string' },
};

function usage(group?: string): string {
  const groups = group ? [group] : Object.keys(GROUPS);
  const lines = ['usage: faas <group> <action> [arguments] [--json] [--endpoint URL] [--api-key KEY]', ''];
  for (const name of groups) {
    for (const [action, command] of Object.entries(GROUPS[name])) {
      lines.push(`  faas ${name} ${action} ${command.usage}`.trimEnd(), `      ${command.summary}`);
    }
  }
  lines.push('', 'Every command takes --json for machine-readable output (errors as {"error": {...}}).');
  lines.push('The client reads FAAS_API_KEY / FAAS_ENDPOINT, else $FAAS_STATE_DIR/credentials.json (default /var/lib/faas).');
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const out = new Output(json);
  try {
    const [groupName, actionName, ...rest] = argv.filter((a) => a !== '--json');
    if (!groupName || groupName === '--help' || groupName === '-h' || groupName === 'help') {
      process.stdout.write(`${usage()}\n`);
      return EXIT.ok;
    }
    const group = GROUPS[groupName];
    if (!group) throw new UsageError(`unknown command group ${JSON.stringify(groupName)} (one of: ${Object.keys(GROUPS).join(', ')})`);
    if (!actionName || actionName === '--help' || actionName === '-h') {
      process.stdout.write(`${usage(groupName)}\n`);
      return actionName ? EXIT.ok : EXIT.usage;
    }
    const command = group[actionName];
    if (!command) throw new UsageError(`unknown action ${JSON.stringify(`${groupName} ${actionName}`)} (one of: ${Object.keys(group).join(', ')})`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (parsed.values.help) {
      process.stdout.write(`usage: faas ${groupName} ${actionName} ${command.usage}\n  ${command.summary}\n`);
      return EXIT.ok;
    }
    let client: FaaSClient | undefined;
    const ctx: Context = {
      out,
      args: parsed.positionals,
      values: parsed.values as Context['values'],
      client: () =>
        (client ??= new FaaSClient({
          endpoint: parsed.values.endpoint as string | undefined,
          apiKey: parsed.values['api-key'] as string | undefined,
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
