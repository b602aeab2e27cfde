// The one HTTP(S) listener: finds the route, counts it, applies injected
// faults and latency, checks the token, parses JSON and writes the reply with
// the request-ID headers the services send.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log';
import { compileRoute, errorBody, defaultMessage, flaskNotFound, httpError, SimHttpError, UNAUTHORIZED_MESSAGE, webobNotFound, type CompiledRoute, type Reply, type RequestContext, type Route } from './http';
import type { Counters, FaultSet } from './faults';
import type { Identity } from './keystone';
import type { SimService } from './types';

const MAX_BODY_BYTES = 1024 * 1024;

export interface ServerDeps {
  routes: Route[];
  faults: FaultSet;
  counters: Counters;
  identity: Identity;
  logger: Logger;
  latencyMs: () => number;
  baseUrl: () => string;
  /** The _sim control API; answers or returns undefined for an unknown path. */
  control: (method: string, path: string, body: unknown) => Reply | undefined;
}

const SERVICE_PREFIXES: Record<string, SimService> = { identity: 'identity', volume: 'volume', compute: 'compute', metadata: 'metadata' };

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(httpError('volume', 413, 'Request is too large.'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class RequestHandler {
  /** Routes grouped by their first path segment, so a request scans only its service's routes. */
  private readonly byPrefix = new Map<string, CompiledRoute[]>();
  /** The API roots behind keystonemiddleware ('/volume/v3', '/compute/v2.1'): the first two segments of a route that needs a token. */
  private readonly protectedRoots = new Set<string>();

  constructor(private readonly deps: ServerDeps) {
    for (const r of deps.routes.map(compileRoute)) {
      const prefix = r.template.split('/')[1];
      const list = this.byPrefix.get(prefix) ?? [];
      list.push(r);
      this.byPrefix.set(prefix, list);
      if (r.auth && r.service !== 'identity') this.protectedRoots.add(rootOf(r.template));
    }
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res).catch((err: unknown) => {
      this.deps.logger.error({ err }, 'sim: request failed');
      if (!res.headersSent && !res.destroyed) this.write(res, 'volume', { status: 500, body: errorBody('volume', 500, defaultMessage(500)) }, {});
    });
  };

  private match(method: string, path: string): { route: CompiledRoute; params: Record<string, string> } | undefined {
    const routes = this.byPrefix.get(path.split('/')[1] ?? '');
    if (!routes) return undefined;
    for (const route of routes) {
      if (route.method !== method) continue;
      const m = route.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      return { route, params };
    }
    return undefined;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname;
    const raw = await readBody(req);

    if (path.startsWith('/_sim/')) {
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        return this.write(res, 'volume', { status: 400, body: { error: 'body is not JSON' } }, {});
      }
      const reply = this.deps.control(method, path, body) ?? { status: 404, body: { error: `no control endpoint ${method} ${path}` } };
      return this.write(res, 'volume', reply, {});
    }

    const service: SimService = SERVICE_PREFIXES[path.split('/')[1] ?? ''] ?? 'volume';
    const found = this.match(method, path);
    this.deps.counters.inc(found ? counterKey(found.route.key, method, url.searchParams) : `${method} (unmatched)`);

    const fault = this.deps.faults.take(service, method, path);
    await sleep(this.deps.latencyMs() + (fault?.delayMs ?? 0));
    if (fault?.reset) {
      req.socket.destroy();
      return;
    }
    if (fault?.status !== undefined) {
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      const body = fault.body !== undefined ? fault.body : errorBody(service, fault.status, defaultMessage(fault.status));
      return this.write(res, service, { status: fault.status, body, headers }, {});
    }

    const ctx: RequestContext = {
      method,
      path,
      params: found?.params ?? {},
      query: url.searchParams,
      headers: req.headers,
      body: undefined,
      baseUrl: this.deps.baseUrl(),
      replyHeaders: {},
    };
    try {
      if (!found) return this.write(res, service, this.unmatched(service, path, req), {});
      if (found.route.auth) {
        this.authorize(service, req);
        ctx.projectId = this.deps.identity.creds.projectId;
      }
      if (raw.length > 0) {
        try {
          ctx.body = JSON.parse(raw);
        } catch {
          if (service !== 'volume' && service !== 'compute') throw httpError(service, 400, 'Malformed request body');
          ctx.malformedBody = true;
        }
      }
      const reply = await found.route.handler(ctx);
      if (fault?.resetAfter) {
        req.socket.destroy();
        return;
      }
      this.write(res, service, reply, ctx.replyHeaders);
    } catch (err) {
      if (!(err instanceof SimHttpError)) throw err;
      this.write(res, service, err.reply, ctx.replyHeaders);
    }
  }

  /** keystonemiddleware: a missing, unknown or expired token is 401 before anything else. */
  private authorize(service: SimService, req: IncomingMessage): void {
    const token = req.headers['x-auth-token'];
    if (!this.deps.identity.validate(Array.isArray(token) ? token[0] : token)) {
      throw httpError(service, 401, UNAUTHORIZED_MESSAGE, { 'www-authenticate': `Keystone uri="${this.deps.baseUrl()}/identity"` });
    }
  }

  /**
   * A URL no route serves, answered as the real services do (the Zed
   * testbed): Keystone's Flask with its HTML 404; under an API root behind
   * keystonemiddleware (/v3/ of Cinder, /v2.1/ of Nova), a 401 without a
   * valid token, then the router's webob 404 with the request ID (Nova's
   * both IDs, Cinder's only X-Openstack-Request-Id); elsewhere (an API
   * version Cinder does not serve, the metadata service) the bare webob 404.
   */
  private unmatched(service: SimService, path: string, req: IncomingMessage): Reply {
    if (service === 'identity') return flaskNotFound();
    const accept = Array.isArray(req.headers.accept) ? req.headers.accept.join(', ') : req.headers.accept;
    if (!this.protectedRoots.has(rootOf(path))) return { ...webobNotFound(accept), noRequestId: true };
    this.authorize(service, req);
    return { ...webobNotFound(accept), plain: true };
  }

  private write(res: ServerResponse, service: SimService, reply: Reply, extra: Record<string, string>): void {
    const requestId = `req-${randomUUID()}`;
    const headers: Record<string, string> = reply.noRequestId ? { ...extra, ...reply.headers } : { 'x-openstack-request-id': requestId, ...extra, ...reply.headers };
    // Cinder's wsgi layer sends Nova's header too, on what its controllers
    // answer: not on keystonemiddleware's 401 nor on a controller's bare response.
    const cinderWsgi = service === 'volume' && reply.status !== 401 && !reply.plain;
    if (!reply.noRequestId && (service === 'compute' || cinderWsgi)) headers['x-compute-request-id'] = requestId;
    let payload = '';
    if (typeof reply.body === 'string') {
      payload = reply.body;
      headers['content-type'] ??= 'text/plain; charset=UTF-8';
    } else if (reply.body !== undefined) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] = 'application/json';
    }
    headers['content-length'] = String(Buffer.byteLength(payload));
    res.writeHead(reply.status, headers);
    res.end(payload);
  }
}

/** The first two segments of a path: '/volume/v3/p/volumes' -> '/volume/v3'. */
function rootOf(path: string): string {
  return path.split('/').slice(0, 3).join('/');
}

/** Query parameters that only page or order a list; any other narrows it to a search. */
const PAGING_PARAMS = new Set(['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir', 'with_count']);

/**
 * The counter a request is counted under: its route template, with
 * " (filtered)" for a list narrowed by a search parameter (a name lookup is
 * not a status poll, and benchmarks need to tell the two apart).
 */
export function counterKey(routeKey: string, method: string, query: URLSearchParams): string {
  if (method !== 'GET') return routeKey;
  for (const name of query.keys()) if (!PAGING_PARAMS.has(name)) return `${routeKey} (filtered)`;
  return routeKey;
}
