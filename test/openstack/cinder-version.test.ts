// Choosing the Cinder API against a live (simulated) Cinder: what a forced
// version does when Cinder does not offer it, and when the version document
// can be read at all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import { isOpenStackError } from '../../src/openstack/errors';
import { startSimulator, type Simulator } from '../../src/sim';
import type { Cloud, CloudConfig } from '../../src/openstack/types';

const durations = { create: 5, delete: 5 };
/** The unversioned root, where Cinder serves its version document. */
const ROOT = '^/volume/?$';

describe('a forced Cinder API version', () => {
  let sim: Simulator;
  const clouds: Cloud[] = [];
  const open = (overrides: Partial<CloudConfig>) => {
    const c = createCloud(sim.cloudConfig(overrides), silentLogger);
    clouds.push(c);
    return c;
  };
  before(async () => {
    // A Cinder from Xena on: v3 only.
    sim = await startSimulator({ hypervisor: false, durations, cinderVersions: ['v3'] });
  });
  after(async () => {
    for (const c of clouds) await c.close();
    await sim.stop();
  });

  it('that Cinder does not offer fails every call, naming the setting and what Cinder offers', async () => {
    const cloud = open({ blockStorageApiVersion: '2' });
    await assert.rejects(cloud.blockStorage.features(), (e) => {
      assert.ok(isOpenStackError(e, 'config'), String(e));
      assert.match(e.message, /block_storage_api_version \(volume_api_version in clouds\.yaml\) forces Cinder API v2/);
      assert.match(e.message, /it offers v3\.0 \(CURRENT\)/);
      return true;
    });
  });

  it('never makes a delete of a volume that exists look like success', async () => {
    const good = open({});
    const v = await good.blockStorage.createVolume({ name: 'forced-v2-delete', size: 1 });
    const forced = open({ blockStorageApiVersion: '2' });
    await assert.rejects(forced.blockStorage.deleteVolume(v.id), (e) => isOpenStackError(e, 'config'));
    assert.equal((await good.blockStorage.getVolume(v.id)).id, v.id, 'the volume is still there');
  });

  it('that Cinder offers is used', async () => {
    const cloud = open({ blockStorageApiVersion: '3' });
    assert.equal((await cloud.blockStorage.features()).apiVersion, '3');
  });

  it('is trusted when the version document cannot be read at all', async () => {
    const only2 = await startSimulator({ hypervisor: false, durations, cinderVersions: ['v2'] });
    const cloud = createCloud(only2.cloudConfig({ blockStorageApiVersion: '2' }), silentLogger);
    try {
      only2.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, status: 404, times: Infinity });
      const f = await cloud.blockStorage.features();
      assert.equal(f.apiVersion, '2');
      assert.deepEqual((await cloud.blockStorage.listVolumes({})).items, []);
    } finally {
      await cloud.close();
      await only2.stop();
    }
  });
});

describe('reading the version document', () => {
  let sim: Simulator;
  const clouds: Cloud[] = [];
  const open = () => {
    const c = createCloud(sim.cloudConfig(), silentLogger);
    clouds.push(c);
    return c;
  };
  const rootReads = () => Object.entries(sim.control.counters()).filter(([k]) => /^GET \/volume\/?$/.test(k)).reduce((n, [, v]) => n + v, 0);
  before(async () => {
    sim = await startSimulator({ hypervisor: false, durations });
  });
  after(async () => {
    for (const c of clouds) await c.close();
    await sim.stop();
  });

  it('retries a failed read, so one 503 does not cost the microversion', async () => {
    sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, status: 503 });
    const f = await open().blockStorage.features();
    assert.equal(f.microversion, '3.60');
    assert.equal(f.inUseExtend, true);
  });

  it('keeps no answer from a read that kept failing: the next call reads the document again', async () => {
    sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, status: 503, times: Infinity });
    const cloud = open();
    try {
      await assert.rejects(cloud.blockStorage.features(), (e) => isOpenStackError(e, 'unavailable'));
    } finally {
      sim.control.clearFaults();
    }
    const f = await cloud.blockStorage.features();
    assert.equal(f.microversion, '3.60');
    assert.equal(f.volumeFromBackup, true);
  });

  // A proxy that hides the root answers with its own page: a 404 that is not Cinder's (kind config, not not_found).
  for (const [what, body] of [
    ["Cinder's itemNotFound", undefined],
    ["a proxy's HTML page", '<html><body><h1>404 Not Found</h1></body></html>'],
  ] as const) {
    it(`takes a 404 at the root (${what}) for "no document": the catalog names the API, and the root is not asked again`, async () => {
      sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, status: 404, body, times: Infinity });
      sim.control.resetCounters();
      const cloud = open();
      try {
        assert.deepEqual(await cloud.blockStorage.features().then((f) => [f.apiVersion, f.microversion]), ['3', '3.0']);
        await cloud.blockStorage.listVolumes({ limit: 1 });
        assert.equal(rootReads(), 1);
      } finally {
        sim.control.clearFaults();
      }
    });
  }
});

describe('callers sharing one detection', () => {
  it('a caller whose deadline passes fails alone; the others get the answer', async (t) => {
    const sim = await startSimulator({ hypervisor: false, durations });
    const cloud = createCloud(sim.cloudConfig(), silentLogger);
    t.after(async () => {
      await cloud.close();
      await sim.stop();
    });
    await cloud.authenticate();
    sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, delayMs: 300 });
    const impatient = cloud.blockStorage.features({ signal: AbortSignal.timeout(50) });
    const patient = cloud.blockStorage.features();
    await assert.rejects(impatient, (e) => isOpenStackError(e, 'timeout') && /waiting for the Cinder version document/.test(e.message));
    assert.equal((await patient).microversion, '3.60');
  });
});
