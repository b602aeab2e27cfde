// Typed errors for every way an OpenStack call can fail. They carry enough to
// act on (method, path, status, the service's own message and request ID) and
// nothing secret. This module knows nothing of gRPC: the CSI layer maps these
// kinds to status codes in one place (src/csi/pipeline.ts).

export type OpenStackErrorKind =
  | 'not_found' // 404
  | 'conflict' // 409
  | 'bad_request' // 400
  | 'over_quota' // 413, or a 4xx whose message says the quota is exceeded
  | 'forbidden' // 403
  | 'unauthorized' // 401 after one re-authentication
  | 'unavailable' // 5xx, 503
  | 'rate_limited' // 429 (or 413 with Retry-After)
  | 'timeout' // the caller's deadline or a socket timeout
  | 'network' // connection refused or reset, DNS
  | 'tls' // the server was reached but its certificate was not accepted, or it does not speak TLS: asking again cannot help
  | 'state' // a waited-for resource reached a failure state or went backwards
  | 'config'; // the cloud cannot serve what the configuration asks for (no call-level translation applies)

export interface OpenStackErrorDetails {
  method?: string;
  /** Path only, never the query string with markers or the token. */
  path?: string;
  status?: number;
  requestId?: string;
  /** Seconds, from Retry-After, for rate limits. */
  retryAfter?: number;
  /** For 'state' errors: the last status seen. */
  lastState?: string;
  cause?: unknown;
}

export class OpenStackError extends Error {
  readonly kind: OpenStackErrorKind;
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly requestId?: string;
  readonly retryAfter?: number;
  readonly lastState?: string;

  constructor(kind: OpenStackErrorKind, message: string, details: OpenStackErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'OpenStackError';
    this.kind = kind;
    this.method = details.method;
    this.path = details.path;
    this.status = details.status;
    this.requestId = details.requestId;
    this.retryAfter = details.retryAfter;
    this.lastState = details.lastState;
  }
}

export function isOpenStackError(e: unknown, kind?: OpenStackErrorKind): e is OpenStackError {
  return e instanceof OpenStackError && (kind === undefined || e.kind === kind);
}

export const isNotFound = (e: unknown): e is OpenStackError => isOpenStackError(e, 'not_found');
