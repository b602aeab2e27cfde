// BlockStorage.listVolumeMessages: Cinder's user messages about one volume,
// newest first, never another volume's, whether the cloud filters them
// (3.5+) or lists the whole project's (3.3, 3.4); nothing before 3.3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator } from '../../src/sim';
import { createCloud } from '../../src/openstack/cloud';
import { silentLogger } from '../../src/log';

for (const maxMicroversion of ['3.4', '3.70']) {
  test(`Cinder ${maxMicroversion}: only the volume's own messages`, async (t) => {
    const sim = await startSimulator({ hypervisor: false, maxMicroversion, durations: { create: 10, delete: 10 } });
    const cloud = createCloud(sim.cloudConfig(), silentLogger);
    t.after(async () => {
      await cloud.close();
      await sim.stop();
    });
    const failed = async (name: string) => {
      const v = await cloud.blockStorage.createVolume({ name, size: 1, volumeType: 'no-backend' });
      await cloud.waiter.volume(v.id, { target: ['error'], transient: ['creating'] });
      return v.id;
    };
    const a = await failed('a');
    const b = await failed('b');
    // The scheduler writes its message just after the status; wait for both.
    for (let i = 0; i < 100 && (await cloud.blockStorage.listVolumeMessages(b)).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const aboutA = await cloud.blockStorage.listVolumeMessages(a);
    assert.equal(aboutA.length, 1);
    assert.equal(aboutA[0].resourceUuid, a);
    assert.equal(aboutA[0].eventId, 'VOLUME_VOLUME_001_003');
    assert.equal(aboutA[0].userMessage, 'schedule allocate volume: Could not find any available weighted backend.');
    assert.deepEqual((await cloud.blockStorage.listVolumeMessages(b)).map((m) => m.resourceUuid), [b]);
  });
}

test('Cinder 3.2: no message API, an empty answer without asking', async (t) => {
  const sim = await startSimulator({ hypervisor: false, maxMicroversion: '3.2' });
  const cloud = createCloud(sim.cloudConfig(), silentLogger);
  t.after(async () => {
    await cloud.close();
    await sim.stop();
  });
  assert.equal((await cloud.blockStorage.features()).userMessages, false);
  sim.control.resetCounters();
  assert.deepEqual(await cloud.blockStorage.listVolumeMessages('3f5c1d9e-0a6b-4c1e-9d2f-7b8a9c0d1e2f'), []);
  assert.deepEqual(Object.keys(sim.control.counters()).filter((k) => k.includes('/messages')), []);
});
