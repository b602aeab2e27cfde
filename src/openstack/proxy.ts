// Outbound HTTP proxies for the OpenStack APIs, from the environment:
// https_proxy / HTTPS_PROXY for https:// URLs, http_proxy / HTTP_PROXY for
// http:// URLs, no_proxy / NO_PROXY for the hosts that go direct (the
// lower-case name wins when both are set, as in curl; Go prefers upper case).
// The proxy itself is an http:// proxy (squid and its kind); an https://
// proxy is refused at start-up.
//
// NO_PROXY entries, separated by commas or spaces: `*` (nothing is proxied),
// a domain (`example.com` matches it and its subdomains; `.example.com` only
// its subdomains), an IP address, a CIDR block (`10.0.0.0/8`), and any of
// these with `:port` to match that port only. Loopback (localhost,
// 127.0.0.0/8, ::1) always goes direct, as in Go's net/http: a proxy cannot
// reach this machine's loopback, and the embedded simulator listens there.
//
// An https:// URL goes through a CONNECT tunnel (TLS is end to end, checked
// against the cloud's CA as without a proxy); an http:// URL is sent to the
// proxy with its absolute URL. Credentials in the proxy URL become a
// Proxy-Authorization header and are never logged.
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

export interface ProxySettings {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

/** The proxy settings in an environment, or undefined when it names no proxy. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const pick = (name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
  const settings = { httpProxy: pick('http_proxy'), httpsProxy: pick('https_proxy'), noProxy: pick('no_proxy') };
  return settings.httpProxy || settings.httpsProxy ? settings : undefined;
}

/** The proxy settings, parsed once: which proxy, if any, a URL goes through. */
export class ProxyRoutes {
  readonly httpProxy?: URL;
  readonly httpsProxy?: URL;
  private readonly noProxy: string;

  /** Throws on a proxy URL that parseProxyUrl refuses (the config loader has checked them already). */
  constructor(settings: ProxySettings | undefined) {
    this.httpProxy = settings?.httpProxy ? parseProxyUrl(settings.httpProxy) : undefined;
    this.httpsProxy = settings?.httpsProxy ? parseProxyUrl(settings.httpsProxy) : undefined;
    this.noProxy = settings?.noProxy ?? '';
  }

  /** The proxy to send a request for `target` through, or null to go direct. */
  for(target: URL): URL | null {
    const proxy = target.protocol === 'https:' ? this.httpsProxy : this.httpProxy;
    return proxy && !bypassed(target, this.noProxy) ? proxy : null;
  }
}

/** A proxy URL; one given without a scheme (`proxy:3128`) is an http:// proxy, as curl reads it. Throws a message without the URL's credentials. */
export function parseProxyUrl(raw: string): URL {
  let proxy: URL;
  try {
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new Error('the proxy is not a URL (expected http://host:port)');
  }
  if (proxy.protocol !== 'http:') {
    throw new Error(`the proxy ${describeProxy(proxy)} is not supported: only http:// proxies are (the tunnel to an https:// cloud is TLS end to end anyway)`);
  }
  try {
    decodeURIComponent(proxy.username);
    decodeURIComponent(proxy.password);
  } catch {
    throw new Error(`the credentials in the proxy URL for ${describeProxy(proxy)} are not valid percent-encoding`);
  }
  return proxy;
}

/** The URL's host, as no_proxy entries and address blocks are compared with it: no brackets, no trailing dot, lower case. */
function hostOf(target: URL): string {
  return target.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/** Whether the URL's host is this machine's loopback: localhost (and its subdomains), 127.0.0.0/8, ::1. */
export function isLoopback(target: URL): boolean {
  const host = hostOf(target);
  return host === 'localhost' || host.endsWith('.localhost') || LOOPBACK.some((block) => inCidr(host, block));
}

function bypassed(target: URL, noProxy: string): boolean {
  const host = hostOf(target);
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  if (isLoopback(target)) return true;
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const { name: withDot, entryPort } = splitPort(entry);
    const name = withDot.replace(/\.$/, '');
    if (entryPort && entryPort !== port) continue;
    if (name.includes('/')) {
      if (inCidr(host, name)) return true;
    } else if (isIP(name)) {
      // As addresses, not strings: fd00:0::1 is fd00::1.
      if (inCidr(host, `${name}/${isIP(name) === 4 ? 32 : 128}`)) return true;
    } else {
      const domain = name.replace(/^\*?\./, '');
      const subdomainsOnly = name.startsWith('.') || name.startsWith('*.');
      if ((!subdomainsOnly && host === domain) || host.endsWith(`.${domain}`)) return true;
    }
  }
  return false;
}

/** 'host:port', '[v6]:port', 'v6' (several colons, no port), or a bare name. */
function splitPort(entry: string): { name: string; entryPort?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1]!, entryPort: bracketed[2] };
  const parts = entry.split(':');
  if (parts.length === 2 && /^\d+$/.test(parts[1]!)) return { name: parts[0]!, entryPort: parts[1] };
  return { name: entry };
}

const LOOPBACK = ['127.0.0.0/8', '::1/128', '::ffff:127.0.0.0/104'];

function inCidr(host: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const family = isIP(base ?? '');
  if (!family || isIP(host) !== family) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  try {
    list.addSubnet(base!, Number(bits), type);
  } catch {
    return false;
  }
  return list.check(host, type);
}

/** Proxy-Authorization for credentials in the proxy URL, if any. */
export function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** The proxy's address without credentials, for logs and errors. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/**
 * An https agent whose connections are CONNECT tunnels through an http://
 * proxy. The pooled, kept-alive sockets are TLS sessions with the cloud
 * inside the tunnel; the TLS options (CA, client certificate, verification)
 * are the agent's, applied to the cloud's certificate as without a proxy.
 */
export class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly connectTimeoutMs: number,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  // Node's Agent takes the socket from this callback when it returns nothing.
  override createConnection(options: tls.ConnectionOptions & { host?: string; port?: number }, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const host = options.host ?? '';
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${options.port}`;
    const connect = http.request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: this.proxy.port || 80,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...proxyAuthorization(this.proxy) },
      agent: false,
    });
    let handedOver = false;
    let session: tls.TLSSocket | undefined;
    const fail = (err: Error) => {
      if (handedOver) return;
      handedOver = true;
      clearTimeout(timer);
      callback(Object.assign(err, { code: (err as NodeJS.ErrnoException).code ?? 'EPROXY' }));
    };
    // One timer from the first packet to the end of the TLS handshake inside
    // the tunnel: reaching the proxy, its answer, and the cloud's handshake.
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`no TLS session with ${authority} through proxy ${describeProxy(this.proxy)} within ${this.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' });
      connect.destroy(err);
      session?.destroy(err);
      fail(err);
    }, this.connectTimeoutMs);
    connect.once('error', fail);
    connect.once('connect', (res, socket, head) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        socket.destroy();
        const refused = new Error(`proxy ${describeProxy(this.proxy)} refused a tunnel to ${authority}: ${status} ${res.statusMessage ?? ''}`.trim());
        return fail(Object.assign(refused, { code: 'EPROXY', proxyStatus: status }));
      }
      if (head.length > 0) socket.unshift(head);
      session = tls.connect({ ...options, socket, servername: options.servername ?? (isIP(host) ? undefined : host) });
      session.once('secureConnect', () => clearTimeout(timer));
      session.once('close', () => clearTimeout(timer));
      handedOver = true;
      callback(null, session);
    });
    connect.end();
    return undefined;
  }
}
