// SSH: public keys for the engine's SSH gateway (client.sshKeys), the gateway's address and host
// key (client.ssh.host()), and SSHClient, the seed's SSH operations over the gateway with the
// maintained `ssh2` library. The client logs in as the instance id with the client's API key (or
// session token) as the password, or with a private key registered through sshKeys.add; the
// gateway's host key is pinned to what the engine reports over the authenticated API.
import { EventEmitter } from 'node:events';
import { chmod, mkdir, readdir, readlink, stat, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { AutoPager } from '../core/pagination.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import { networkError, SSHAuthenticationError, SSHError } from '../core/errors.js';
import type * as api from '../generated/api.gen.js';

export type SshKey = api.SshKey;
export type SshHost = api.SshHost;

export class SshKeyManager {
  constructor(private readonly http: HttpTransport) {}

  /** Registers an OpenSSH public key line (`ssh-ed25519 AAAA… comment`) for this client's API key. */
  add(publicKey: string, config: { name?: string } = {}, options?: RequestOptions): Promise<SshKey> {
    return this.http.request({ ...options, method: 'POST', path: '/v1/ssh-keys', json: { ...config, publicKey } });
  }

  /** This API key's SSH keys (an admin key sees all), newest first. */
  list(filter: { pageSize?: number } = {}, options?: RequestOptions): AutoPager<SshKey> {
    return new AutoPager<SshKey>(
      (cursor) => this.http.request({ ...options, method: 'GET', path: '/v1/ssh-keys', query: { limit: filter.pageSize, cursor } }),
      (raw) => raw,
    );
  }

  remove(id: string, options?: RequestOptions): Promise<void> {
    return this.http.request({ ...options, method: 'DELETE', path: `/v1/ssh-keys/${seg(id)}` });
  }
}

export interface SSHConnectOptions {
  /** A private key registered with sshKeys.add (OpenSSH or PEM text); default: the API key as password. */
  privateKey?: string | Buffer;
  passphrase?: string;
  /** Gateway host; default: the endpoint's host (or the gateway's own address when that is loopback). */
  host?: string;
  /** Handshake timeout in ms (default 20000). */
  readyTimeout?: number;
}

export class SshOperations {
  constructor(private readonly http: HttpTransport) {}

  /** Where the gateway listens and its host key (`GET /v1/ssh/host`). */
  host(options?: RequestOptions): Promise<SshHost> {
    return this.http.request({ ...options, method: 'GET', path: '/v1/ssh/host' });
  }

  /** A connected SSHClient for `instance`. */
  async connect(instance: IdRef, options: SSHConnectOptions = {}): Promise<SSHClient> {
    const c = new SSHClient({ http: this.http }, options);
    await c.connect(instance);
    return c;
  }
}

/** What execCommand returns. `signal` is set (e.g. `SIGKILL`, with `exitCode` null) when the command died of one. */
export interface SSHExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: string | null;
}

/**
 * An interactive shell on a PTY. Events: `data` (Buffer), `exit` (code). `exited` resolves with
 * the exit status (null when the connection ended without one).
 */
export class SSHShell extends EventEmitter {
  readonly exited: Promise<number | null>;

  constructor(private readonly channel: ClientChannel) {
    super();
    channel.on('data', (d: Buffer) => this.emit('data', d));
    this.exited = new Promise((resolve) => {
      let code: number | null = null;
      channel.on('exit', (c: number | null) => {
        code = typeof c === 'number' ? c : null;
        this.emit('exit', code);
      });
      channel.on('close', (late?: number | null) => resolve(code ?? (typeof late === 'number' ? late : null)));
    });
  }

  write(data: string | Buffer): void {
    this.channel.write(data);
  }

  resize(cols: number, rows: number): void {
    this.channel.setWindow(rows, cols, 0, 0);
  }

  /** Sends a signal (`INT`, `TERM`, … without `SIG`) to the shell's foreground process group. */
  signal(name: string): void {
    this.channel.signal(name.replace(/^SIG/, ''));
  }

  close(): void {
    this.channel.close();
  }
}

export class SSHClient {
  private conn: ssh2.Client | null = null;
  private sftpSession: Promise<SFTPWrapper> | null = null;

  private readonly http: HttpTransport;

  /** `new SSHClient(client)` with a FaaSClient; then `connect(instance)`. */
  constructor(client: { http: HttpTransport }, private readonly options: SSHConnectOptions = {}) {
    this.http = client.http;
  }

  /** Opens the SSH connection to `instance` through the engine's gateway. */
  async connect(instance: IdRef): Promise<void> {
    if (this.conn) throw new SSHError('already connected; call disconnect() first', { code: 'ssh_error' });
    const info = await this.http.request<SshHost>({ method: 'GET', path: '/v1/ssh/host' });
    if (!info.enabled) throw new SSHError('the engine runs without its SSH gateway (FAAS_SSH_PORT=off)', { code: 'ssh_error' });
    const endpointHost = new URL(this.http.endpoint).hostname.replace(/^\[|\]$/g, '');
    const wildcard = info.host === '0.0.0.0' || info.host === '::';
    const host = this.options.host ?? (wildcard ? endpointHost : info.host);
    const pinned = info.hostKey.publicKey.split(' ')[1];
    const password = this.options.privateKey ? undefined : (await this.http.authHeaders()).Authorization.replace(/^Bearer /, '');
    const conn = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', () => resolve());
      conn.once('error', (err: Error & { level?: string }) => {
        if (err.level === 'client-authentication') reject(new SSHAuthenticationError(`the SSH gateway refused the credential for ${idOf(instance)}`, { code: 'ssh_auth_failed', cause: err }));
        else if (err.level === 'client-socket' || err.level === 'client-timeout') reject(networkError(`cannot reach the SSH gateway at ${host}:${info.port}: ${err.message}`, err));
        else reject(new SSHError(`SSH connection failed: ${err.message}`, { code: 'ssh_error', cause: err }));
      });
      conn.connect({
        host,
        port: info.port,
        username: idOf(instance),
        password,
        privateKey: this.options.privateKey,
        passphrase: this.options.passphrase,
        readyTimeout: this.options.readyTimeout ?? 20_000,
        // Pin the gateway's host key to the one the engine reports over the authenticated API.
        hostVerifier: (key: Buffer) => key.toString('base64') === pinned,
      });
    });
    conn.on('error', () => undefined); // later errors surface on the operation in flight
    conn.setNoDelay(true); // an exit status must not wait for a delayed ACK
    this.conn = conn;
  }

  /** Runs a command (no PTY) and collects its output. */
  async execCommand(command: string): Promise<SSHExecResult> {
    const ch = await this.channel((c, cb) => c.exec(command, cb));
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let exitCode: number | null = null;
      let signal: string | null = null;
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => err.push(d));
      ch.on('exit', (code: number | null, sig?: string) => {
        exitCode = typeof code === 'number' ? code : null;
        signal = sig ?? null;
      });
      ch.on('error', (e: Error) => reject(new SSHError(`exec failed: ${e.message}`, { code: 'ssh_error', cause: e })));
      // ssh2 also hands the exit status to 'close': an exit-status that arrived in the same packet
      // batch as the channel's confirmation was emitted before these listeners existed.
      ch.on('close', (code?: number | null, sig?: string) => {
        if (exitCode === null && signal === null) {
          exitCode = typeof code === 'number' ? code : null;
          signal = sig ?? null;
        }
        const stderr = Buffer.concat(err).toString('utf8');
        // The gateway's refusals (another key's instance, a stopped one) arrive as 255 + a reason.
        if (exitCode === 255 && /^faas: /.test(stderr)) return reject(new SSHError(stderr.trim(), { code: 'ssh_error' }));
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr, exitCode, signal });
      });
      ch.end();
    });
  }

  /** Uploads one file; its permission bits are kept. */
  async putFile(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    // fastPut keeps many writes in flight: the gateway's round trip does not cap throughput.
    await call((cb) => sftp.fastPut(localPath, remotePath, cb), `put ${localPath} -> ${remotePath}`);
    await this.keepMode(localPath, remotePath);
  }

  /** Downloads one file; its permission bits are kept. */
  async getFile(remotePath: string, localPath: string): Promise<void> {
    const sftp = await this.sftp();
    const st = await call<ssh2.Stats>((cb) => sftp.stat(remotePath, cb), `stat ${remotePath}`);
    await call((cb) => sftp.fastGet(remotePath, localPath, cb), `get ${remotePath} -> ${localPath}`);
    await chmod(localPath, st.mode & 0o7777);
  }

  /** Uploads a directory tree (files, directories, symlinks) with modes kept. */
  async putDirectory(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    const st = await stat(localPath);
    await call((cb) => sftp.mkdir(remotePath, { mode: st.mode & 0o7777 }, cb)).catch(() => undefined);
    for (const e of await readdir(localPath, { withFileTypes: true })) {
      const from = join(localPath, e.name);
      const to = posix.join(remotePath, e.name);
      if (e.isDirectory()) await this.putDirectory(from, to);
      else if (e.isSymbolicLink()) await this.putLink(from, to);
      else if (e.isFile()) await this.putFile(from, to);
    }
    await call((cb) => sftp.chmod(remotePath, st.mode & 0o7777, cb), `chmod ${remotePath}`);
  }

  /** Downloads a directory tree (files, directories, symlinks) with modes kept. */
  async getDirectory(remotePath: string, localPath: string): Promise<void> {
    const sftp = await this.sftp();
    const st = await call<ssh2.Stats>((cb) => sftp.stat(remotePath, cb), `stat ${remotePath}`);
    await mkdir(localPath, { recursive: true });
    const entries = await call<ssh2.FileEntryWithStats[]>((cb) => sftp.readdir(remotePath, cb), `readdir ${remotePath}`);
    for (const e of entries) {
      const from = posix.join(remotePath, e.filename);
      const to = join(localPath, e.filename);
      const type = e.attrs.mode & 0o170000;
      if (type === 0o040000) await this.getDirectory(from, to);
      else if (type === 0o120000) await symlink(await call<string>((cb) => sftp.readlink(from, cb), `readlink ${from}`), to).catch(() => undefined);
      else if (type === 0o100000) await this.getFile(from, to);
    }
    await chmod(localPath, st.mode & 0o7777);
  }

  /** An interactive login shell on a PTY. */
  async createShell(options: { cols?: number; rows?: number; term?: string } = {}): Promise<SSHShell> {
    const ch = await this.channel((c, cb) => c.shell({ cols: options.cols ?? 80, rows: options.rows ?? 24, term: options.term ?? 'xterm-256color' }, cb));
    return new SSHShell(ch);
  }

  async disconnect(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    this.sftpSession = null;
    if (!conn) return;
    await new Promise<void>((resolve) => {
      conn.once('close', () => resolve());
      conn.end();
    });
  }

  private live(): ssh2.Client {
    if (!this.conn) throw new SSHError('not connected; call connect(instance) first', { code: 'ssh_error' });
    return this.conn;
  }

  private channel(open: (c: ssh2.Client, cb: (err: Error | undefined, ch: ClientChannel) => void) => void): Promise<ClientChannel> {
    const conn = this.live();
    return new Promise((resolve, reject) => {
      open(conn, (err, ch) => (err ? reject(new SSHError(`the gateway refused the channel: ${err.message}`, { code: 'ssh_error', cause: err })) : resolve(ch)));
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    const conn = this.live();
    this.sftpSession ??= new Promise((resolve, reject) => {
      conn.sftp((err, s) => (err ? reject(new SSHError(`SFTP is not available: ${err.message}`, { code: 'ssh_error', cause: err })) : resolve(s)));
    });
    return this.sftpSession;
  }

  private async keepMode(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    const st = await stat(localPath);
    await call((cb) => sftp.chmod(remotePath, st.mode & 0o7777, cb), `chmod ${remotePath}`);
  }

  private async putLink(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    const target = await readlink(localPath);
    await call((cb) => sftp.unlink(remotePath, cb)).catch(() => undefined);
    await call((cb) => sftp.symlink(target, remotePath, cb), `symlink ${remotePath}`);
  }
}

function call<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void, what = 'sftp'): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((err, value) => (err ? reject(new SSHError(`${what}: ${err.message}`, { code: 'ssh_error', cause: err })) : resolve(value as T)));
  });
}
