// The one HTTP client every OpenStack call goes through: keep-alive
// connection pools (node:http and node:https agents, one socket pool per
// origin), a connect timeout, TLS from the cloud's TlsConfig, JSON in and out,
// and typed errors. Every request is bounded by the caller's AbortSignal and
// by the per-request timeout, whichever comes first.
//
// Why Node's own http and not undici: undici parses HTTP with a WebAssembly
// build of llhttp, and loading and running it costs the controller ~10 MiB of
// resident memory (compiled code, the WebAssembly instance's memory, the
// package's modules) for no gain at the request rates a CSI controller sees
// (bench figure 2: a few hundred requests per second at most; CPU per request
// measured the same). node:http parses with the native llhttp built into
// Node. It also works in a --jitless process (the node plugin's launcher
// flags), where V8 has no WebAssembly at all.
import http from 'node:http';
import https from 'node:https';
import { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log';
import type { TlsConfig } from './types';
import { errorFromException, errorFromResponse, redactSecrets, requestIdFrom } from './http-errors';
import { OpenStackError } from './errors';
import { describeProxy, isLoopback, proxyAuthorization, ProxyRoutes, TunnelAgent, type ProxySettings } from './proxy';

/** A response larger than this is not an OpenStack API answer (a page of 1,000 volumes is a few MiB). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** Sockets per origin: enough for a burst of CSI calls, few enough for a small API server. */
const MAX_SOCKETS_PER_ORIGIN = 32;
/**
 * How long a pooled socket may sit idle. Short, like undici's default:
 * proxies that send no Keep-Alive hint (haproxy) close idle connections
 * after a few seconds, and a POST sent on a socket the proxy is closing fails
 * (POSTs are retried only after a rate limit). A burst of calls keeps its sockets anyway.
 */
const IDLE_SOCKET_MS = 4_000;
/** An endpoint that does not accept a connection in this long is down; the request timeout may be longer. */
const CONNECT_TIMEOUT_MS = 10_000;

/** The raw result of one HTTP exchange. */
export interface Exchanged {
  status: number;
  /** Lower-cased names, repeated headers joined with ', '. */
  headers: Record<string, string>;
  text: string;
}

export interface ExchangeOptions {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  /** A keep-alive agent, or false for a connection of its own. */
  agent: http.Agent | false;
  maxBodyBytes?: number;
  connectTimeoutMs?: number;
  /** An http:// URL sent through this http:// proxy (https:// ones are tunnelled by their agent). */
  via?: URL;
}

/**
 * One request and its whole response body, over node:http or node:https by
 * the URL's scheme. Rejects with Node's own errors (ECONNREFUSED, ETIMEDOUT
 * for the connect timeout, AbortError, TLS codes): errorFromException turns
 * them into OpenStackErrors.
 */
export function exchange(url: URL, opts: ExchangeOptions): Promise<Exchanged> {
  const { via } = opts;
  // Through a proxy (always http://), or straight to the URL.
  const transport = !via && url.protocol === 'https:' ? https : http;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const { signal } = opts;
  const headers: Record<string, string> = { ...opts.headers, ...(via ? { host: url.host, ...proxyAuthorization(via) } : {}) };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    let connectTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (err: unknown, value?: Exchanged) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    // The signal is handled here, not by Node: Node destroys a request that
    // waits for a free pooled socket only once it gets one, which on a busy
    // pool overruns the caller's deadline.
    const onAbort = () => {
      const err = Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason });
      settle(err);
      req.destroy(err);
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) return res.destroy(Object.assign(new Error(`the response is larger than ${maxBody} bytes`), { code: 'ERESPONSETOOLARGE' }));
        chunks.push(chunk);
      });
      // A body cut short by the connection closing is an 'error' (ECONNRESET, "aborted").
      res.on('error', (err) => settle(err));
      res.on('end', () => settle(null, { status: res.statusCode ?? 0, headers: flattenHeaders(res.headers), text: Buffer.concat(chunks).toString('utf8') }));
    };
    const options = { method: opts.method, headers, agent: opts.agent };
    const req = via
      ? // Through a proxy: to the proxy's address, with the absolute URL as the path.
        transport.request({ ...options, host: via.hostname.replace(/^\[|\]$/g, ''), port: via.port || 80, path: url.href }, onResponse)
      : transport.request(url, options, onResponse);
    req.on('error', (err) => settle(err));
    // The connection (TCP, and the TLS handshake on https) of a new socket is
    // timed here; a reused socket is already connected. The whole request is
    // bounded by the signal.
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      connectTimer = setTimeout(
        () => req.destroy(Object.assign(new Error(`no connection to ${via ? describeProxy(via) : url.host} within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })),
        connectTimeoutMs,
      );
      socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    req.end(opts.body);
  });
}

export interface HttpRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON when present. */
  json?: unknown;
  signal?: AbortSignal;
  /** Statuses that are not errors; every 2xx when absent. */
  okStatuses?: readonly number[];
  /** How to read the service's message from an error body (default: every shape serviceMessage knows). */
  describeError?: (body: unknown, status: number) => string | undefined;
}

export interface HttpResponse<T = unknown> {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, the text otherwise, null when empty. */
  body: T;
  requestId?: string;
}

export interface HttpClientOptions {
  tls: TlsConfig;
  requestTimeoutMs: number;
  logger: Logger;
  /** Keep idle sockets this long. */
  keepAliveMs?: number;
  /** Outbound proxies; absent: every request goes direct. */
  proxy?: ProxySettings;
  /** Values no error message may carry (the cloud's password and secrets, its current token): see redactSecrets. */
  secrets?: () => Iterable<string | undefined>;
}

/**
 * The URL without credentials or query, for logs, when requests to it travel
 * unencrypted beyond this machine (http:// to any host but loopback);
 * undefined otherwise.
 */
export function unencryptedUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  return u.protocol === 'http:' && !isLoopback(u) ? `${u.protocol}//${u.host}${u.pathname}` : undefined;
}

/** The path of a URL without its query (markers, filters) for logs and errors. */
export function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

export class HttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly proxies: ProxyRoutes;
  /** The CONNECT-tunnel agent for https:// URLs, when there is an https proxy. */
  private readonly tunnel: TunnelAgent | undefined;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly secrets: (() => Iterable<string | undefined>) | undefined;
  /** With verification off, how to turn it on, until the warning is logged (at the first https:// request: over http:// it is moot). */
  private tlsOff: string | undefined;
  private closed = false;
  private readonly tls: TlsConfig;

  constructor(opts: HttpClientOptions) {
    this.tls = opts.tls;
    this.timeoutMs = opts.requestTimeoutMs;
    this.log = opts.logger;
    this.secrets = opts.secrets;
    this.tlsOff = opts.tls.verify ? undefined : (opts.tls.verifyHint ?? "the cloud config's TLS verification setting, with a CA file");
    // `timeout` is how long a socket may sit idle in the pool; Node shortens
    // it to the server's own Keep-Alive hint, so a socket the server is about
    // to close is not reused.
    const pool = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_ORIGIN, timeout: opts.keepAliveMs ?? IDLE_SOCKET_MS };
    this.httpAgent = new http.Agent(pool);
    const httpsAgentOptions: https.AgentOptions = {
      ...pool,
      rejectUnauthorized: opts.tls.verify,
      ca: opts.tls.caFile ? readFileSync(opts.tls.caFile) : undefined,
      cert: opts.tls.certFile ? readFileSync(opts.tls.certFile) : undefined,
      key: opts.tls.keyFile ? readFileSync(opts.tls.keyFile) : undefined,
    };
    this.httpsAgent = new https.Agent(httpsAgentOptions);
    this.proxies = new ProxyRoutes(opts.proxy);
    const { httpProxy, httpsProxy } = this.proxies;
    this.tunnel = httpsProxy ? new TunnelAgent(httpsProxy, CONNECT_TIMEOUT_MS, httpsAgentOptions) : undefined;
    if (httpProxy || httpsProxy) {
      const shown = (proxy: URL | undefined) => (proxy ? describeProxy(proxy) : 'none');
      this.log.info(
        { httpsProxy: shown(httpsProxy), httpProxy: shown(httpProxy), noProxy: opts.proxy?.noProxy ?? '' },
        'OpenStack requests go through a proxy (from https_proxy, http_proxy, no_proxy)',
      );
    }
  }

  /** How to reach `url`: the agent, and the proxy an http:// URL is sent to. */
  private route(url: URL): { agent: http.Agent; via?: URL } {
    const proxy = this.proxies.for(url);
    if (url.protocol !== 'https:') return { agent: this.httpAgent, via: proxy ?? undefined };
    return { agent: proxy && this.tunnel ? this.tunnel : this.httpsAgent };
  }

  async request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const path = pathOf(req.url);
    const url = new URL(req.url);
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    let body: string | undefined;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    }
    if (this.closed) throw new OpenStackError('network', `${req.method} ${path}: the HTTP client is closed (the driver is stopping)`);
    if (this.tlsOff !== undefined && url.protocol === 'https:') {
      this.log.warn(
        { tlsVerify: false },
        `TLS certificate verification is OFF for this cloud: anyone on the network path can read the credentials. Turn it on (${this.tlsOff}) instead.`,
      );
      this.tlsOff = undefined;
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    const started = performance.now();
    let status: number;
    let resHeaders: Record<string, string>;
    let parsed: unknown;
    try {
      signal.throwIfAborted();
      const { agent, via } = this.route(url);
      const res = await exchange(url, { method: req.method, headers, body, signal, agent, via });
      status = res.status;
      resHeaders = res.headers;
      parsed = parseBody(res.text, resHeaders['content-type']);
    } catch (err) {
      const e = this.scrubbed(errorFromException(req.method, path, err, req.signal, { url, caKey: this.tls.caKey, caFile: this.tls.caFile }));
      this.log.debug(
        { method: req.method, path, error: e.kind, durationMs: Math.round(performance.now() - started) },
        'openstack request failed',
      );
      throw e;
    }
    const requestId = requestIdFrom(resHeaders);
    this.log.debug(
      { method: req.method, path, status, durationMs: Math.round(performance.now() - started), requestId },
      'openstack request',
    );
    const ok = req.okStatuses ? req.okStatuses.includes(status) : status >= 200 && status < 300;
    if (!ok) throw this.scrubbed(errorFromResponse(req.method, path, status, resHeaders, parsed, { describe: req.describeError }));
    return { status, headers: resHeaders, body: parsed as T, requestId };
  }

  /** The error, or a copy whose message has no secret in it (made anew, so that its stack has none either). */
  private scrubbed(e: OpenStackError): OpenStackError {
    if (!this.secrets) return e;
    const message = redactSecrets(e.message, this.secrets());
    if (message === e.message) return e;
    const { method, path, status, requestId, retryAfter, lastState, cause } = e;
    return new OpenStackError(e.kind, message, { method, path, status, requestId, retryAfter, lastState, cause });
  }

  /** Close every socket, idle or in use: the driver calls this as it stops, once the gRPC server has drained. */
  async close(): Promise<void> {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.tunnel?.destroy();
  }
}

function flattenHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** Parsed JSON when the body is JSON (by its type or its first character), the text otherwise, null when empty. */
export function parseBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return null;
  if (contentType?.includes('json') || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
