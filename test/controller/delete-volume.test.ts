import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNotFound } from '../../src/openstack/errors';
import { Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('DeleteVolume', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController();
  });
  after(() => h.stop());

  const gone = (id: string) => h.cloud.blockStorage.getVolume(id).then(() => false, (e) => isNotFound(e));

  it('deletes the volume and returns only once Cinder no longer has it', async () => {
    h.driver.sim.control.setDurations({ delete: 300 });
    try {
      const id = await h.createVolume('pvc-delete-me');
      await h.rpc('DeleteVolume', { volume_id: id });
      assert.equal(await gone(id), true);
    } finally {
      h.driver.sim.control.setDurations({ delete: 50 });
    }
  });

  // Cinder's volume manager on VolumeIsBusy (Ceph RBD's ImageBusy): the volume is put back to 'available'.
  it('answers FAILED_PRECONDITION at once when the backend refuses the delete as busy; the retry deletes', async () => {
    const id = await h.createVolume('pvc-delete-busy');
    h.driver.sim.control.failDeletes(1);
    // Not DEADLINE_EXCEEDED: the volume is 'available' again, nothing is deleting it.
    const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }, 10_000), Code.FAILED_PRECONDITION);
    assert.match(err.details, /Cinder's backend refused to delete volume .* as busy and put it back to 'available'/);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.equal(await gone(id), true);
  });

  it('succeeds for an unknown volume and for a second delete', async () => {
    await h.rpc('DeleteVolume', { volume_id: '00000000-0000-4000-8000-000000000000' });
    const id = await h.createVolume('pvc-delete-twice');
    await h.rpc('DeleteVolume', { volume_id: id });
    await h.rpc('DeleteVolume', { volume_id: id });
  });

  it('requires volume_id', async () => {
    await expectCode(h.rpc('DeleteVolume', {}), Code.INVALID_ARGUMENT);
  });

  it('refuses an attached volume with FAILED_PRECONDITION naming the server', async () => {
    const id = await h.createVolume('pvc-delete-attached');
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO });
    const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(node));
    assert.equal(await gone(id), false);
    await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.equal(await gone(id), true);
  });

  it('refuses a volume that still has snapshots, saying so', async () => {
    const id = await h.createVolume('pvc-delete-with-snap');
    const snap = await h.rpc('CreateSnapshot', { name: 'snap-blocks-delete', source_volume_id: id });
    const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }), Code.FAILED_PRECONDITION);
    assert.match(err.details, /snapshot/i);
    await h.rpc('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.equal(await gone(id), true);
  });

  it('a volume an earlier delete left in error_deleting: FAILED_PRECONDITION saying to reset its state, not to delete snapshots', async () => {
    const id = await h.createVolume('pvc-error-deleting');
    h.driver.sim.control.setVolumeStatus(id, 'error_deleting');
    const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(`status 'error_deleting'.*'openstack volume set --state error ${id}'`));
    h.driver.sim.control.setVolumeStatus(id, 'error');
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.equal(await gone(id), true);
  });

  it('answers ABORTED while Cinder is still working on the volume', async () => {
    h.driver.sim.control.setDurations({ extend: 2000 });
    try {
      const id = await h.createVolume('pvc-delete-busy');
      await h.cloud.blockStorage.extendVolume(id, 2);
      const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }), Code.ABORTED);
      assert.match(err.details, /extending/);
    } finally {
      h.driver.sim.control.setDurations({ extend: 50 });
    }
  });
});
