// Turning a failed HTTP exchange into a typed OpenStackError. OpenStack
// services disagree on error bodies, so the service's own message is dug out
// of every shape we know: Nova/Cinder's {"itemNotFound": {"message": ...}},
// Keystone's {"error": {"message": ...}}, Neutron's {"NeutronError": {...}},
// and plain text or HTML from proxies. A 404 is not_found only when the
// service itself says so (see isServiceNotFound).
import { REDACTED } from '../log';
import { OpenStackError, type OpenStackErrorKind } from './errors';

export function kindForStatus(status: number, retryAfter: number | undefined): OpenStackErrorKind {
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 400) return 'bad_request';
  // Older Nova and Cinder answer rate limits with 413 plus Retry-After. Real
  // Cinder also sends `Retry-After: 0` with a quota 413, so only a positive
  // wait means a rate limit (errorFromResponse also reads the message).
  if (status === 413) return retryAfter !== undefined && retryAfter > 0 ? 'rate_limited' : 'over_quota';
  if (status === 403) return 'forbidden';
  if (status === 401) return 'unauthorized';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'unavailable';
  return 'bad_request';
}

/** Retry-After in seconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - now) / 1000);
}

/**
 * The text with every secret in it replaced: as written, JSON-escaped and
 * percent-encoded, the forms in which a service that echoes a request
 * (a body, a header, a URL) would quote it. For error messages, which go to
 * logs, Probe's reason and gRPC status details (PVC events that namespace
 * users read): no service's words may carry the cloud's password, secrets
 * or token there. A few `includes` per message.
 */
export function redactSecrets(text: string, secrets: Iterable<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) {
      if (!out.includes(form)) continue;
      // Only where it stands alone: a short or common password ('secret', 'a') must not eat the
      // letters of volume IDs and words around it, and a quoted secret is never glued to other letters.
      const alone = new RegExp(`(?<![A-Za-z0-9])${form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`, 'g');
      out = out.replace(alone, REDACTED);
    }
  }
  return out;
}

/** Text without its HTML tags, on one line. */
function plainText(html: string): string {
  return html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
}

/** The service's own message from any of the OpenStack error body shapes. */
export function serviceMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    const text = plainText(body);
    return text ? text.slice(0, 500) : undefined;
  }
  if (body === null || typeof body !== 'object') return undefined;
  const obj = body as Record<string, unknown>;
  // {"error": {"message": ...}} (Keystone), {"message": ...}, {"error": "text"}
  if (typeof obj.message === 'string') return obj.message;
  if (typeof obj.error === 'string') return obj.error;
  // {"itemNotFound": {...}}, {"badRequest": {...}}, {"overLimit": {...}},
  // {"NeutronError": {...}}, {"error": {...}}: a single wrapping key.
  for (const value of Object.values(obj)) {
    if (value && typeof value === 'object') {
      const inner = value as Record<string, unknown>;
      if (typeof inner.message === 'string') return inner.message;
      if (typeof inner.detail === 'string') return inner.detail;
    }
  }
  return undefined;
}

/**
 * Whether a 404 says that an object is missing: its body is a service's own
 * error object, Nova's and Cinder's {"itemNotFound": {"code": 404, ...}} or
 * Keystone's {"error": {"code": 404, ...}}. A URL that reaches no API route
 * gets its router's 404 instead (Cinder's and Nova's webob: {"message",
 * "code": "404 Not Found", "title"} or an HTML page; Keystone's Flask: HTML),
 * as does one that reaches a proxy or some other web server (checked on the
 * Zed testbed).
 */
export function isServiceNotFound(body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
  const values = Object.values(body as Record<string, unknown>);
  if (values.length !== 1) return false;
  const inner = values[0];
  return inner !== null && typeof inner === 'object' && String((inner as { code?: unknown }).code) === '404';
}

export function requestIdFrom(headers: Record<string, string>): string | undefined {
  return headers['x-openstack-request-id'] ?? headers['x-compute-request-id'] ?? headers['x-request-id'];
}

const QUOTA_WORDS = /quota|exceeded.*(gigabytes|volumes|snapshots|backups)|maximum number of/i;

export interface ResponseErrorOptions {
  /**
   * A 404 without a service's error object is not_found too. For the
   * metadata service, whose plain 404 means it has no such document (and
   * stops the retries); for the API services it is config (see
   * isServiceNotFound).
   */
  plainNotFound?: boolean;
  /** How to read the service's message from the body, instead of serviceMessage (the token request shows only what is known to be safe). */
  describe?: (body: unknown, status: number) => string | undefined;
}

export function errorFromResponse(
  method: string,
  path: string,
  status: number,
  headers: Record<string, string>,
  body: unknown,
  opts: ResponseErrorOptions = {},
): OpenStackError {
  const retryAfter = parseRetryAfter(headers['retry-after']);
  let kind = kindForStatus(status, retryAfter);
  const message = opts.describe ? opts.describe(body, status) : serviceMessage(body);
  // Cinder reports some quota failures as 400 or 403, and every 413 it sends
  // for a quota carries Retry-After: the message decides.
  if ((kind === 'bad_request' || kind === 'forbidden' || status === 413) && message && QUOTA_WORDS.test(message)) kind = 'over_quota';
  const requestId = requestIdFrom(headers);
  const details = { method, path, status, requestId, retryAfter };
  // Read as not_found, a wrong endpoint URL would make every DeleteVolume
  // answer OK ("already gone") having deleted nothing.
  if (status === 404 && !opts.plainNotFound && !isServiceNotFound(body)) {
    return new OpenStackError(
      'config',
      `${method} ${path}: 404${message ? ` ${plainText(message)}` : ''}; this URL reached no OpenStack API (the answer is not a service's own error): ` +
        "check the endpoint URLs in the service catalog, the driver's endpoint overrides and auth_url, and any proxy on the way",
      details,
    );
  }
  return new OpenStackError(kind, `${method} ${path}: ${status}${message ? ` ${message}` : ''}`, details);
}

const TLS_CODES = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL|HOSTNAME_MISMATCH)/;

/** Whether a network-kind error is one that asking again cannot change: TLS verification, or a proxy's 4xx refusal (407: wrong credentials). */
export function isPermanentNetworkFailure(err: unknown): boolean {
  let cur: unknown = err;
  for (let i = 0; i < 4 && cur; i++) {
    const { code, proxyStatus } = cur as { code?: unknown; proxyStatus?: unknown };
    if (typeof code === 'string' && TLS_CODES.test(code)) return true;
    if (code === 'EPROXY' && typeof proxyStatus === 'number' && proxyStatus >= 400 && proxyStatus < 500) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

export function errorFromException(
  method: string,
  path: string,
  err: unknown,
  callerSignal: AbortSignal | undefined,
): OpenStackError {
  if (err instanceof OpenStackError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  const code = e?.code ?? '';
  const detail = e?.message ?? String(err);
  if (code === 'ERESPONSETOOLARGE') {
    // Not a network failure: asking again would get the same answer.
    return new OpenStackError('bad_request', `${method} ${path}: ${detail}`, { method, path, cause: err });
  }
  if (callerSignal?.aborted) {
    return new OpenStackError('timeout', `${method} ${path}: the caller's deadline passed or it cancelled`, {
      method,
      path,
      cause: err,
    });
  }
  const timedOut =
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'ETIMEDOUT' ||
    e?.name === 'TimeoutError' ||
    e?.name === 'AbortError';
  if (timedOut) {
    return new OpenStackError('timeout', `${method} ${path}: request timed out (${code || e?.name})`, {
      method,
      path,
      cause: err,
    });
  }
  const causeCode = (err as { cause?: { code?: string } })?.cause?.code;
  return new OpenStackError('network', `${method} ${path}: ${causeCode ?? code ?? ''} ${detail}`.replace(/\s+/g, ' '), {
    method,
    path,
    cause: err,
  });
}
