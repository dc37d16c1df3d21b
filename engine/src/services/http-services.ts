// HTTP services: named ports of an instance that the engine's reverse proxy (http/service-proxy.ts)
// serves at `http://<name>-<instance label>.<service host>:<port>/`. The instance label is the id
// with `_` as `-` (`inst_k3…` → `inst-k3…`): host names are DNS labels, which cannot hold `_`; ids
// are lowercase base36 after the prefix, so the mapping is one-to-one and survives browsers
// lowercasing host names. Services are rows (migration 8), so they outlive engine restarts; a
// branch child gets copies of its parent's (its own id, so its own URL); a deleted instance's rows
// go with it. Hiding a service closes the connections open through it.
import { FaasError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import type { Principal } from '../core/principal.js';
import { nowIso } from '../core/types.js';
import type { HttpServiceRecord, HttpServiceRepo, ServiceAuth } from '../store/sqlite/http-services.js';
import type { InstanceService } from './instances.js';
import type { KeyService } from './keys.js';

export interface ServiceHostConfig {
  /** Base host name under which service hosts are made (`localhost`: `*.localhost` is loopback). */
  baseHost: string;
  scheme: 'http' | 'https';
  /** Port written in service URLs; null leaves it out (80/443 behind a front proxy). */
  urlPort: number | null;
  /** Lifetime of the signed links of `auth: token` services, seconds. */
  tokenSeconds: number;
}

export interface ServiceEndpoint {
  name: string;
  port: number;
  url: string;
  auth: ServiceAuth;
  tokenUrl: string | null;
  tokenExpiresAt: string | null;
  createdAt: string;
}

/** The query parameter and cookie that carry a service token. */
export const TOKEN_PARAM = 'faas_token';
export const TOKEN_COOKIE = 'faas_svc';

const LABEL = /^([a-z](?:[a-z0-9-]{0,30}[a-z0-9])?)-inst-([a-z0-9]+)$/;

export class HttpServices {
  /** Connections open through each service (`<instanceId>/<name>`), closed when it is hidden. */
  private readonly open = new Map<string, Set<() => void>>();

  constructor(
    private readonly repo: HttpServiceRepo,
    private readonly instances: InstanceService,
    private readonly keys: KeyService,
    events: EventBus,
    readonly hosts: ServiceHostConfig,
  ) {
    events.on('event', (e: { type: string; resourceId: string }) => {
      if (e.type === 'instance.deleted') {
        for (const s of this.repo.list(e.resourceId)) this.closeAll(e.resourceId, s.name);
        this.repo.deleteInstance(e.resourceId);
      }
    });
  }

  expose(instanceId: string, name: string, port: number, auth: ServiceAuth = 'api-key'): HttpServiceRecord {
    this.instances.get(instanceId);
    const before = this.repo.get(instanceId, name);
    this.repo.upsert({ instanceId, name, port, auth, createdAt: nowIso() });
    // A changed port or auth must not leave connections open under the old terms.
    if (before && (before.port !== port || before.auth !== auth)) this.closeAll(instanceId, name);
    return this.get(instanceId, name);
  }

  hide(instanceId: string, name: string): void {
    this.instances.get(instanceId);
    if (!this.repo.delete(instanceId, name)) throw notExposed(instanceId, name);
    this.closeAll(instanceId, name);
  }

  get(instanceId: string, name: string): HttpServiceRecord {
    const s = this.repo.get(instanceId, name);
    if (!s) throw notExposed(instanceId, name);
    return s;
  }

  find(instanceId: string, name: string): HttpServiceRecord | undefined {
    return this.repo.get(instanceId, name);
  }

  list(instanceId: string): HttpServiceRecord[] {
    return this.repo.list(instanceId);
  }

  /** A branch child exposes what its parent exposed, under its own host names. */
  inherit(parentId: string, childId: string): void {
    this.repo.copy(parentId, childId, nowIso());
  }

  /** What the API shows: the URL, and for `auth: token` a fresh link minted for `viewer`'s key. */
  view(s: HttpServiceRecord, viewer: Principal): ServiceEndpoint {
    const url = `${this.hosts.scheme}://${this.hostOf(s.instanceId, s.name)}${this.hosts.urlPort === null ? '' : `:${this.hosts.urlPort}`}/`;
    let tokenUrl: string | null = null;
    let tokenExpiresAt: string | null = null;
    if (s.auth === 'token') {
      const t = this.keys.mintScoped(viewer.keyId, scopeOf(s.instanceId, s.name), this.hosts.tokenSeconds);
      tokenUrl = `${url}?${TOKEN_PARAM}=${encodeURIComponent(t.token)}`;
      tokenExpiresAt = t.expiresAt;
    }
    return { name: s.name, port: s.port, url, auth: s.auth, tokenUrl, tokenExpiresAt, createdAt: s.createdAt };
  }

  hostOf(instanceId: string, name: string): string {
    return `${name}-${instanceId.replace('_', '-')}.${this.hosts.baseHost}`;
  }

  /**
   * The service a Host header names: undefined when the host is not under the service host at all
   * (an API request), null when it is but names no possible service (answered 404 by the proxy).
   */
  parseHost(hostHeader: string | undefined): { instanceId: string; name: string } | null | undefined {
    if (!hostHeader) return undefined;
    // Host names are case-insensitive; a port (and an IPv6 literal's brackets) is not part of it.
    const host = hostHeader.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    const suffix = `.${this.hosts.baseHost}`;
    if (!host.endsWith(suffix)) return undefined;
    const m = LABEL.exec(host.slice(0, -suffix.length));
    return m ? { instanceId: `inst_${m[2]}`, name: m[1] } : null;
  }

  /** Registers an open connection through a service; call the returned function when it ends. */
  track(instanceId: string, name: string, close: () => void): () => void {
    const key = `${instanceId}/${name}`;
    let set = this.open.get(key);
    if (!set) this.open.set(key, (set = new Set()));
    set.add(close);
    return () => {
      set!.delete(close);
      if (!set!.size && this.open.get(key) === set) this.open.delete(key);
    };
  }

  /** Verifies a service token for this service (throws 401/`token_expired`). */
  verifyToken(token: string, instanceId: string, name: string) {
    return this.keys.verifyScoped(token, scopeOf(instanceId, name));
  }

  private closeAll(instanceId: string, name: string): void {
    const key = `${instanceId}/${name}`;
    const set = this.open.get(key);
    this.open.delete(key);
    for (const close of set ?? []) close();
  }
}

/** What a service token opens: one service of one instance. */
const scopeOf = (instanceId: string, name: string) => `http:${instanceId}:${name}`;

const notExposed = (instanceId: string, name: string) =>
  new FaasError('service_not_found', `instance ${instanceId} exposes no HTTP service named ${name}; expose it with PUT /v1/instances/${instanceId}/services/${name}`, { id: instanceId, name });
