// The Identity service (issue 2, item 5) over real gRPC: who we are, what we
// offer (the controller only when it runs), and readiness from cached state,
// answered at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { loadCsi } from '../../src/csi/proto';
import type { Handler } from '../../src/csi/context';
import { DEFAULT_DRIVER_NAME } from '../../src/csi/constants';
import { createIdentityService, type IdentityOptions, type Readiness } from '../../src/identity/service';
import { call } from '../helpers/grpc';
import { startTestServer, type TestServer } from '../helpers/server';

const PACKAGE_VERSION: string = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version;

async function identityServer(opts: Partial<IdentityOptions>): Promise<TestServer> {
  const service = createIdentityService({
    driverName: DEFAULT_DRIVER_NAME,
    vendorVersion: PACKAGE_VERSION,
    controller: true,
    topology: true,
    onlineExpansion: () => true,
    readiness: () => ({ ready: true }),
    ...opts,
  });
  return startTestServer([
    { definition: loadCsi().csi.v1.Identity.service, handlers: service as unknown as Record<string, Handler<any, any>>, name: 'Identity' },
  ]);
}

let readiness: Readiness = { ready: false, reason: 'cloud default not authenticated yet' };
let online = true;
let controllerSrv: TestServer;
let nodeSrv: TestServer;

before(async () => {
  controllerSrv = await identityServer({ controller: true, readiness: () => readiness, onlineExpansion: () => online });
  nodeSrv = await identityServer({ controller: false, driverName: 'cinder.example.org' });
});
after(async () => {
  await controllerSrv.stop();
  await nodeSrv.stop();
});

test("GetPluginInfo names the driver and reports package.json's version", async () => {
  assert.equal(DEFAULT_DRIVER_NAME, 'cinder.csi.openstack.org', "the Go plugin's name, so its PersistentVolumes keep working");
  const info = await call(controllerSrv.clients.identity, 'GetPluginInfo', {});
  assert.equal(info.name, 'cinder.csi.openstack.org');
  assert.equal(info.vendor_version, PACKAGE_VERSION);
  assert.match(info.vendor_version, /^\d+\.\d+\.\d+/);
  const custom = await call(nodeSrv.clients.identity, 'GetPluginInfo', {});
  assert.equal(custom.name, 'cinder.example.org', 'the name is configurable');
});

/** Capabilities as short strings: 'service:X' or 'expansion:Y'. */
function names(res: { capabilities: Array<{ service?: { type: string }; volume_expansion?: { type: string } }> }): string[] {
  return res.capabilities.map((c) => (c.service ? `service:${c.service.type}` : `expansion:${c.volume_expansion?.type}`));
}

test('GetPluginCapabilities offers the controller service only when the controller runs', async () => {
  online = true;
  assert.deepEqual(names(await call(controllerSrv.clients.identity, 'GetPluginCapabilities', {})), [
    'service:CONTROLLER_SERVICE',
    'service:VOLUME_ACCESSIBILITY_CONSTRAINTS',
    'expansion:ONLINE',
  ]);
  assert.deepEqual(names(await call(nodeSrv.clients.identity, 'GetPluginCapabilities', {})), [
    'service:VOLUME_ACCESSIBILITY_CONSTRAINTS',
    'expansion:ONLINE',
  ]);
});

test('with topology off, GetPluginCapabilities does not offer VOLUME_ACCESSIBILITY_CONSTRAINTS', async () => {
  // The external-provisioner asks for a zone key on the chosen node's CSINode
  // whenever this capability is offered ("no topology key found on CSINode"
  // with WaitForFirstConsumer); `topology: false` is for nodes without one.
  for (const controller of [true, false]) {
    const srv = await identityServer({ controller, topology: false });
    try {
      const caps = names(await call(srv.clients.identity, 'GetPluginCapabilities', {}));
      assert.ok(!caps.includes('service:VOLUME_ACCESSIBILITY_CONSTRAINTS'), `controller=${controller}: ${caps.join(', ')}`);
      assert.equal(caps.includes('service:CONTROLLER_SERVICE'), controller);
      assert.ok(caps.includes('expansion:ONLINE'));
    } finally {
      await srv.stop();
    }
  }
});

test('GetPluginCapabilities offers offline expansion when the cloud cannot extend in-use volumes', async () => {
  online = false;
  try {
    const caps = names(await call(controllerSrv.clients.identity, 'GetPluginCapabilities', {}));
    assert.ok(caps.includes('expansion:OFFLINE'));
    assert.ok(!caps.includes('expansion:ONLINE'));
  } finally {
    online = true;
  }
});

test('Probe reports readiness from the readiness function, and why not in the log', async () => {
  readiness = { ready: false, reason: 'cloud default not authenticated yet' };
  assert.deepEqual(await call(controllerSrv.clients.identity, 'Probe', {}), { ready: { value: false } });
  const line = controllerSrv.log.lines().find((l) => l.method === 'Probe' && l.code === 'OK');
  assert.equal(line?.not_ready, 'cloud default not authenticated yet');
  // The info line must not read "OK" when the answer is "not ready".
  assert.equal(line?.msg, 'Probe: not ready');
  assert.equal(line?.level, 'info');

  readiness = { ready: true };
  assert.deepEqual(await call(controllerSrv.clients.identity, 'Probe', {}), { ready: { value: true } });
});

test('Probe answers at once, well within a short deadline, many times over', async () => {
  // The readiness function reads cached state; nothing in Probe waits. The
  // bounds are loose so that a busy CI machine does not fail the test, but a
  // Probe that waited on OpenStack (seconds) would.
  readiness = { ready: false, reason: 'still waiting for Keystone' };
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 20 }, () => call(controllerSrv.clients.identity, 'Probe', {}, { deadlineMs: 2000 })));
  const took = Date.now() - started;
  for (const a of answers) assert.deepEqual(a, { ready: { value: false } });
  assert.ok(took < 2000, `20 probes took ${took} ms`);
  const probeLines = controllerSrv.log.lines().filter((l) => l.method === 'Probe' && l.not_ready === 'still waiting for Keystone');
  assert.equal(probeLines.length, 20);
  for (const l of probeLines) assert.ok((l.duration_ms as number) < 250, `Probe took ${l.duration_ms} ms in the driver`);
});
