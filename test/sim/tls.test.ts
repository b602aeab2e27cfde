import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import yaml from 'js-yaml';
import { Agent } from 'undici';
import { runSimCommand, startSimulator, type Simulator } from '../../src/sim';
import { silentLogger } from '../../src/log';
import { readMetadataService } from '../../src/openstack/metadata';
import { call, login } from './helpers';

describe('sim over HTTPS', () => {
  let sim: Simulator;
  let trusting: Agent;
  before(async () => {
    sim = await startSimulator({ hypervisor: false, tls: true });
    trusting = new Agent({ connect: { ca: await readFile(sim.caFile!) } });
  });
  after(async () => {
    await trusting.close();
    await sim.stop();
  });

  it('serves https with a certificate the exposed CA verifies', async () => {
    assert.match(sim.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const s = await login(sim, trusting);
    assert.ok(s.volume.startsWith('https://'));
    const r = await call('GET', `${s.volume}/types`, { token: s.token, dispatcher: trusting });
    assert.equal(r.status, 200);
  });

  it('a client without the CA refuses the certificate; one that does not verify gets through', async () => {
    const strict = new Agent();
    const insecure = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      await assert.rejects(call('GET', `${sim.url}/volume/`, { dispatcher: strict }), /certificate|self[- ]signed|verify/i);
      assert.equal((await call('GET', `${sim.url}/volume/`, { dispatcher: insecure })).status, 300);
    } finally {
      await strict.close();
      await insecure.close();
    }
  });

  it('serves the metadata service in plain HTTP, as a cloud does, on a listener that serves nothing else', async () => {
    const inst = sim.instances[0]!;
    assert.match(inst.metadataUrl, /^http:\/\/127\.0\.0\.1:\d+\/metadata\//);
    const md = await call('GET', `${inst.metadataUrl}/openstack/latest/meta_data.json`);
    assert.equal(md.status, 200);
    assert.equal(md.body.uuid, inst.id);
    // The driver's own reader, which refuses https there, gets the identity.
    const identity = await readMetadataService(inst.metadataUrl, 2000, 1, silentLogger);
    assert.equal(identity.instanceId, inst.id);
    const plain = new URL(inst.metadataUrl).origin;
    assert.equal((await call('GET', `${plain}/volume/`)).status, 404);
    assert.equal((await call('GET', `${plain}/identity/v3`)).status, 404);
  });

  it('cloudConfig carries the CA and the password credentials', () => {
    const cfg = sim.cloudConfig({ requestTimeoutMs: 5000 });
    assert.equal(cfg.tls.caFile, sim.caFile);
    assert.equal(cfg.tls.verify, true);
    assert.equal(cfg.auth.authUrl, sim.authUrl);
    assert.equal(cfg.auth.password, sim.credentials.password);
    assert.equal(cfg.requestTimeoutMs, 5000);
  });
});

describe('runSimCommand', () => {
  it('listens where asked and writes openrc and clouds.yaml for the sim cloud', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sim-cmd-'));
    let sim: Simulator | undefined;
    try {
      sim = await runSimCommand({ listen: '127.0.0.1:0', stateDir: dir, tls: true, logger: silentLogger });
      const openrc = await readFile(path.join(dir, 'openrc'), 'utf8');
      assert.match(openrc, new RegExp(`export OS_AUTH_URL='${sim.authUrl}'`));
      assert.match(openrc, new RegExp(`export OS_PASSWORD='${sim.credentials.password}'`));
      assert.match(openrc, new RegExp(`export OS_CACERT='${sim.caFile}'`));
      assert.equal((await stat(path.join(dir, 'openrc'))).mode & 0o777, 0o600);
      const clouds = yaml.load(await readFile(path.join(dir, 'clouds.yaml'), 'utf8')) as { clouds: Record<string, { auth: Record<string, string>; region_name: string; cacert: string }> };
      assert.equal(clouds.clouds.sim.auth.auth_url, sim.authUrl);
      assert.equal(clouds.clouds.sim.auth.project_id, sim.credentials.projectId);
      assert.equal(clouds.clouds.sim.region_name, 'RegionOne');
      assert.equal(clouds.clouds.sim.cacert, sim.caFile);
    } finally {
      await sim?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a non-loopback address', async () => {
    await assert.rejects(runSimCommand({ listen: '0.0.0.0:0', logger: silentLogger }), /loopback/);
  });
});
