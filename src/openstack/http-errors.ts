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

/** Where a failed exchange went, for the words of a TLS or scheme failure. */
export interface ExchangeTarget {
  url: URL;
  /** The key that names the CA file in the cloud's config (TlsConfig.caKey). */
  caKey?: string;
  /** The CA file in use, if the config names one. */
  caFile?: string;
}

/** scheme://host:port, the port always written. */
export function originOf(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.protocol}//${url.hostname.includes(':') && !url.hostname.startsWith('[') ? `[${url.hostname}]` : url.hostname}:${port}`;
}

/** TLS codes that are not about the peer's certificate: a timeout passes, plain HTTP on the port has its own words. */
const NOT_CERTIFICATE = new Set(['ERR_TLS_HANDSHAKE_TIMEOUT', 'ERR_SSL_WRONG_VERSION_NUMBER']);

/** A TLS certificate code from the error or its causes (Node puts it on `code`). */
export function certificateCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 4 && cur; i++) {
    const { code } = cur as { code?: unknown };
    if (typeof code === 'string' && TLS_CODES.test(code) && !NOT_CERTIFICATE.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether the server answered a TLS handshake with something else: plain HTTP on that port. */
function notTls(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (code === 'EPROTO' && typeof message === 'string' && NOT_TLS_WORDS.test(message));
}

/** OpenSSL's words for a TLS record that is not one (an HTTP answer where the handshake should be). */
const NOT_TLS_WORDS = /wrong version number|packet length too long|http request/i;

type CertTrouble = 'trust' | 'expired' | 'not_yet_valid' | 'name';

/** Node's certificate codes in words, and which kind of fix each needs. */
const CERTIFICATE_CODES: Record<string, [string, CertTrouble]> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: ["its issuer is not trusted here (a private CA, or the server does not send its intermediate certificates)", 'trust'],
  UNABLE_TO_GET_ISSUER_CERT: ["the certificate of its issuer is not trusted here or not sent", 'trust'],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: ["its issuer is not trusted here (a private CA, or the server does not send its intermediate certificates)", 'trust'],
  SELF_SIGNED_CERT_IN_CHAIN: ["its chain ends in a self-signed CA that is not trusted here", 'trust'],
  DEPTH_ZERO_SELF_SIGNED_CERT: ["it is self-signed and not trusted here", 'trust'],
  CERT_UNTRUSTED: ["it is not trusted here", 'trust'],
  CERT_SIGNATURE_FAILURE: ["its signature does not verify", 'trust'],
  CERT_HAS_EXPIRED: ['it has expired', 'expired'],
  CERT_NOT_YET_VALID: ['it is not valid yet', 'not_yet_valid'],
  ERR_TLS_CERT_ALTNAME_INVALID: ["it does not name the host the URL names", 'name'],
  HOSTNAME_MISMATCH: ["it does not name the host the URL names", 'name'],
};

/** The certificate failure in words: what was refused, why, and the fix in the config's own keys. */
function certificateFailure(method: string, path: string, code: string, detail: string, target: ExchangeTarget | undefined, err: unknown): OpenStackError {
  const server = target ? originOf(target.url) : 'the server';
  const caKey = target?.caKey ?? "the cloud config's CA file setting";
  const known = CERTIFICATE_CODES[code];
  if (!known) {
    return new OpenStackError(
      'tls',
      `${method} ${path}: TLS with ${server} failed: ${code} (${detail}); the cloud was reached, and asking again cannot help: check the cloud's certificate and TLS settings against ${caKey} and the driver's client certificate`,
      { method, path, cause: err },
    );
  }
  const [words, trouble] = known;
  const fixes: Record<CertTrouble, string> = {
    trust: target?.caFile
      ? `add the CA that signed it (with any intermediate certificates) to the CA file ${caKey} names (${target.caFile})`
      : `name the file of the CA that signed it in ${caKey}`,
    expired: "renew the cloud's certificate (or, if it is still valid, correct this machine's clock)",
    not_yet_valid: "correct this machine's clock (or wait for the certificate's start date)",
    name: `use a host name the certificate names in the URL (auth_url, or the endpoints in the service catalog), or reissue the certificate for ${target?.url.hostname ?? 'this host'}`,
  };
  return new OpenStackError(
    'tls',
    `${method} ${path}: the TLS certificate of ${server} was refused: ${code}, ${words} (${detail}); ` +
      `the cloud was reached, and asking again cannot help: ${fixes[trouble]}`,
    { method, path, cause: err },
  );
}

export function errorFromException(
  method: string,
  path: string,
  err: unknown,
  callerSignal: AbortSignal | undefined,
  target?: ExchangeTarget,
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
  const certificate = certificateCode(err);
  if (certificate) return certificateFailure(method, path, certificate, detail.replace(/\s+/g, ' '), target, err);
  const https = target?.url.protocol === 'https:';
  if (https && notTls(err)) {
    const plain = new URL(target.url.href);
    plain.protocol = 'http:';
    return new OpenStackError(
      'tls',
      `${method} ${path}: ${originOf(target.url)} does not speak TLS (${code}: ${NOT_TLS_WORDS.exec(detail)?.[0] ?? detail}): ` +
        `the port answers plain HTTP; use ${originOf(plain)} in the URL (auth_url, or the endpoints in the service catalog), or the port that serves HTTPS`,
      { method, path, cause: err },
    );
  }
  const causeCode = (err as { cause?: { code?: string } })?.cause?.code;
  let hint = '';
  if (target && code === 'ECONNRESET') {
    // Either side's scheme mismatch can look like a reset: an HTTPS port hangs up on a plain request, and a
    // plain HTTP port may wait for a request and close the connection while the client waits for a handshake.
    if (target.url.protocol === 'http:') hint = `; if ${originOf(target.url)} serves HTTPS, the URL must say https://`;
    else if (https && /before secure TLS connection/i.test(detail)) hint = `; if ${originOf(target.url)} serves plain HTTP, the URL must say http://`;
  }
  return new OpenStackError('network', `${method} ${path}: ${causeCode ?? code ?? ''} ${detail}`.replace(/\s+/g, ' ') + hint, {
    method,
    path,
    cause: err,
  });
}
