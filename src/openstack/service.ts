// An authenticated client for one OpenStack service (Cinder or Nova): the
// token from the shared Identity, the service's base URL, the retry policy,
// and one re-authentication when the service answers 401 (the token was
// revoked or expired early).
import type { Logger } from '../log';
import { isOpenStackError } from './errors';
import type { HttpClient, HttpResponse } from './http';
import type { AuthState, Identity } from './keystone';
import { withRetry } from './retry';
import type { CallOptions } from './types';

export interface ServiceRequest extends CallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  /** Relative to the service's base URL, starting with '/'; may carry a query. */
  path: string;
  json?: unknown;
  headers?: Record<string, string>;
  okStatuses?: readonly number[];
  /** A POST the caller knows is safe to repeat. */
  idempotent?: boolean;
}

/** Where a service lives for a given token (Cinder needs its version document for this). */
export type BaseUrlResolver = (auth: AuthState, opts: CallOptions) => Promise<string>;

export class ServiceClient {
  constructor(
    private readonly identity: Identity,
    private readonly http: HttpClient,
    private readonly baseUrl: BaseUrlResolver,
    private readonly log: Logger,
  ) {}

  async request<T = unknown>(req: ServiceRequest): Promise<HttpResponse<T>> {
    return withRetry(() => this.authenticatedOnce<T>(req), {
      method: req.method,
      idempotent: req.idempotent,
      signal: req.signal,
      deadline: req.deadline,
      logger: this.log,
    });
  }

  private async authenticatedOnce<T>(req: ServiceRequest): Promise<HttpResponse<T>> {
    let auth = await this.identity.auth(req);
    try {
      return await this.send<T>(auth, req);
    } catch (err) {
      // A 401 means the service did not act on the request, so even a POST
      // may be sent again, once, with a new token.
      if (!isOpenStackError(err, 'unauthorized')) throw err;
      this.log.info({ path: err.path }, 'token refused (401); authenticating again');
      this.identity.invalidate(auth.token);
      auth = await this.identity.auth(req);
      return this.send<T>(auth, req);
    }
  }

  private async send<T>(auth: AuthState, req: ServiceRequest): Promise<HttpResponse<T>> {
    const base = await this.baseUrl(auth, req);
    return this.http.request<T>({
      method: req.method,
      url: base + req.path,
      headers: { ...req.headers, 'x-auth-token': auth.token },
      json: req.json,
      signal: req.signal,
      okStatuses: req.okStatuses,
    });
  }
}
