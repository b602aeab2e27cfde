// What the driver warns about how it reaches the cloud: plain http:// (the
// credentials, tokens and catalog travel unencrypted), once for the auth URL
// and once per endpoint, but never for loopback (the simulator, a test
// cloud); and TLS verification turned off, in the words of the config that
// turned it off, only where TLS is used at all.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createCloud } from '../../src/openstack/cloud';
import { HttpClient, unencryptedUrl, type HttpRequest, type HttpResponse } from '../../src/openstack/http';
import { Identity } from '../../src/openstack/keystone';
import type { CloudConfig } from '../../src/openstack/types';
import { startSimulator } from '../../src/sim';
import { captureLog } from '../helpers/server';

const warnings = (log: ReturnType<typeof captureLog>) => log.lines().filter((l) => l.level === 'warn');

describe('unencryptedUrl', () => {
  it('is the URL without credentials or query for http:// beyond loopback, and undefined otherwise', () => {
    assert.equal(unencryptedUrl('http://user:pw@keystone.example.com:5000/v3?x=1'), 'http://keystone.example.com:5000/v3');
    assert.equal(unencryptedUrl('http://10.0.0.5/volume/v3/p'), 'http://10.0.0.5/volume/v3/p');
    for (const url of ['https://keystone.example.com/v3', 'http://127.0.0.1:5000/v3', 'http://127.8.9.1/', 'http://localhost:8776/v3', 'http://[::1]:8774/v2.1', 'not a url']) {
      assert.equal(unencryptedUrl(url), undefined, url);
    }
  });
});

describe('plain http:// warnings', () => {
  const config = (authUrl: string): CloudConfig => ({
    name: 'c',
    auth: { authUrl, authPlugin: 'password', username: 'u', password: 'p', projectId: 'p1', identityApiVersion: '3' },
    region: 'RegionOne',
    interface: 'public',
    tls: { verify: true },
    blockStorageApiVersion: 'auto',
    requestTimeoutMs: 1_000,
  });
  /** A Keystone whose catalog has these Cinder and Nova URLs. */
  const keystone = (volume: string, compute: string) => ({
    async request<T>(_req: HttpRequest): Promise<HttpResponse<T>> {
      const now = Date.now();
      const catalog = Object.entries({ volumev3: volume, compute }).map(([type, url]) => ({ type, endpoints: [{ interface: 'public', region_id: 'RegionOne', url }] }));
      const token = { expires_at: new Date(now + 3_600_000).toISOString(), issued_at: new Date(now).toISOString(), project: { id: 'p1' }, catalog };
      return { status: 201, headers: { 'x-subject-token': `t-${now}` }, body: { token } as T };
    },
  });

  it('an http:// auth URL: one warning when the cloud is made, naming it', async () => {
    const log = captureLog();
    await createCloud(config('http://keystone.example.com:5000/v3'), log.logger).close();
    const [w, ...more] = warnings(log);
    assert.match(String(w?.msg), /auth_url is plain http:\/\/: the credentials, every token and the service catalog travel unencrypted/);
    assert.equal(w?.authUrl, 'http://keystone.example.com:5000/v3');
    assert.deepEqual(more, []);
  });

  it('an http:// catalog endpoint: one warning per endpoint, however often the driver authenticates', async () => {
    const log = captureLog();
    const id = new Identity(config('https://keystone.example.com/v3'), keystone('http://cinder.example.com:8776/v3/p1', 'https://nova.example.com/v2.1') as unknown as HttpClient, log.logger);
    for (let i = 0; i < 3; i++) {
      const { token } = await id.auth();
      id.invalidate(token);
    }
    const [w, ...more] = warnings(log);
    assert.match(String(w?.msg), /the volume endpoint is plain http:\/\/: the token sent with every request travels unencrypted/);
    assert.equal(w?.endpoint, 'http://cinder.example.com:8776/v3/p1');
    assert.deepEqual(more, []);
  });

  it('loopback and https:// are never warned about', async () => {
    const log = captureLog();
    const id = new Identity(config('http://127.0.0.1:5000/v3'), keystone('http://127.0.0.1:8776/v3/p1', 'https://nova.example.com/v2.1') as unknown as HttpClient, log.logger);
    await id.auth();
    assert.deepEqual(warnings(log), []);
  });

  it('a cloud on the simulator (loopback) logs no warning at all', async () => {
    const sim = await startSimulator({ hypervisor: false });
    const log = captureLog();
    const cloud = createCloud(sim.cloudConfig(), log.logger);
    try {
      await cloud.blockStorage.listVolumes({ limit: 1 });
      await cloud.compute.getServer(sim.instances[0]!.id);
      assert.deepEqual(warnings(log), []);
    } finally {
      await cloud.close();
      await sim.stop();
    }
  });
});

describe('the TLS-off warning', () => {
  const HINT = 'verify_peer: true, with verify_ca_path naming the CA file';

  it('names the setting of the config that turned verification off, once, at the first https:// request', async () => {
    const sim = await startSimulator({ hypervisor: false, tls: true });
    const log = captureLog();
    const http = new HttpClient({ tls: { verify: false, verifyHint: HINT }, requestTimeoutMs: 5_000, logger: log.logger });
    try {
      assert.deepEqual(warnings(log), [], 'nothing before a request');
      for (let i = 0; i < 3; i++) await http.request({ method: 'GET', url: `${sim.url}/identity/v3`, okStatuses: [200, 300] });
      const [w, ...more] = warnings(log);
      assert.equal(w?.msg, `TLS certificate verification is OFF for this cloud: anyone on the network path can read the credentials. Turn it on (${HINT}) instead.`);
      assert.deepEqual(more, []);
    } finally {
      await http.close();
      await sim.stop();
    }
  });

  it('says nothing while every request is plain http:// (TLS is moot; the http:// warning covers it)', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const log = captureLog();
    const http = new HttpClient({ tls: { verify: false, verifyHint: HINT }, requestTimeoutMs: 5_000, logger: log.logger });
    try {
      await http.request({ method: 'GET', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
      assert.deepEqual(warnings(log), []);
    } finally {
      await http.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
