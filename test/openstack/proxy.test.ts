// Outbound proxies: which URLs go through which proxy (https_proxy,
// http_proxy, no_proxy as curl and Go read them), and real requests through
// a real local proxy: a CONNECT tunnel for https (TLS checked against the
// cloud's own name, end to end) and an absolute-URI request for http.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fromDocument } from '../../src/config/config';
import { ConfigError } from '../../src/config/reader';
import { silentLogger } from '../../src/log';
import { isOpenStackError } from '../../src/openstack/errors';
import { exchange, HttpClient } from '../../src/openstack/http';
import { withRetry } from '../../src/openstack/retry';
import { ProxyRoutes, proxySettingsFromEnv, TunnelAgent, type ProxySettings } from '../../src/openstack/proxy';
import { startSimulator, type Simulator } from '../../src/sim';
import { captureLog } from '../helpers/server';

describe('which proxy a URL goes through', () => {
  const settings: ProxySettings = { httpsProxy: 'http://proxy.corp:3128', httpProxy: 'proxy.corp:8080', noProxy: '' };
  const via = (url: string, s: ProxySettings = settings) => new ProxyRoutes(s).for(new URL(url))?.href ?? null;

  it('https URLs use https_proxy, http URLs http_proxy; a proxy without a scheme is http://', () => {
    assert.equal(via('https://keystone.cloud:5000/v3'), 'http://proxy.corp:3128/');
    assert.equal(via('http://cinder.cloud:8776/'), 'http://proxy.corp:8080/');
    assert.equal(via('https://keystone.cloud/', { httpProxy: 'http://p:1' }), null, 'no https_proxy: https goes direct');
  });

  it('the lower-case variable wins; none set means no proxy at all', () => {
    assert.deepEqual(proxySettingsFromEnv({ https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:1', NO_PROXY: '.corp' }), {
      httpsProxy: 'http://low:1',
      httpProxy: undefined,
      noProxy: '.corp',
    });
    assert.equal(proxySettingsFromEnv({ NO_PROXY: '.corp', PATH: '/bin' }), undefined);
  });

  it('no_proxy: *, domains with and without a leading dot, IPs, CIDR blocks, ports', () => {
    const np = (noProxy: string, url: string) => via(url, { ...settings, noProxy }) === null;
    assert.ok(np('*', 'https://anything.example/'));
    assert.ok(np('cloud.example', 'https://cloud.example/') && np('cloud.example', 'https://keystone.cloud.example/'));
    assert.ok(!np('.cloud.example', 'https://cloud.example/') && np('.cloud.example', 'https://keystone.cloud.example/'));
    assert.ok(np('*.cloud.example', 'https://keystone.cloud.example/'));
    assert.ok(!np('cloud.example', 'https://notcloud.example/'), 'a suffix is matched at a dot only');
    assert.ok(np('10.0.0.5', 'https://10.0.0.5:5000/') && !np('10.0.0.5', 'https://10.0.0.6/'));
    assert.ok(np('10.0.0.0/8', 'https://10.1.2.3/') && !np('10.0.0.0/8', 'https://11.1.2.3/'));
    assert.ok(np('fd00::/8', 'https://[fd00::1]:8776/'));
    assert.ok(np('keystone.cloud:5000', 'https://keystone.cloud:5000/') && !np('keystone.cloud:5000', 'https://keystone.cloud:13000/'));
    assert.ok(np('a.example, b.example c.example', 'https://c.example/'), 'commas and spaces both separate');
    assert.ok(np('fd00:0::1', 'https://[fd00::1]/'), 'IPv6 addresses compare as addresses');
    assert.ok(np('cloud.example.', 'https://keystone.cloud.example./'), 'a trailing dot is the same name');
  });

  it('loopback always goes direct (a proxy cannot reach this machine, and the simulator listens there)', () => {
    for (const url of ['http://127.0.0.1:8776/', 'https://localhost:5000/', 'http://[::1]:80/', 'http://127.3.4.5/', 'http://[::ffff:127.0.0.1]/']) {
      assert.equal(via(url), null, url);
    }
  });

  it('a proxy other than http://, or with malformed credentials, is refused at start-up without echoing them', () => {
    const cloudEnv = { OS_AUTH_URL: 'https://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'x' };
    for (const https_proxy of ['socks5://me:s3cret@p:1080', 'https://me:s3cret@p:3128', 'http://me:s3cret%zz@p:3128']) {
      assert.throws(
        () => fromDocument({}, 'the environment', { ...cloudEnv, https_proxy }),
        (e: Error) => e instanceof ConfigError && /https_proxy/.test(e.message) && !e.message.includes('s3cret'),
        https_proxy.replace(/:[^:@]*@/, ':***@'),
      );
    }
    const config = fromDocument({}, 'the environment', { OS_AUTH_URL: 'https://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'x', HTTPS_PROXY: 'http://p:3128', NO_PROXY: '.internal' });
    assert.deepEqual(config.clouds[0]?.proxy, { httpsProxy: 'http://p:3128', httpProxy: undefined, noProxy: '.internal' });
  });
});

/** A forward proxy: CONNECT tunnels and absolute-URI requests, to 127.0.0.1 whatever the name asked for. */
async function startProxy(opts: { refuse?: number } = {}) {
  const seen: Array<{ method: string; target: string; auth?: string }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method!, target: req.url!, auth: req.headers['proxy-authorization'] });
    const target = new URL(req.url!);
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(upstream);
  });
  server.on('connect', (req, client, head) => {
    seen.push({ method: 'CONNECT', target: req.url!, auth: req.headers['proxy-authorization'] });
    if (opts.refuse) {
      client.end(`HTTP/1.1 ${opts.refuse} Refused\r\n\r\n`);
      return;
    }
    const port = Number(req.url!.split(':').pop());
    const upstream = netConnect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    url: `http://127.0.0.1:${port}`,
    stop: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

describe('requests through a proxy', () => {
  let tlsSim: Simulator;
  let plainSim: Simulator;
  before(async () => {
    tlsSim = await startSimulator({ hypervisor: false, tls: true });
    plainSim = await startSimulator({ hypervisor: false });
  });
  after(async () => {
    await tlsSim.stop();
    await plainSim.stop();
  });
  const portOf = (sim: Simulator) => new URL(sim.url).port;

  it('https: a CONNECT tunnel with Proxy-Authorization; TLS is end to end, checked against the cloud name', async () => {
    const proxy = await startProxy();
    const log = captureLog();
    const proxyUrl = proxy.url.replace('http://', 'http://ops:pr0xy-pass@');
    // The name is the cloud's, which only the proxy resolves (to the simulator).
    const url = `https://cloud.test:${portOf(tlsSim)}/volume/`;
    const trusting = new HttpClient({ tls: { verify: false }, requestTimeoutMs: 5_000, logger: log.logger, proxy: { httpsProxy: proxyUrl } });
    const verifying = new HttpClient({ tls: { verify: true, caFile: tlsSim.caFile }, requestTimeoutMs: 5_000, logger: silentLogger, proxy: { httpsProxy: proxyUrl } });
    try {
      assert.equal((await trusting.request({ method: 'GET', url, okStatuses: [300] })).status, 300);
      assert.equal((await trusting.request({ method: 'GET', url, okStatuses: [300] })).status, 300);
      const tunnels = proxy.seen.filter((s) => s.method === 'CONNECT');
      assert.equal(tunnels.length, 1, 'the tunnel is kept alive and reused');
      assert.equal(tunnels[0]!.target, `cloud.test:${portOf(tlsSim)}`);
      assert.equal(tunnels[0]!.auth, `Basic ${Buffer.from('ops:pr0xy-pass').toString('base64')}`);
      // The simulator's certificate names 127.0.0.1 and localhost, not cloud.test: a verifying
      // client refuses it, so the TLS session is with the cloud, not with the proxy.
      await assert.rejects(verifying.request({ method: 'GET', url }), (e) => isOpenStackError(e, 'tls') && /altnames|cert|host/i.test(e.message));
      assert.match(log.text(), /127\.0\.0\.1/);
      assert.ok(!log.text().includes('pr0xy-pass'), 'the proxy password reached the log');
    } finally {
      await trusting.close();
      await verifying.close();
      await proxy.stop();
    }
  });

  it('an IPv6 cloud is asked for as [address]:port in the CONNECT', async () => {
    const proxy = await startProxy();
    const client = new HttpClient({ tls: { verify: false }, requestTimeoutMs: 5_000, logger: silentLogger, proxy: { httpsProxy: proxy.url } });
    try {
      const url = `https://[fd00::1]:${portOf(tlsSim)}/volume/`;
      assert.equal((await client.request({ method: 'GET', url, okStatuses: [300] })).status, 300);
      assert.deepEqual(proxy.seen.map((s) => `${s.method} ${s.target}`), [`CONNECT [fd00::1]:${portOf(tlsSim)}`]);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  it('a proxy that never answers the CONNECT is given up at the connect timeout', async () => {
    const silent = createNetServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const agent = new TunnelAgent(new URL(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`), 200, { rejectUnauthorized: false });
    const started = Date.now();
    try {
      await assert.rejects(
        exchange(new URL(`https://cloud.test:${portOf(tlsSim)}/volume/`), { method: 'GET', headers: {}, signal: AbortSignal.timeout(5_000), agent }),
        (e: NodeJS.ErrnoException) => e.code === 'ETIMEDOUT' && /through proxy http:\/\/127\.0\.0\.1/.test(e.message),
      );
      assert.ok(Date.now() - started < 2_000, `gave up after ${Date.now() - started} ms`);
    } finally {
      agent.destroy();
      silent.close();
    }
  });

  it('http: the absolute URL is sent to the proxy', async () => {
    const proxy = await startProxy();
    const client = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 5_000, logger: silentLogger, proxy: { httpProxy: proxy.url } });
    try {
      const url = `http://cloud.test:${portOf(plainSim)}/volume/`;
      assert.equal((await client.request({ method: 'GET', url, okStatuses: [300] })).status, 300);
      assert.deepEqual(proxy.seen.map((s) => `${s.method} ${s.target}`), [`GET ${url}`]);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  it('a refused tunnel is a network error naming the proxy, never its credentials; no_proxy and loopback go direct', async () => {
    const proxy = await startProxy({ refuse: 407 });
    const client = new HttpClient({
      tls: { verify: false },
      requestTimeoutMs: 5_000,
      logger: silentLogger,
      proxy: { httpsProxy: proxy.url.replace('http://', 'http://ops:pr0xy-pass@'), noProxy: 'direct.test' },
    });
    try {
      // Through the retry policy: a 407 is the proxy's final word, asked once.
      await assert.rejects(withRetry(() => client.request({ method: 'GET', url: `https://cloud.test:${portOf(tlsSim)}/volume/` }), { method: 'GET' }), (e) => {
        assert.ok(isOpenStackError(e, 'network'), String(e));
        assert.equal(proxy.seen.filter((s) => s.method === 'CONNECT').length, 1, 'a 407 was retried');
        assert.match(e.message, /refused a tunnel to cloud\.test:\d+: 407/);
        assert.ok(!e.message.includes('pr0xy-pass'));
        return true;
      });
      // Loopback: straight to the simulator, the refusing proxy never asked.
      const before = proxy.seen.length;
      assert.equal((await client.request({ method: 'GET', url: `${tlsSim.url}/volume/`, okStatuses: [300] })).status, 300);
      assert.equal(proxy.seen.length, before);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });
});
