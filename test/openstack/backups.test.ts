// BlockStorage.createBackup where Cinder's microversion decides what a backup
// request may carry: a zone for the copy only from 3.51, and a zone that
// cannot be honoured is refused rather than dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator } from '../../src/sim';
import { createCloud } from '../../src/openstack/cloud';
import { isOpenStackError } from '../../src/openstack/errors';
import { silentLogger } from '../../src/log';

for (const [maxMicroversion, zoneHonoured] of [['3.50', false], ['3.51', true]] as const) {
  test(`Cinder ${maxMicroversion}: a backup in availability zone 'nova' is ${zoneHonoured ? 'made there' : 'refused, and none is made'}`, async (t) => {
    const sim = await startSimulator({ hypervisor: false, maxMicroversion, durations: { create: 5, backup: 5 } });
    const cloud = createCloud(sim.cloudConfig(), silentLogger);
    t.after(async () => {
      await cloud.close();
      await sim.stop();
    });
    const volume = await cloud.blockStorage.createVolume({ name: 'source', size: 1 });
    await cloud.waiter.volume(volume.id, { target: ['available'], transient: ['creating'] });
    const made = cloud.blockStorage.createBackup({ volumeId: volume.id, name: 'copy', availabilityZone: 'nova' });
    if (zoneHonoured) {
      // Cinder's create answer holds only the ID and name; the record has the zone.
      assert.equal((await cloud.blockStorage.getBackup((await made).id)).availabilityZone, 'nova');
      return;
    }
    await assert.rejects(made, (e) => isOpenStackError(e, 'config') && /cannot place a backup in availability zone 'nova': that needs microversion 3\.51/.test(e.message));
    assert.deepEqual((await cloud.blockStorage.listBackups({})).items, []);
    // Without a zone the same Cinder makes it.
    assert.equal((await cloud.blockStorage.createBackup({ volumeId: volume.id, name: 'copy' })).name, 'copy');
  });
}
