// The small HTTP vocabulary every simulated service shares: routes, the
// request context handlers see, replies, and errors in the services' own
// body shapes.
import type { IncomingHttpHeaders } from 'node:http';
import type { SimService } from './types';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Without request-ID headers: the unversioned roots of Cinder and Nova are served before that middleware. */
  noRequestId?: boolean;
  /**
   * A bare webob.Response from a Cinder controller (its DELETEs), or its
   * router's 404 for an unknown URL: Cinder's wsgi layer, which adds
   * X-Compute-Request-Id, does not touch it.
   */
  plain?: boolean;
}

export interface RequestContext {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** Scheme, host and port as the client reached us, for links. */
  baseUrl: string;
  /** The project of the validated token (services that need auth only). */
  projectId?: string;
  /** Headers every reply to this request carries (microversion echoes). */
  replyHeaders: Record<string, string>;
  /**
   * The body was not JSON. Cinder and Nova answer 400 only after negotiating
   * the microversion (the 400 carries the echo), so their handlers check this.
   */
  malformedBody?: boolean;
}

export type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;

export interface Route {
  service: SimService;
  method: string;
  /** Path template with {name} parameters; also the counter key. */
  template: string;
  /** Whether a valid X-Auth-Token is required. */
  auth: boolean;
  handler: Handler;
}

export interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
  key: string;
}

export function compileRoute(r: Route): CompiledRoute {
  const names: string[] = [];
  const source = r.template
    .split(/(\{[a-z_]+\})/i)
    .map((part) => {
      const m = /^\{([a-z_]+)\}$/i.exec(part);
      if (m) {
        names.push(m[1]);
        return '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { ...r, regex: new RegExp(`^${source}$`), names, key: `${r.method} ${r.template}` };
}

/** Thrown by handlers; the server turns it into the reply. */
export class SimHttpError extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

// Nova and Cinder share one fault naming (their wsgi.Fault); Keystone has its own.
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

const KEYSTONE_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function errorBody(service: SimService, status: number, message: string): unknown {
  // Cinder's and Nova's 401s come from keystonemiddleware, in Keystone's shape.
  if (service === 'identity' || status === 401) {
    return { error: { code: status, message, title: KEYSTONE_TITLES[status] ?? 'Error' } };
  }
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
}

export function httpError(service: SimService, status: number, message: string, headers?: Record<string, string>): SimHttpError {
  return new SimHttpError({ status, body: errorBody(service, status, message), headers });
}

/** keystonemiddleware's answer to a missing, unknown or expired token on Cinder and Nova. */
export const UNAUTHORIZED_MESSAGE = 'The request you have made requires authentication.';

export function defaultMessage(status: number): string {
  if (status === 401) return UNAUTHORIZED_MESSAGE;
  if (status === 404) return 'The resource could not be found.';
  if (status === 429) return 'Rate limit exceeded.';
  if (status >= 500) return 'The server has either erred or is incapable of performing the requested operation.';
  return `Simulated fault (HTTP ${status}).`;
}

/**
 * webob's 404 for a URL that no route of Cinder's or Nova's router serves:
 * not the {"itemNotFound": ...} fault of a missing object, and clients tell
 * the two apart. Its body follows Accept as webob's does (checked on the Zed
 * testbed): JSON for a client that accepts JSON but not HTML (the driver's
 * `accept: application/json`), an HTML page for HTML, any type (*\/*) or no
 * Accept, plain text otherwise. Which request-ID headers it carries depends
 * on where it is answered (see the server's unmatched()).
 */
export function webobNotFound(accept: string | undefined): Reply {
  const offers = (accept ?? '*/*').toLowerCase();
  if (/text\/html|\*\/\*/.test(offers)) {
    const html = '<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>';
    return { status: 404, body: html, headers: { 'content-type': 'text/html; charset=UTF-8' } };
  }
  if (offers.includes('application/json')) {
    return { status: 404, body: { message: 'The resource could not be found.<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' } };
  }
  return { status: 404, body: '404 Not Found\n\nThe resource could not be found.\n\n   ', headers: { 'content-type': 'text/plain; charset=UTF-8' } };
}

/** Flask's 404 for a URL Keystone has no route for: always HTML, whatever the client accepts. */
export function flaskNotFound(): Reply {
  const html =
    '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n' +
    '<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n';
  return { status: 404, body: html, headers: { 'content-type': 'text/html; charset=utf-8' } };
}

/** A plain object from a JSON body, or a 400 in the service's shape. */
export function objectField(service: SimService, body: unknown, key: string): Record<string, unknown> {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw httpError(service, 400, `Malformed request body: missing or invalid '${key}'.`);
  }
  return v as Record<string, unknown>;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
