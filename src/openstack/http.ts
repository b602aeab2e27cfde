// The one HTTP client every OpenStack call goes through: undici keep-alive
// pools (one per origin, managed by an Agent), connect/headers/body timeouts,
// TLS from the cloud's TlsConfig, JSON in and out, and typed errors. Every
// request is bounded by the caller's AbortSignal and by the per-request
// timeout, whichever comes first.
import { readFileSync } from 'node:fs';
import type { Agent as UndiciAgent } from 'undici';
import type { Logger } from '../log';
import type { TlsConfig } from './types';
import { errorFromException, errorFromResponse, requestIdFrom } from './http-errors';

/**
 * undici's Agent with its request API, without the rest of undici: the
 * package's index also loads fetch, WebSocket, EventSource and the cache and
 * mock agents, ~3 MiB of heap (module sources and code) that this client never
 * uses. This is what the index does for Agent and request(); if a later undici
 * moves these files, the whole package is loaded instead.
 */
function loadAgent(): typeof UndiciAgent {
  try {
    const Dispatcher = require('undici/lib/dispatcher/dispatcher') as { prototype: object };
    const Agent = require('undici/lib/dispatcher/agent') as typeof UndiciAgent;
    if (!('request' in Dispatcher.prototype)) Object.assign(Dispatcher.prototype, require('undici/lib/api'));
    if (Agent.prototype instanceof (Dispatcher as unknown as Function) && typeof Agent.prototype.request === 'function') return Agent;
  } catch {
    // fall through to the package's public entry point
  }
  return (require('undici') as typeof import('undici')).Agent;
}

const Agent = loadAgent();

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
  private readonly agent: UndiciAgent;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(opts: HttpClientOptions) {
    this.timeoutMs = opts.requestTimeoutMs;
    this.log = opts.logger;
    if (!opts.tls.verify) {
      this.log.warn(
        { tlsVerify: false },
        'TLS certificate verification is OFF for this cloud: anyone on the network path can read the credentials. Set verify to true with a CA file instead.',
      );
    }
    this.agent = new Agent({
      keepAliveTimeout: opts.keepAliveMs ?? 30_000,
      connections: 32,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      connect: {
        timeout: Math.min(opts.requestTimeoutMs, 10_000),
        rejectUnauthorized: opts.tls.verify,
        ca: opts.tls.caFile ? readFileSync(opts.tls.caFile) : undefined,
        cert: opts.tls.certFile ? readFileSync(opts.tls.certFile) : undefined,
        key: opts.tls.keyFile ? readFileSync(opts.tls.keyFile) : undefined,
      },
    });
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
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    const started = performance.now();
    let status: number;
    let resHeaders: Record<string, string>;
    let parsed: unknown;
    try {
      signal.throwIfAborted();
      const res = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method as 'GET',
        headers,
        body,
        signal,
      });
      status = res.statusCode;
      resHeaders = flattenHeaders(res.headers);
      const text = await res.body.text();
      parsed = parseBody(text, resHeaders['content-type']);
    } catch (err) {
      const e = errorFromException(req.method, path, err, req.signal);
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
    if (!ok) throw errorFromResponse(req.method, path, status, resHeaders, parsed);
    return { status, headers: resHeaders, body: parsed as T, requestId };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function parseBody(text: string, contentType: string | undefined): unknown {
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
