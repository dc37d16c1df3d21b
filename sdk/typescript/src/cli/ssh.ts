// faas ssh-key add|list|remove, faas instance ssh and faas instance ssh-config: the engine's SSH
// gateway with the system's OpenSSH client. The gateway's host key comes from the authenticated
// API and is written to the CLI's own known_hosts file, so ssh checks it strictly (no first-use
// prompt); without a registered key that works, ssh gets the API key as its password through a
// small askpass helper (the key travels in ssh's environment, never on a command line).
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { FaaSClient } from '../client.js';
import type { SshHost, SshKey } from '../resources/ssh.js';
import { arg, str, type CommandGroup, type Context } from './command.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';
import { UsageError } from './output.js';

const SSH_KEY_COLUMNS: Array<Column<SshKey>> = [
  { header: 'ID', value: (k) => k.id },
  { header: 'NAME', value: (k) => k.name },
  { header: 'FINGERPRINT', value: (k) => k.fingerprint },
  { header: 'TYPE', value: (k) => k.algorithm },
  { header: 'AGE', value: (k) => age(k.createdAt) },
];

export const sshKeyCommands: CommandGroup = {
  add: {
    usage: '[<public-key-file>|-] [--name <name>]   (default ~/.ssh/id_ed25519.pub)',
    summary: 'Register an SSH public key: it may then log in to your instances (ssh <instance-id>@host)',
    options: { name: { type: 'string' } },
    async run(ctx) {
      const file = ctx.args[0] ?? join(homedir(), '.ssh', 'id_ed25519.pub');
      let text: string;
      try {
        text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
      } catch {
        throw new UsageError(`cannot read ${file}; make a key with \`ssh-keygen -t ed25519\` or name a .pub file`);
      }
      const key = await ctx.client().sshKeys.add(text, { name: str(ctx, 'name') });
      ctx.out.result(key, (k: SshKey) => `added ${k.id} ${k.fingerprint} (${k.name})`);
    },
  },
  list: {
    usage: LIST_USAGE,
    summary: 'List the SSH keys of this API key (an admin key sees all; AGE since added)',
    options: listOptions,
    async run(ctx) {
      printList(ctx, await ctx.client().sshKeys.list().toArray(), SSH_KEY_COLUMNS);
    },
  },
  remove: {
    usage: '<ssh-key-id>',
    summary: 'Remove an SSH key: it can no longer log in',
    async run(ctx) {
      const id = arg(ctx, 0, 'ssh-key-id');
      await ctx.client().sshKeys.remove(id);
      ctx.out.result({ id, removed: true }, () => `removed ${id}`);
    },
  },
};

/** The CLI's state directory ($XDG_CONFIG_HOME/faas or ~/.config/faas), private to the user. */
function configDir(): string {
  const dir = join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'faas');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

interface Gateway {
  host: string;
  port: number;
  knownHosts: string;
}

/** Asks the engine where its gateway is and pins its host key in the CLI's known_hosts. */
async function gateway(client: FaaSClient): Promise<Gateway> {
  const info: SshHost = await client.ssh.host();
  if (!info.enabled) throw new UsageError('this engine runs without its SSH gateway; start it without FAAS_SSH_PORT=off');
  const endpointHost = new URL(client.endpoint).hostname.replace(/^\[|\]$/g, '');
  const host = info.host === '0.0.0.0' || info.host === '::' ? endpointHost : info.host;
  const knownHosts = join(configDir(), 'known_hosts');
  const name = `[${host}]:${info.port}`;
  const kept = existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(`${name} `)) : [];
  writeFileSync(knownHosts, [...kept, `${name} ${info.hostKey.publicKey}`].join('\n') + '\n', { mode: 0o600 });
  return { host, port: info.port, knownHosts };
}

/** The askpass helper: prints the secret ssh's environment carries (FAAS_SSH_SECRET). */
function askpass(): string {
  const path = join(configDir(), 'askpass.sh');
  writeFileSync(path, '#!/bin/sh\nprintf \'%s\\n\' "$FAAS_SSH_SECRET"\n', { mode: 0o700 });
  chmodSync(path, 0o700);
  return path;
}

function sshOptions(g: Gateway): string[] {
  return ['-p', String(g.port), '-o', `UserKnownHostsFile=${g.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'NumberOfPasswordPrompts=1', '-o', 'PreferredAuthentications=publickey,password'];
}

export const instanceSshCommands: CommandGroup = {
  ssh: {
    usage: '<instance-id> [-- <command> [args…]]',
    summary: 'SSH into an instance with the system\'s ssh (your registered key, else the API key); with --json, run <command> and print its result',
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const command = ctx.args.slice(1);
      if (ctx.out.json && !command.length) throw new UsageError('instance ssh --json needs a command after --, since nobody types into it');
      const client = ctx.client();
      const g = await gateway(client);
      const args = [...sshOptions(g), `${id}@${g.host}`, ...command];
      const env = { ...process.env, SSH_ASKPASS: askpass(), SSH_ASKPASS_REQUIRE: 'force', FAAS_SSH_SECRET: client.http.apiKey };
      const child = spawn('ssh', args, { env, stdio: ctx.out.json ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d) => (stdout += d));
      child.stderr?.on('data', (d) => (stderr += d));
      const exitCode = await new Promise<number>((resolve, reject) => {
        child.on('error', (e) => reject(new UsageError(`cannot run ssh (${e.message}); install the OpenSSH client`)));
        child.on('close', (code) => resolve(code ?? 255));
      });
      if (ctx.out.json) ctx.out.result({ exitCode, stdout, stderr });
      return exitCode;
    },
  },
  'ssh-config': {
    usage: '<instance-id> [--name <host alias>]',
    summary: 'Print an OpenSSH Host block for the instance (for ~/.ssh/config and VS Code Remote-SSH)',
    options: { name: { type: 'string' } },
    async run(ctx: Context) {
      const id = arg(ctx, 0, 'instance-id');
      const g = await gateway(ctx.client());
      const alias = str(ctx, 'name') ?? `faas-${id}`;
      const config = [
        `Host ${alias}`,
        `  HostName ${g.host}`,
        `  Port ${g.port}`,
        `  User ${id}`,
        `  UserKnownHostsFile ${g.knownHosts}`,
        '  StrictHostKeyChecking yes',
        '',
      ].join('\n');
      ctx.out.result({ alias, hostName: g.host, port: g.port, user: id, knownHostsFile: g.knownHosts, config }, () =>
        `${config}# Log in with a key registered through \`faas ssh-key add\` (or the API key as the password).\n`,
      );
    },
  },
};
