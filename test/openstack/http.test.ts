// The HTTP layer and the retry policy against a real local HTTP server:
// error bodies of every OpenStack shape, request IDs, 413 quota vs rate
// limit, retries of GET but not POST (unless rate limited), Retry-After,
// aborts and refused connections.
import assert from 'node:assert/strict';
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError } from '../../src/openstack/errors';
import { HttpClient } from '../../src/openstack/http';
import { backoffMs, DEFAULT_RETRY_POLICY, MAX_RETRY_AFTER_MS, withRetry } from '../../src/openstack/retry';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('http client', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, res) => res.end();
  let hits = 0;
  const http = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 2_000, logger: silentLogger });

  before(async () => {
    server = createServer((req, res) => {
      hits++;
      handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await http.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const reply = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
    res.end(text);
  };

  const cases: Array<[string, number, unknown, Record<string, string>, string, RegExp]> = [
    ['nova/cinder itemNotFound', 404, { itemNotFound: { code: 404, message: 'Volume abc could not be found.' } }, {}, 'not_found', /Volume abc could not be found/],
    ['badRequest', 400, { badRequest: { code: 400, message: 'Invalid input for field/attribute size.' } }, {}, 'bad_request', /Invalid input/],
    ['keystone error', 401, { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } }, {}, 'unauthorized', /requires authentication/],
    ['neutron', 409, { NeutronError: { type: 'Conflict', message: 'Port in use', detail: '' } }, {}, 'conflict', /Port in use/],
    ['plain text', 503, '<html><body>Service Unavailable</body></html>', {}, 'unavailable', /Service Unavailable/],
    ['quota 413 with Retry-After: 0 (real Cinder)', 413, { overLimit: { code: 413, message: 'VolumeSizeExceedsAvailableQuota: Requested volume exceeds allowed gigabytes quota.', retryAfter: '0' } }, { 'retry-after': '0' }, 'over_quota', /gigabytes quota/],
    ['rate limit 413', 413, { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter: '3' } }, { 'retry-after': '3' }, 'rate_limited', /rate-limited/],
    ['429', 429, { message: 'slow down' }, {}, 'rate_limited', /slow down/],
    ['403', 403, { forbidden: { message: 'Policy does not allow volume:create' } }, {}, 'forbidden', /Policy/],
    ['keystone 404', 404, { error: { code: 404, message: 'Could not find project: p.', title: 'Not Found' } }, {}, 'not_found', /Could not find project/],
    // Real Cinder and Nova (Zed) for a URL no route serves, as the driver's Accept gets it: not a missing object.
    ['webob 404 of an unknown route', 404, { message: 'The resource could not be found.<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' }, {}, 'config', /404 The resource could not be found\.; this URL reached no OpenStack API/],
    ['HTML 404 of a proxy', 404, '<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>', {}, 'config', /404 404 Not Found Not Found; this URL reached no OpenStack API.*endpoint URLs in the service catalog/],
    ['empty 404', 404, '', {}, 'config', /^GET \/v3\/p\/volumes\/abc: 404; this URL reached no OpenStack API/],
  ];
  for (const [label, status, body, headers, kind, message] of cases) {
    it(`${label}: ${status} -> ${kind}`, async () => {
      handler = reply(status, body, { 'x-openstack-request-id': 'req-123', ...headers });
      await assert.rejects(http.request({ method: 'GET', url: `${base}/v3/p/volumes/abc?marker=secret-marker` }), (e) => {
        assert.ok(isOpenStackError(e, kind as never), `kind ${(e as Error).message}`);
        assert.equal(e.status, status);
        assert.equal(e.method, 'GET');
        assert.equal(e.path, '/v3/p/volumes/abc');
        assert.equal(e.requestId, 'req-123');
        assert.match(e.message, message);
        assert.ok(!e.message.includes('secret-marker'));
        return true;
      });
    });
  }

  it('JSON in and out, headers lower-cased, compute request id', async () => {
    handler = (req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => reply(202, { got: JSON.parse(data), ct: req.headers['content-type'] }, { 'X-Compute-Request-Id': 'req-nova' })(req, res));
    };
    const res = await http.request<{ got: unknown; ct: string }>({ method: 'POST', url: `${base}/x`, json: { a: 1 } });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.got, { a: 1 });
    assert.equal(res.body.ct, 'application/json');
    assert.equal(res.requestId, 'req-nova');
  });

  it("an aborted caller gets kind timeout", async () => {
    handler = (_req, res) => setTimeout(() => reply(200, {})(_req, res), 500);
    const c = new AbortController();
    setTimeout(() => c.abort(), 50);
    await assert.rejects(http.request({ method: 'GET', url: `${base}/slow`, signal: c.signal }), (e) => isOpenStackError(e, 'timeout'));
  });

  it('a refused connection is kind network', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await assert.rejects(http.request({ method: 'GET', url: `http://127.0.0.1:${port}/` }), (e) => isOpenStackError(e, 'network'));
  });

  it('keeps the connection open between requests (one TCP connection for sequential calls)', async () => {
    handler = reply(200, { ok: true });
    const sockets = new Set<unknown>();
    const onConnection = (socket: unknown) => sockets.add(socket);
    server.on('connection', onConnection);
    try {
      for (let i = 0; i < 5; i++) await http.request({ method: 'GET', url: `${base}/k` });
    } finally {
      server.off('connection', onConnection);
    }
    assert.ok(sockets.size <= 1, `${sockets.size} connections for 5 sequential requests`);
  });

  it('a response that closes halfway through its body is kind network', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"volumes": [');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    await assert.rejects(http.request({ method: 'GET', url: `${base}/cut` }), (e) => isOpenStackError(e, 'network'));
  });

  it('a body larger than the limit is refused as bad_request, not retried as a network failure', async () => {
    const { exchange } = await import('../../src/openstack/http');
    const { errorFromException } = await import('../../src/openstack/http-errors');
    handler = reply(200, { blob: 'x'.repeat(10_000) });
    const err = await exchange(new URL(`${base}/big`), { method: 'GET', headers: {}, signal: AbortSignal.timeout(2_000), agent: false, maxBodyBytes: 1_000 }).then(
      () => assert.fail('a 10 kB body passed a 1 kB limit'),
      (e: unknown) => errorFromException('GET', '/big', e, undefined),
    );
    assert.ok(isOpenStackError(err, 'bad_request'), err.message);
    assert.match(err.message, /larger than 1000 bytes/);
  });

  it('POST sends its JSON body with a content-length (no chunked encoding, which some API proxies refuse)', async () => {
    let seen: { length?: string; chunked?: string } = {};
    handler = (req, res) => {
      seen = { length: req.headers['content-length'], chunked: req.headers['transfer-encoding'] };
      req.resume();
      req.on('end', () => reply(202, {})(req, res));
    };
    await http.request({ method: 'POST', url: `${base}/p`, json: { name: 'é' } });
    assert.equal(seen.length, String(Buffer.byteLength(JSON.stringify({ name: 'é' }))));
    assert.equal(seen.chunked, undefined);
  });

  it('the connect timeout covers the TLS handshake: a server that accepts TCP and never answers is given up at it', async () => {
    const { exchange } = await import('../../src/openstack/http');
    const silent = createNetServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    try {
      await assert.rejects(
        exchange(new URL(`https://127.0.0.1:${port}/`), { method: 'GET', headers: {}, signal: AbortSignal.timeout(3_000), agent: false, connectTimeoutMs: 200 }),
        (e: NodeJS.ErrnoException) => e.code === 'ETIMEDOUT',
      );
      assert.ok(Date.now() - started < 2_000, `gave up after ${Date.now() - started} ms, not at the connect timeout`);
    } finally {
      silent.close();
    }
  });

  it("a request waiting for a pooled socket answers its caller's abort at once", async () => {
    const { exchange } = await import('../../src/openstack/http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    handler = (req, res) => setTimeout(() => reply(200, {})(req, res), req.url === '/busy' ? 1_000 : 0);
    try {
      const busy = exchange(new URL(`${base}/busy`), { method: 'GET', headers: {}, signal: AbortSignal.timeout(5_000), agent });
      const caller = new AbortController();
      const started = Date.now();
      setTimeout(() => caller.abort(), 50);
      await assert.rejects(exchange(new URL(`${base}/queued`), { method: 'GET', headers: {}, signal: caller.signal, agent }), (e: Error) => e.name === 'AbortError');
      assert.ok(Date.now() - started < 500, `the abort took ${Date.now() - started} ms: it waited for the busy socket`);
      assert.equal((await busy).status, 200);
      // The socket went back to the pool and serves the next request.
      assert.equal((await exchange(new URL(`${base}/after`), { method: 'GET', headers: {}, signal: AbortSignal.timeout(2_000), agent })).status, 200);
    } finally {
      agent.destroy();
    }
  });

  it('a closed client refuses new requests', async () => {
    const closing = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 2_000, logger: silentLogger });
    handler = reply(200, {});
    assert.equal((await closing.request({ method: 'GET', url: `${base}/x` })).status, 200);
    await closing.close();
    await assert.rejects(closing.request({ method: 'GET', url: `${base}/x` }), (e) => isOpenStackError(e, 'network') && /closed/.test(e.message));
  });

  it('GET is retried on 503 and honours Retry-After; POST is not retried', async () => {
    let n = 0;
    handler = (req, res) => (++n <= 2 ? reply(503, 'busy', { 'retry-after': '0.1' })(req, res) : reply(200, { ok: true })(req, res));
    hits = 0;
    const started = Date.now();
    const res = await withRetry(() => http.request({ method: 'GET', url: `${base}/r` }), { method: 'GET' });
    assert.deepEqual(res.body, { ok: true });
    assert.equal(hits, 3);
    assert.ok(Date.now() - started >= 200);

    n = 0;
    hits = 0;
    await assert.rejects(withRetry(() => http.request({ method: 'POST', url: `${base}/r`, json: {} }), { method: 'POST' }), (e) => isOpenStackError(e, 'unavailable'));
    assert.equal(hits, 1);
  });

  // A rate limit is the server's refusal before it acted, so even a create may be sent again.
  it('a rate-limited POST (429, or 413 with a positive Retry-After) is sent again after its Retry-After; a quota 413 is not', async () => {
    for (const limited of [
      reply(429, 'slow down', { 'retry-after': '0.1' }),
      reply(413, { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter: '1' } }, { 'retry-after': '0.1' }),
    ]) {
      let n = 0;
      handler = (req, res) => (++n === 1 ? limited(req, res) : reply(202, { made: true })(req, res));
      hits = 0;
      const started = Date.now();
      const res = await withRetry(() => http.request({ method: 'POST', url: `${base}/volumes`, json: {} }), { method: 'POST' });
      assert.deepEqual(res.body, { made: true });
      assert.equal(hits, 2);
      assert.ok(Date.now() - started >= 100, 'Retry-After honoured');
    }
    handler = reply(413, { overLimit: { code: 413, message: 'VolumeSizeExceedsAvailableQuota: Requested volume exceeds allowed gigabytes quota.', retryAfter: '0' } }, { 'retry-after': '0' });
    hits = 0;
    await assert.rejects(withRetry(() => http.request({ method: 'POST', url: `${base}/volumes`, json: {} }), { method: 'POST' }), (e) => isOpenStackError(e, 'over_quota'));
    assert.equal(hits, 1);
  });

  it('a rate-limited POST is sent no more often than the policy allows', async () => {
    handler = reply(429, 'later', { 'retry-after': '0' });
    hits = 0;
    const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
    await assert.rejects(withRetry(() => http.request({ method: 'POST', url: `${base}/volumes`, json: {} }), { method: 'POST', policy }), (e) => isOpenStackError(e, 'rate_limited'));
    assert.equal(hits, 3);
  });

  it('a retry that cannot finish before the deadline is not started (a GET, or a rate-limited POST)', async () => {
    handler = reply(429, 'later', { 'retry-after': '30' });
    for (const method of ['GET', 'POST'] as const) {
      hits = 0;
      const started = Date.now();
      await assert.rejects(
        withRetry(() => http.request({ method, url: `${base}/r`, json: method === 'POST' ? {} : undefined }), { method, deadline: Date.now() + 1_000 }),
        (e) => isOpenStackError(e, 'rate_limited') && e.retryAfter === 30,
      );
      assert.equal(hits, 1, method);
      assert.ok(Date.now() - started < 500);
    }
  });
  // Creates, attaches and detaches have no deadline: nothing else bounds the wait.
  it(`a Retry-After longer than ${MAX_RETRY_AFTER_MS / 1000} s is not waited out without a deadline: rate_limited at once, with the wait`, async () => {
    const slept: number[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    for (const [retryAfter, label] of [['86400', 'seconds'], [new Date(Date.now() + 2 * 3600_000).toUTCString(), 'an HTTP date']] as const) {
      handler = reply(429, { message: 'Rate limit exceeded' }, { 'retry-after': retryAfter });
      hits = 0;
      await assert.rejects(withRetry(() => http.request({ method: 'POST', url: `${base}/volumes`, json: {} }), { method: 'POST', sleep }), (e) => {
        assert.ok(isOpenStackError(e, 'rate_limited'), String(e));
        assert.match(e.message, /Rate limit exceeded.*the cloud asks to wait \d+ s before trying again, longer than the 60 s one call waits/);
        return true;
      }, label);
      assert.equal(hits, 1, label);
    }
    assert.deepEqual(slept, []);
    // Up to the cap it is waited out.
    let n = 0;
    handler = (req, res) => (++n === 1 ? reply(429, 'later', { 'retry-after': String(MAX_RETRY_AFTER_MS / 1000) })(req, res) : reply(202, { made: true })(req, res));
    assert.deepEqual((await withRetry(() => http.request({ method: 'POST', url: `${base}/volumes`, json: {} }), { method: 'POST', sleep })).body, { made: true });
    assert.deepEqual(slept, [MAX_RETRY_AFTER_MS]);
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter, capped', () => {
    const low = (a: number) => backoffMs(a, DEFAULT_RETRY_POLICY, () => 0);
    const high = (a: number) => backoffMs(a, DEFAULT_RETRY_POLICY, () => 1);
    assert.deepEqual([1, 2, 3, 4].map(low), [100, 200, 400, 800]);
    assert.deepEqual([1, 2, 3, 4].map(high), [200, 400, 800, 1600]);
    assert.equal(high(20), DEFAULT_RETRY_POLICY.maxDelayMs);
  });
});
