// client.images: the root filesystems snapshots boot from.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as api from '../generated/api.gen.js';
import type { HttpTransport, RequestOptions } from '../core/http.js';
import { AutoPager } from '../core/pagination.js';
import { seg } from '../core/ids.js';

export type Image = api.Image;

export interface ImageListFilter {
  metadata?: Record<string, string>;
  /** Page size used while iterating (1..200). */
  pageSize?: number;
}

export interface ImportImageOptions extends RequestOptions {
  /** Unique image name. */
  name: string;
}

export class ImageManager {
  constructor(private readonly http: HttpTransport) {}

  list(filter: ImageListFilter = {}, options?: RequestOptions): AutoPager<Image> {
    return new AutoPager<Image>(
      (cursor) => this.http.request({ ...options, method: 'GET', path: '/v1/images', query: { limit: filter.pageSize, cursor, metadata: filter.metadata } }),
      (raw) => raw,
    );
  }

  get(id: string, options?: RequestOptions): Promise<Image> {
    return this.http.request({ ...options, method: 'GET', path: `/v1/images/${seg(id)}` });
  }

  /**
   * Imports a root filesystem from a tar archive (optionally gzip-compressed): a file path, which
   * is re-read if the upload has to be retried, or a stream, which is sent once. Device nodes and
   * FIFOs in the archive are skipped; entries escaping the root are refused (`invalid_request`);
   * an archive over the engine's `FAAS_IMAGE_MAX_BYTES` (packed or unpacked) is refused with
   * `payload_too_large` (413).
   */
  import(source: string | Readable | ReadableStream<Uint8Array>, options: ImportImageOptions): Promise<Image> {
    const { name, ...requestOptions } = options;
    const common = { ...requestOptions, method: 'POST' as const, path: '/v1/images/import', query: { name }, contentType: 'application/x-tar' };
    // Streamed bodies skip the engine's idempotency store, so a key would not make a retry safe.
    // A path is checked here first: a stream that fails to open mid-request surfaces as a network
    // error ("cannot reach the engine"), when the fault is the local file (it rejects with the
    // fs error, e.g. ENOENT, naming the path).
    if (typeof source === 'string') {
      return stat(source).then((s) => {
        if (!s.isFile()) throw Object.assign(new Error(`${source} is not a file (an image is imported from a tar archive)`), { code: 'EISDIR', path: source });
        return this.http.request<Image>({ ...common, idempotencyKey: null, body: () => createReadStream(source) });
      });
    }
    return this.http.request({ ...common, idempotencyKey: null, oneShotBody: source instanceof Readable ? source : Readable.fromWeb(source as never) });
  }

  /**
   * Deletes an imported image and its files. Rejects with `FaaSError` code `conflict` (409) while
   * snapshots made from it exist (`details.snapshots`: delete them first) and for the default image.
   */
  async delete(id: string, options?: RequestOptions): Promise<void> {
    await this.http.request({ ...options, method: 'DELETE', path: `/v1/images/${seg(id)}` });
  }

  setMetadata(id: string, metadata: Record<string, string>, options?: RequestOptions): Promise<Image> {
    return this.http.request({ ...options, method: 'PUT', path: `/v1/images/${seg(id)}/metadata`, json: metadata });
  }
}
