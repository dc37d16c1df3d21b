// client.network: HTTP services of instances, served by the engine's host-based proxy at
// `http://<name>-<instance id with _ as ->.<service host>:<port>/` (docs/services.md).
import type * as api from '../generated/api.gen.js';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { seg, type IdRef } from '../core/ids.js';

export type ServiceEndpoint = api.ServiceEndpoint;
export type ServiceAuth = api.ServiceAuth;

export interface ExposeHttpOptions {
  /** `api-key` (default): a bearer key or token of a key that owns the instance; `token`: that,
   *  or the signed link `tokenUrl` (for browsers); `none`: public. */
  auth?: ServiceAuth;
}

export class NetworkOperations {
  constructor(private readonly http: HttpTransport) {}

  /** Serves `port` of the instance under a URL named `name` (exposing a name again replaces it). */
  exposeHttp(instance: IdRef, name: string, port: number, opts: ExposeHttpOptions = {}, options?: RequestOptions): Promise<ServiceEndpoint> {
    return this.http.request({ ...options, method: 'PUT', path: `/v1/instances/${seg(instance)}/services/${seg(name)}`, json: { port, ...opts } });
  }

  /** Stops serving it; connections open through it are closed. */
  async hideHttp(instance: IdRef, name: string, options?: RequestOptions): Promise<void> {
    await this.http.request({ ...options, method: 'DELETE', path: `/v1/instances/${seg(instance)}/services/${seg(name)}` });
  }

  /** The instance's exposed services (for `auth: token` each with a fresh `tokenUrl`). */
  async listServices(instance: IdRef, options?: RequestOptions): Promise<ServiceEndpoint[]> {
    const page = await this.http.request<api.ServiceList>({ ...options, method: 'GET', path: `/v1/instances/${seg(instance)}/services` });
    return page.data;
  }
}
