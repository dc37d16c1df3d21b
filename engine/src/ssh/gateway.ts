// The SSH gateway: `ssh <instanceId>@host -p PORT` reaches a shell, commands, SFTP, legacy scp and
// -L forwards of one instance (docs/ssh.md, docs/security/ssh.md).
//
// Lifecycle of a connection:
//   0. the TCP accept passes the pre-auth limits (ssh/guard.ts): unauthenticated connections in
//      total and per source, a grace time to log in; a locked-out source is told so in a banner;
//   1. handshake with the engine's host key (ssh/host-key.ts);
//   2. authentication as the instance id: a public key registered through /v1/ssh-keys (it acts
//      as every API key that registered it), or an API key / token as the password (also offered
//      as keyboard-interactive). A wrong credential is refused like sshd does, and counted: too
//      many on one connection close it, too many from one source lock the source out;
//   3. a valid credential for an instance it may not use, or one that is not running, is let in
//      but every channel then answers with the reason on stderr and exit status 255 (SSH has no
//      other way to tell the user why), and forwards are refused: nothing of the instance is
//      reachable through it;
//   4. each session channel is bridged to one upgraded connection to the instance's agent
//      (ssh/session.ts), each -L channel to one TCP connection to the instance's address.
// The instance is looked up again for every channel, so a stop or a removed key takes effect on
// the next channel of an open connection.
import { connect as tcpConnect, createServer, Socket, type Server as NetServer } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel } from 'ssh2';
import { owns, type Principal } from '../core/principal.js';
import type { Instance } from '../core/types.js';
import type { AgentClient } from '../runtime/agent-client.js';
import type { KeyService } from '../services/keys.js';
import type { Lifetimes } from '../services/lifetimes.js';
import type { Logger } from '../services/logger.js';
import type { SshKeyService } from '../services/ssh-keys.js';
import { SshGuard, sourceOf } from './guard.js';
import type { HostKey } from './host-key.js';
import { handleSession } from './session.js';

export interface GatewayDeps {
  instances: { find(id: string): Instance | undefined };
  keys: KeyService;
  sshKeys: SshKeyService;
  agents: AgentClient;
  lifetimes: Lifetimes;
  log: Logger;
  hostKey: HostKey;
  guard: SshGuard;
  /**
   * Resumes a paused instance for an SSH connection when it allows it (wakeOn.ssh; Wake.ensureAwake);
   * throws, with the reason as the message, when it does not. Unset: paused instances are refused.
   */
  wake?: (instanceId: string) => Promise<unknown>;
}

/** Where a channel goes: the instance's id and address, or why it cannot. */
export type Target = { ok: true; instanceId: string; ip: string } | { ok: false; message: string };

const METHODS = ['publickey', 'password', 'keyboard-interactive'] as const;

export class SshGateway {
  private readonly servers: NetServer[] = [];
  private readonly connections = new Set<Connection>();
  port = 0;

  constructor(private readonly d: GatewayDeps) {}

  /** Listens on every host given, on one port (the first bind picks it when `port` is 0). */
  async listen(hosts: string[], port: number): Promise<void> {
    this.port = port;
    for (const host of hosts) {
      // The SFTP server behind the gateway follows OpenSSH's conventions (SYMLINK's argument order,
      // 256 KiB packets, @openssh.com extensions), and SSH libraries (ssh2, asyncssh) choose those
      // from the server's software version: hence an OpenSSH-compatible version string.
      const ssh = new ssh2.Server({ hostKeys: [this.d.hostKey.private], ident: 'OpenSSH_9.2-faas' }, (client, info) => this.accept(client, info.ip));
      ssh.on('error', (err: Error) => this.d.log.warn({ err: err.message }, 'ssh gateway error'));
      // The TCP listener is ours, so that the pre-auth limits count a connection from its accept,
      // before it has sent its version line; admitted sockets are handed to ssh2.
      const server = createServer((sock) => this.admit(sock, ssh));
      server.on('error', (err: Error) => this.d.log.warn({ err: err.message }, 'ssh gateway error'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.port = (server.address() as { port: number }).port;
      this.servers.push(server);
    }
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.end();
    // Connections not logged in yet may not even speak SSH: they are cut, or close() waits on them.
    this.d.guard.dropUnauthenticated();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }

  private admit(sock: Socket, ssh: ssh2.Server): void {
    const refused = this.d.guard.admit(sock);
    if (!refused) return ssh.injectSocket(sock);
    // No SSH yet to say it in: a line before the version line (RFC 4253 4.2), which clients log.
    this.d.log.warn({ source: sourceOf(sock.remoteAddress), limit: refused === 'total' ? 'FAAS_SSH_MAX_STARTUPS' : 'FAAS_SSH_MAX_STARTUPS_PER_SOURCE' }, 'ssh connection refused: too many unauthenticated connections');
    sock.on('error', () => undefined);
    // Destroyed once the line is out: a client that never closes its side keeps nothing open.
    sock.end('faas: too many unauthenticated connections; try again later\r\n', () => sock.destroy());
  }

  private accept(client: Connection, ip: string): void {
    this.connections.add(client);
    // ssh2 keeps the socket private; the guard knows connections by their socket. Without it a
    // login could not end the grace time, so a change in ssh2 refuses every connection (loudly).
    const sock = (client as unknown as { _sock?: unknown })._sock;
    if (!(sock instanceof Socket)) {
      this.d.log.error({}, 'ssh gateway: ssh2 no longer exposes the connection\'s socket (Connection._sock); refusing connections');
      return void client.end();
    }
    // Small packets (an exit status, a keystroke) must not wait for a delayed ACK (~40 ms).
    (client as Connection & { setNoDelay(v: boolean): void }).setNoDelay(true);
    const source = sourceOf(ip);
    const locked = this.d.guard.lockedFor(source);
    if (locked) lockedBanner(client, locked);
    let principals: Principal[] = [];
    let instanceId = '';
    let failures = 0;
    client.on('authentication', (ctx) => {
      instanceId = ctx.username;
      // A locked-out source's credentials are not even looked at: guessing learns nothing.
      if (this.d.guard.lockedFor(source)) return client.end();
      void this.authenticate(ctx).then(({ who, failed }) => {
        if (who.length) {
          principals = who;
          return ctx.accept();
        }
        if (!failed) return ctx.reject([...METHODS]);
        failures++;
        // Like sshd, the failure that reaches a limit is answered by a disconnect, not by another
        // chance: the client cannot send one more guess in between.
        const lockout = this.d.guard.fail(source);
        if (lockout) {
          this.d.log.warn({ source, user: instanceId.slice(0, 64), lockoutSeconds: lockout }, 'ssh source locked out after too many failed logins');
          client.end();
        } else if (failures >= this.d.guard.config.maxAuthTries) {
          this.d.log.info({ source, user: instanceId.slice(0, 64), failures }, 'ssh connection closed after too many failed logins (FAAS_SSH_MAX_AUTH_TRIES)');
          client.end();
        } else ctx.reject([...METHODS]);
      }, () => ctx.reject([...METHODS]));
    });
    client.on('ready', () => {
      this.d.guard.loggedIn(sock);
      const resolveTarget = () => this.target(instanceId, principals);
      client.on('session', (accept) => {
        const session = accept();
        handleSession(session, { resolve: resolveTarget, agents: this.d.agents, hold: (id) => this.d.lifetimes.hold(id) });
      });
      client.on('tcpip', (accept, reject, info) => void this.forward(resolveTarget, accept, reject, info));
      // Remote forwards (-R) and other global requests are not offered.
      client.on('request', (_accept, reject) => reject?.());
    });
    client.on('error', () => undefined); // a client that goes away mid-handshake
    client.on('close', () => this.connections.delete(client));
  }

  /**
   * The principals a credential stands for (none: refused), and whether a refusal was a failed
   * login: a wrong API key, or a public key with a signature that does not verify. Asking whether
   * a key would do (no signature) and the `none` method are not: clients do both on every login.
   */
  private async authenticate(ctx: AuthContext): Promise<{ who: Principal[]; failed: boolean }> {
    switch (ctx.method) {
      case 'password':
        return failedIfNone(this.apiKey(ctx.password));
      case 'keyboard-interactive':
        return new Promise((resolve) => {
          // No title or instructions: OpenSSH prints them on every login.
          ctx.prompt([{ prompt: 'faas API key: ', echo: false }], '', '', (answers) => {
            resolve(failedIfNone(this.apiKey(answers[0] ?? '')));
          });
        });
      case 'publickey': {
        const who = this.d.sshKeys.principalsFor(ctx.key.data);
        const signed = Boolean(ctx.signature && ctx.blob);
        if (!who.length || !signed) return { who: signed ? [] : who, failed: signed };
        const key = ssh2.utils.parseKey(ctx.key.data);
        if (key instanceof Error || Array.isArray(key)) return { who: [], failed: true };
        return failedIfNone(key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true ? who : []);
      }
      default:
        return { who: [], failed: false };
    }
  }

  private apiKey(secret: string): Principal[] {
    try {
      return [this.d.keys.authenticate(secret)];
    } catch {
      return [];
    }
  }

  /** Looks the instance up for one channel. */
  private async target(instanceId: string, principals: Principal[]): Promise<Target> {
    let inst = this.d.instances.find(instanceId);
    const hint = '(log in as an instance id: ssh <instanceId>@host; list yours with `faas instance list`)';
    if (!inst || !principals.some((p) => owns(p, inst!.owner))) {
      return { ok: false, message: `faas: no instance ${JSON.stringify(instanceId.slice(0, 64))} for this key ${hint}` };
    }
    if (inst.state === 'paused' && this.d.wake) {
      try {
        await this.d.wake(inst.id);
      } catch (err) {
        return { ok: false, message: `faas: ${(err as Error).message}` };
      }
      inst = this.d.instances.find(instanceId) ?? inst;
    }
    if (inst.state === 'paused') {
      return { ok: false, message: `faas: instance ${inst.id} is paused; resume it first (faas instance resume ${inst.id}), or start it with wakeOn.ssh` };
    }
    if (inst.state !== 'ready' || !inst.ip) {
      return { ok: false, message: `faas: instance ${inst.id} is ${inst.state}, not running; start a new one (faas instance start)` };
    }
    return { ok: true, instanceId: inst.id, ip: inst.ip };
  }

  /**
   * `ssh -L`: a TCP connection from the engine to the instance's own address. Only the instance
   * itself is a destination (by any of its names); the gateway never connects anywhere else.
   */
  private async forward(
    resolve: () => Promise<Target>,
    accept: () => ServerChannel,
    reject: () => void,
    info: { destIP: string; destPort: number },
  ): Promise<void> {
    const t = await resolve();
    if (!t.ok || !['localhost', '127.0.0.1', '::1', '0.0.0.0', t.ip, t.instanceId].includes(info.destIP)) return reject();
    const release = this.d.lifetimes.hold(t.instanceId);
    const sock = tcpConnect({ host: t.ip, port: info.destPort });
    sock.setNoDelay(true);
    sock.once('error', () => {
      release();
      reject();
    });
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      const ch = accept();
      sock.pipe(ch).pipe(sock);
      const done = () => {
        release();
        sock.destroy();
        ch.destroy();
      };
      sock.on('error', done);
      sock.on('close', done);
      ch.on('error', done);
      ch.on('close', done);
    });
  }
}

const failedIfNone = (who: Principal[]) => ({ who, failed: who.length === 0 });

/**
 * Tells a locked-out source why in the SSH banner (OpenSSH prints it before "Permission denied").
 * ssh2 sends its one banner (a server-wide setting) with the reply to the userauth service
 * request, which comes after this: the connection's own banner is set on its protocol object.
 */
function lockedBanner(client: Connection, seconds: number): void {
  const proto = (client as unknown as { _protocol?: { _banner?: string } })._protocol;
  if (proto) proto._banner = `faas: too many failed logins from this address; locked out, try again in ${seconds} s\r\n`;
}
