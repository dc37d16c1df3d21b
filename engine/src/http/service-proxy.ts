// The reverse proxy of HTTP services (services/http-services.ts). It shares the API's listener:
// every request and upgrade whose Host is `<name>-<instance label>.<service host>` comes here
// before Fastify routing sees it (app.ts), everything else goes to the API. One port means one
// thing to open in a firewall and nothing more to configure for `*.localhost`.
//
// A request: Host → service row and instance (404 service_not_found) → auth by the service's mode
// (401/404, see authorize) → the instance awake (resumed when paused and wakeOn.http, else 409) →
// forwarded to <instance ip>:<port> on a keep-alive connection with the faas credentials removed,
// bodies streamed both ways; a large response body of known length is spliced kernel to kernel by
// a helper process instead of copied through Node (body-splice.ts). Nothing accepting on the port → 502 service_unreachable. Upgrades
// (WebSocket, anything else) are forwarded as raw bytes after the same checks. The engine runs as
// root, which the firewall lets reach sandboxes (docs/architecture.md "Firewall").
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FaasError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { owns, type Principal } from '../core/principal.js';
import type { Instance } from '../core/types.js';
import type { HttpServices } from '../services/http-services.js';
import { TOKEN_COOKIE, TOKEN_PARAM } from '../services/http-services.js';
import { SESSION_COOKIE } from './browser.js';
import type { KeyService } from '../services/keys.js';
import type { Lifetimes } from '../services/lifetimes.js';
import type { Logger } from '../services/logger.js';
import type { Wake } from '../services/wake.js';
import type { HttpServiceRecord } from '../store/sqlite/http-services.js';
import { bearerOf } from './auth.js';
import { spliceBody, spliceLength } from './body-splice.js';
import { envelope, logServerError, newRequestId, rawErrorResponse, toFaasError } from './errors.js';

export interface ProxyDeps {
  services: HttpServices;
  wake: Wake;
  keys: KeyService;
  instances: { find(id: string): Instance | undefined };
  lifetimes: Pick<Lifetimes, 'hold'>;
  events: Pick<EventBus, 'on'>;
  log: Logger;
  /** The faas-agent binary, whose `splice` mode moves large response bodies (body-splice.ts); unset: Node pipes them. */
  spliceHelper?: string;
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), never forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
const CONNECT_TIMEOUT_MS = 10_000;

interface Passed {
  svc: HttpServiceRecord;
  inst: Instance;
  /** The request's raw headers as the app gets them. */
  headers: string[];
  /** The path and query as the app gets them (without faas_token). */
  path: string;
  /** Set-Cookie for a link token exchanged on a non-GET request. */
  cookie?: string;
}

export class ServiceProxy {
  /**
   * Keep-alive connections to each instance, reused across requests. One pool per instance, dropped
   * when its sandbox goes: its address is reused by the next sandbox of the slot, and an idle
   * connection kept under it would be answered by that sandbox with a reset (a spurious 502).
   */
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly d: ProxyDeps) {
    d.events.on('event', (e: { type: string; resourceId: string }) => {
      if (e.type === 'instance.stopped' || e.type === 'instance.deleted' || e.type === 'instance.error') this.dropAgent(e.resourceId);
    });
  }

  private agentFor(instanceId: string): Agent {
    let agent = this.agents.get(instanceId);
    if (!agent) {
      // `timeout` closes idle pooled connections (not busy ones) after 4 s: before the 5 s after which
      // Node's own servers (a common app) close theirs, so the proxy does not send on a connection
      // the app is closing at that moment.
      agent = new Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 64, scheduling: 'lifo', timeout: 4_000 });
      this.agents.set(instanceId, agent);
    }
    return agent;
  }

  private dropAgent(instanceId: string): void {
    this.agents.get(instanceId)?.destroy();
    this.agents.delete(instanceId);
  }

  /** Serves `req` when its Host names a service; false leaves it to the API. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const target = this.d.services.parseHost(req.headers.host);
    if (target === undefined) return false;
    const requestId = newRequestId();
    res.setHeader('x-request-id', requestId);
    void this.admit(req, target).then(
      (out) => {
        if ('redirect' in out) {
          res.writeHead(302, { location: out.redirect, 'set-cookie': out.cookie, 'cache-control': 'no-store', 'content-length': 0 });
          return void res.end();
        }
        this.forward(req, res, out, requestId);
      },
      (err) => this.fail(res, err, requestId, req),
    );
    return true;
  }

  /** The same for an Upgrade (WebSocket): bytes are piped both ways once the instance accepted. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = this.d.services.parseHost(req.headers.host);
    if (target === undefined) return false;
    const requestId = newRequestId();
    const refuse = (err: unknown) => {
      const fe = toFaasError(err);
      logServerError(this.d.log, fe, err, requestId, `service upgrade ${req.headers.host}`);
      if (!socket.destroyed) socket.end(rawErrorResponse(fe, requestId));
    };
    void this.admit(req, target).then((out) => {
      if ('redirect' in out) throw new FaasError('unauthorized', `open ${out.redirect} first: a link token is exchanged for a cookie by a plain GET`, null);
      out.headers.push('Connection', 'Upgrade', 'Upgrade', String(req.headers.upgrade));
      const up = connect(out.svc.port, out.inst.ip!);
      let connected = false;
      up.setNoDelay(true);
      const timer = setTimeout(() => up.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      let release = () => {};
      up.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        const hold = this.d.lifetimes.hold(out.inst.id);
        const untrack = this.d.services.track(out.inst.id, out.svc.name, () => {
          socket.destroy();
          up.destroy();
        });
        release = () => {
          hold();
          untrack();
        };
        let lines = `${req.method} ${out.path} HTTP/1.1\r\n`;
        for (let i = 0; i < out.headers.length; i += 2) lines += `${out.headers[i]}: ${out.headers[i + 1]}\r\n`;
        up.write(lines + '\r\n');
        if (head.length) up.write(head);
        socket.pipe(up).pipe(socket);
      });
      up.once('error', (err) => {
        clearTimeout(timer);
        if (!connected) return refuse(unreachable(out.svc, out.inst, err));
        socket.destroy();
      });
      const end = () => {
        release();
        up.destroy();
        socket.destroy();
      };
      up.once('close', end);
      socket.once('close', end);
      socket.on('error', () => up.destroy());
    }, refuse);
    return true;
  }

  close(): void {
    for (const id of [...this.agents.keys()]) this.dropAgent(id);
  }

  /**
   * Finds the service and checks the caller. Answers a missing service and a service the caller's
   * key may not see alike (404), so ids of other keys cannot be probed through it either.
   */
  private async admit(req: IncomingMessage, target: { instanceId: string; name: string } | null): Promise<Passed | { redirect: string; cookie: string }> {
    const svc = target && this.d.services.find(target.instanceId, target.name);
    const inst = target && this.d.instances.find(target.instanceId);
    if (!svc || !inst) throw new FaasError('service_not_found', `no HTTP service is exposed at ${req.headers.host}`, { host: req.headers.host ?? null });
    const url = new URL(req.url ?? '/', 'http://service');
    const linkToken = url.searchParams.get(TOKEN_PARAM);
    url.searchParams.delete(TOKEN_PARAM);
    const path = url.pathname + url.search;
    const { bearer, cookie, headers } = splitCredentials(req.rawHeaders);

    let cookieOut: string | undefined;
    if (svc.auth !== 'none') {
      let who: Principal | undefined;
      if (bearer !== undefined) {
        if (svc.auth === 'api-key' || isFaasCredential(bearer)) who = this.d.keys.authenticate(bearer);
      }
      if (!who && svc.auth === 'token') {
        const token = linkToken ?? cookie;
        if (token) {
          const v = this.d.services.verifyToken(token, inst.id, svc.name);
          who = v.principal;
          if (linkToken) {
            cookieOut = tokenCookie(linkToken, v.expiresAt, this.d.services.hosts.scheme === 'https');
            // A browser following the link lands on the clean URL, with the cookie, so the token
            // leaves the address bar, history and Referer at once.
            if (req.method === 'GET' || req.method === 'HEAD') return { redirect: path, cookie: cookieOut };
          }
        }
      }
      if (!who) {
        throw new FaasError(
          'unauthorized',
          svc.auth === 'token'
            ? 'this service needs the API key (Authorization: Bearer <key>) or its signed link (tokenUrl from `faas instance services`)'
            : 'this service needs the API key: send Authorization: Bearer <key or token>',
          null,
        );
      }
      if (!owns(who, inst.owner)) throw new FaasError('service_not_found', `no HTTP service is exposed at ${req.headers.host}`, { host: req.headers.host ?? null });
    }
    // The app's own Authorization (not a faas credential) is the app's business: kept.
    if (bearer !== undefined && !isFaasCredential(bearer)) headers.push('Authorization', `Bearer ${bearer}`);
    const awake = await this.d.wake.ensureAwake(inst.id, 'http');
    const remote = req.socket.remoteAddress ?? '';
    const prior = req.headers['x-forwarded-for'];
    headers.push('X-Forwarded-For', prior ? `${prior}, ${remote}` : remote, 'X-Forwarded-Host', req.headers.host ?? '', 'X-Forwarded-Proto', this.d.services.hosts.scheme);
    return { svc, inst: awake, headers, path, cookie: cookieOut };
  }

  private forward(req: IncomingMessage, res: ServerResponse, out: Passed, requestId: string): void {
    const hold = this.d.lifetimes.hold(out.inst.id);
    const up = httpRequest({ host: out.inst.ip!, port: out.svc.port, method: req.method, path: out.path, headers: out.headers as unknown as Record<string, string>, agent: this.agentFor(out.inst.id), setHost: false });
    let spliced = false;
    let cancel = (_reason: string) => {};
    const untrack = this.d.services.track(out.inst.id, out.svc.name, () => {
      cancel('the service was hidden or its instance went away');
      up.destroy();
      res.destroy();
    });
    let timer: NodeJS.Timeout | undefined;
    up.once('socket', (s: Socket) => {
      // Small answers must not wait on Nagle + delayed ACK (~40 ms) on either hop.
      s.setNoDelay(true);
      req.socket.setNoDelay(true);
      if (!s.connecting) return;
      timer = setTimeout(() => up.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      s.once('connect', () => clearTimeout(timer));
    });
    up.once('response', (ur) => {
      const headers: string[] = [];
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const name = ur.rawHeaders[i].toLowerCase();
        if (!HOP.has(name) && name !== 'transfer-encoding') headers.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
      }
      headers.push('X-Request-Id', requestId);
      // A link token exchanged on a non-GET: the cookie goes beside the app's own Set-Cookies.
      if (out.cookie) headers.push('Set-Cookie', out.cookie);
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, headers);
      const length = this.d.spliceHelper ? spliceLength(ur, req.method) : null;
      if (length !== null) {
        spliced = true;
        cancel = spliceBody(this.d.spliceHelper!, ur, res, length, (err) => {
          // As with a piped body, a body cut short (the client left, the app closed) is the
          // client's to see, not an engine error.
          if (err) this.d.log.info({ requestId, host: req.headers.host, err: err.message }, 'a spliced response body ended early');
        });
        return;
      }
      // Event streams and long polls: the head goes out now, not with the first body byte.
      res.flushHeaders();
      ur.pipe(res);
      ur.once('error', () => res.destroy());
    });
    up.once('error', (err) => {
      clearTimeout(timer);
      if (spliced) return; // the splice ends the response itself (body-splice.ts)
      if (res.headersSent) return void res.destroy();
      this.fail(res, unreachable(out.svc, out.inst, err), requestId, req);
    });
    res.once('close', () => {
      clearTimeout(timer);
      hold();
      untrack();
      if (res.writableFinished) return;
      up.destroy();
      cancel('the client went away');
    });
    req.pipe(up);
  }

  private fail(res: ServerResponse, err: unknown, requestId: string, req: IncomingMessage): void {
    const fe = toFaasError(err);
    logServerError(this.d.log, fe, err, requestId, `service ${req.method} ${req.headers.host}`);
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify(envelope(fe.code, fe.message, fe.details, requestId));
    res.writeHead(fe.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, 'cache-control': 'no-store' });
    res.end(body);
    // The body of a refused request is not read: close rather than parse it as the next request.
    if (!req.complete) res.once('finish', () => req.socket.destroySoon?.());
  }
}

/** faas keys, API tokens and service tokens: never shown to an app. */
const isFaasCredential = (v: string) => v.startsWith('faas_') || v.startsWith('faastok.') || v.startsWith('faassvc.');

/**
 * Splits the faas credentials off the request's headers: the bearer value of Authorization (put
 * back by the caller when it is not a faas credential) and the faas cookie; the rest of the
 * headers minus hop-by-hop ones (and the Host, which is kept as sent) is what the app gets.
 */
function splitCredentials(raw: string[]): { bearer?: string; cookie?: string; headers: string[] } {
  const headers: string[] = [];
  let bearer: string | undefined;
  let cookie: string | undefined;
  const connectionTokens = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'connection') for (const t of raw[i + 1].split(',')) connectionTokens.add(t.trim().toLowerCase());
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (HOP.has(name) || connectionTokens.has(name) || name.startsWith('x-forwarded-')) continue;
    if (name === 'authorization') {
      const b = bearerOf(value);
      if (b !== undefined) {
        bearer = b;
        continue;
      }
    }
    if (name === 'cookie') {
      const kept: string[] = [];
      for (const part of value.split(';')) {
        const eq = part.indexOf('=');
        const cookieName = part.slice(0, eq).trim();
        if (cookieName === TOKEN_COOKIE) cookie = part.slice(eq + 1).trim();
        // The browser session of the engine's own pages is never the app's (cookies ignore ports).
        else if (cookieName === SESSION_COOKIE) continue;
        else if (part.trim()) kept.push(part.trim());
      }
      if (kept.length) headers.push(raw[i], kept.join('; '));
      continue;
    }
    headers.push(raw[i], value);
  }
  return { bearer, cookie, headers };
}

/** Host-only (no Domain), so it is sent to this one service host and no other. */
function tokenCookie(token: string, expiresAt: number, secure: boolean): string {
  const maxAge = Math.max(1, Math.floor((expiresAt - Date.now()) / 1000));
  return `${TOKEN_COOKIE}=${token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

function unreachable(svc: HttpServiceRecord, inst: Instance, err: unknown): FaasError {
  const reason = (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
  return new FaasError(
    'service_unreachable',
    `nothing accepts connections on port ${svc.port} of instance ${inst.id} (${reason}): start the server there, listening on 0.0.0.0:${svc.port} (not 127.0.0.1)`,
    { id: inst.id, name: svc.name, port: svc.port, reason },
  );
}
