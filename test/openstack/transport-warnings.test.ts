// What the driver warns about how it reaches the cloud: TLS verification
// turned off, in the words of the config that turned it off, only where TLS
// is used at all.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { HttpClient } from '../../src/openstack/http';
import { startSimulator } from '../../src/sim';
import { captureLog } from '../helpers/server';

const warnings = (log: ReturnType<typeof captureLog>) => log.lines().filter((l) => l.level === 'warn');

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
