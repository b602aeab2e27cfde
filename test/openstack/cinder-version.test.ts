// Choosing the Cinder API against a live (simulated) Cinder: what a forced
// version does when Cinder does not offer it, where the version document is
// read (the root, else the versioned endpoint), and what happens when none
// can be read at all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { REDETECT_AFTER_FALLBACK_MS } from '../../src/openstack/cinder';
import { createCloud } from '../../src/openstack/cloud';
import { isOpenStackError } from '../../src/openstack/errors';
import { startSimulator, type Simulator } from '../../src/sim';
import type { Cloud, CloudConfig } from '../../src/openstack/types';
import { captureLog } from '../helpers/server';

const durations = { create: 5, delete: 5 };
/** The unversioned root, where Cinder serves its version document. */
const ROOT = '^/volume/?$';
/** The versioned endpoint, which serves the v3 entry of the same document (to a token). */
const V3 = '^/volume/v3/?$';
const ROOT_KEY = /^GET \/volume\/?$/;
const V3_KEY = /^GET \/volume\/v3\/?$/;

/** Until the background detection has done what `done` checks. */
async function until(done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail('the background detection did not get there');
}

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
  const reads = (key: RegExp) => Object.entries(sim.control.counters()).filter(([k]) => key.test(k)).reduce((n, [, v]) => n + v, 0);
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

  // A load balancer that routes only /v3/..., or a cloud that hides the root: its own 404 page, or 401/403.
  for (const [what, status, body] of [
    ["Cinder's itemNotFound", 404, undefined],
    ["a proxy's HTML page", 404, '<html><body><h1>404 Not Found</h1></body></html>'],
    ['401', 401, undefined],
    ['403', 403, undefined],
  ] as const) {
    it(`reads the versioned endpoint's document (GET /v3/) when the root answers ${what}: the microversion is kept`, async () => {
      sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: ROOT, status, body, times: Infinity });
      sim.control.resetCounters();
      const log = captureLog();
      const cloud = createCloud(sim.cloudConfig(), log.logger);
      clouds.push(cloud);
      try {
        const f = await cloud.blockStorage.features();
        assert.deepEqual([f.apiVersion, f.microversion, f.inUseExtend, f.volumeFromBackup], ['3', '3.60', true, true]);
        await cloud.blockStorage.listVolumes({ limit: 1 });
        assert.deepEqual([reads(ROOT_KEY), reads(V3_KEY)], [1, 1]);
        assert.deepEqual(log.lines().filter((l) => l.level === 'warn'), []);
      } finally {
        sim.control.clearFaults();
      }
    });
  }
});

describe('when no version document can be read', () => {
  // A path-routing load balancer in front of both: its own 404 page at the root and at /v3/.
  const page = '<html><body><h1>404 Not Found</h1></body></html>';
  const hideDocuments = (sim: Simulator) => {
    for (const pathPattern of [ROOT, V3]) sim.control.addFault({ service: 'volume', method: 'GET', pathPattern, status: 404, body: page, times: Infinity });
  };

  it(`uses v3 at 3.0, warns once, and reads the document again every ${REDETECT_AFTER_FALLBACK_MS / 60_000} minutes until it gets it`, async (t) => {
    const sim = await startSimulator({ hypervisor: false, durations });
    const log = captureLog('debug');
    const cloud = createCloud(sim.cloudConfig(), log.logger);
    t.after(async () => {
      await cloud.close();
      await sim.stop();
    });
    const T0 = Date.now();
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    const reads = () => Object.entries(sim.control.counters()).filter(([k]) => /^GET \/volume(\/v3)?\/?$/.test(k)).reduce((n, [, v]) => n + v, 0);
    const fallbackWarnings = () => log.lines().filter((l) => l.level === 'warn' && /version document could not be read/.test(String(l.msg)));
    hideDocuments(sim);

    const f = await cloud.blockStorage.features();
    assert.deepEqual([f.apiVersion, f.microversion, f.inUseExtend, f.volumeFromBackup], ['3', '3.0', false, false]);
    const [warning, ...more] = fallbackWarnings();
    assert.match(String(warning?.msg), /uses the API the catalog URL names, v3 at its base microversion 3\.0: extending in-use volumes \(3\.42\), volumes from backups \(3\.47\) and deleting attachment records \(3\.27\) are off; it reads the document again every 5 minutes/);
    assert.match(String(warning?.why), /\/volume\/ answered 404; .*\/volume\/v3\/ answered 404/);
    assert.deepEqual(more, []);
    assert.equal(reads(), 2, 'the root and /v3/');

    // Not before the time; then in the background, the fallback serving meanwhile; still hidden: no second warning.
    t.mock.timers.setTime(T0 + REDETECT_AFTER_FALLBACK_MS - 1_000);
    await cloud.blockStorage.listVolumes({ limit: 1 });
    assert.equal(reads(), 2);
    t.mock.timers.setTime(T0 + REDETECT_AFTER_FALLBACK_MS);
    assert.equal((await cloud.blockStorage.features()).microversion, '3.0');
    await until(() => reads() === 4);
    await until(() => log.lines().some((l) => l.level === 'debug' && /version document could not be read/.test(String(l.msg))));
    assert.equal(fallbackWarnings().length, 1, 'warned once');

    // The load balancer fixed: the next detection reads the document, and the features come back without a restart.
    sim.control.clearFaults();
    t.mock.timers.setTime(T0 + 2 * REDETECT_AFTER_FALLBACK_MS);
    await cloud.blockStorage.listVolumes({ limit: 1 });
    await until(async () => (await cloud.blockStorage.features()).microversion === '3.60');
    const after = reads();
    t.mock.timers.setTime(T0 + 10 * REDETECT_AFTER_FALLBACK_MS);
    await cloud.blockStorage.listVolumes({ limit: 1 });
    assert.equal(reads(), after, 'a document read is kept');
  });

  it('a forced v2 needs no document: no warning, nothing read again', async () => {
    const only2 = await startSimulator({ hypervisor: false, durations, cinderVersions: ['v2'] });
    const log = captureLog();
    const cloud = createCloud(only2.cloudConfig({ blockStorageApiVersion: '2' }), log.logger);
    try {
      hideDocuments(only2);
      only2.control.resetCounters();
      assert.equal((await cloud.blockStorage.features()).apiVersion, '2');
      assert.deepEqual(log.lines().filter((l) => l.level === 'warn'), []);
      assert.deepEqual(Object.keys(only2.control.counters()).filter((k) => /^GET (\/volume\/v3|\(unmatched\))/.test(k)), [], '/v3/ is not asked');
    } finally {
      await cloud.close();
      await only2.stop();
    }
  });
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
