import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_RWO, BLOCK_RWX, Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('ValidateVolumeCapabilities and ControllerGetVolume', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController();
  });
  after(() => h.stop());

  it('confirms what the volume supports and explains what it does not', async () => {
    const single = await h.createVolume('pvc-validate');
    const ok = await h.rpc('ValidateVolumeCapabilities', { volume_id: single, volume_capabilities: [MOUNT_RWO, BLOCK_RWO], parameters: { type: '__DEFAULT__' } });
    assert.equal(ok.confirmed.volume_capabilities.length, 2);
    assert.deepEqual(ok.confirmed.parameters, { type: '__DEFAULT__' });

    const rwx = await h.rpc('ValidateVolumeCapabilities', { volume_id: single, volume_capabilities: [MOUNT_RWO, BLOCK_RWX] });
    assert.equal(rwx.confirmed, null);
    assert.match(rwx.message, /multiattach/);

    const ntfs = await h.rpc('ValidateVolumeCapabilities', { volume_id: single, volume_capabilities: [{ mount: { fs_type: 'ntfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] });
    assert.equal(ntfs.confirmed, null);
    assert.match(ntfs.message, /fs_type "ntfs" is not supported/);

    const badParam = await h.rpc('ValidateVolumeCapabilities', { volume_id: single, volume_capabilities: [MOUNT_RWO], parameters: { colour: 'blue' } });
    assert.equal(badParam.confirmed, null);
    assert.match(badParam.message, /'colour'/);

    const multi = await h.createVolume('pvc-validate-multi', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    const multiOk = await h.rpc('ValidateVolumeCapabilities', { volume_id: multi, volume_capabilities: [BLOCK_RWX] });
    assert.ok(multiOk.confirmed);
    const multiFs = await h.rpc('ValidateVolumeCapabilities', { volume_id: multi, volume_capabilities: [{ mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }] });
    assert.equal(multiFs.confirmed, null);
  });

  it('answers NOT_FOUND for an unknown volume and INVALID_ARGUMENT for missing fields', async () => {
    await expectCode(h.rpc('ValidateVolumeCapabilities', { volume_id: '00000000-0000-4000-8000-000000000000', volume_capabilities: [MOUNT_RWO] }), Code.NOT_FOUND);
    await expectCode(h.rpc('ValidateVolumeCapabilities', { volume_capabilities: [MOUNT_RWO] }), Code.INVALID_ARGUMENT);
    const id = await h.createVolume('pvc-validate-nocaps');
    await expectCode(h.rpc('ValidateVolumeCapabilities', { volume_id: id }), Code.INVALID_ARGUMENT);
  });

  it('reports the published nodes and a normal condition', async () => {
    const id = await h.createVolume('pvc-get', { capacity_range: { required_bytes: 2 * GiB } });
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO });
    try {
      const res = await h.rpc('ControllerGetVolume', { volume_id: id });
      assert.equal(res.volume.volume_id, id);
      assert.equal(Number(res.volume.capacity_bytes), 2 * GiB);
      assert.deepEqual(res.status.published_node_ids, [node]);
      assert.equal(res.status.volume_condition.abnormal, false);
    } finally {
      await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    }
    const after = await h.rpc('ControllerGetVolume', { volume_id: id });
    assert.deepEqual(after.status.published_node_ids, []);
  });

  it('reports an abnormal condition with the reason when Cinder shows an error state', async () => {
    const id = await h.createVolume('pvc-get-broken');
    h.driver.sim.control.setVolumeStatus(id, 'error_extending');
    const res = await h.rpc('ControllerGetVolume', { volume_id: id });
    assert.equal(res.status.volume_condition.abnormal, true);
    assert.match(res.status.volume_condition.message, /error_extending/);
    h.driver.sim.control.setVolumeStatus(id, 'available');
  });

  it('answers NOT_FOUND for an unknown volume', async () => {
    await expectCode(h.rpc('ControllerGetVolume', { volume_id: '00000000-0000-4000-8000-000000000000' }), Code.NOT_FOUND);
    await expectCode(h.rpc('ControllerGetVolume', {}), Code.INVALID_ARGUMENT);
  });
});
