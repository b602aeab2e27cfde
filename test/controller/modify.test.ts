import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code, expectCode, startController, type ControllerHarness } from './harness';

describe('ControllerModifyVolume', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { volumeTypes: [{ name: '__DEFAULT__' }, { name: 'fast' }, { name: 'multiattach', extraSpecs: { multiattach: '<is> True' } }, { name: 'no-backend', extraSpecs: { volume_backend_name: 'no-such-backend' } }] } });
  });
  after(() => h.stop());

  const modify = (volumeId: string, mutable: Record<string, string>) =>
    h.rpc('ControllerModifyVolume', { volume_id: volumeId, mutable_parameters: mutable });

  it('retypes the volume and waits until Cinder shows the new type; the same call again is a no-op', async () => {
    h.driver.sim.control.setDurations({ retype: 300 });
    try {
      const id = await h.createVolume('pvc-retype');
      assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, '__DEFAULT__');
      await modify(id, { type: 'fast' });
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.volumeType, 'fast');
      assert.equal(v.status, 'available');
      h.driver.sim.control.resetCounters();
      await modify(id, { type: 'fast' });
      const actions = Object.keys(h.driver.sim.control.counters()).filter((route) => route.startsWith('POST') && route.includes('/action'));
      assert.deepEqual(actions, []);
    } finally {
      h.driver.sim.control.setDurations({ retype: 50 });
    }
  });

  // The resizer retries ABORTED until it succeeds, which for an error state is never.
  it('answers FAILED_PRECONDITION for a volume in an error state, saying to repair or reset it; ABORTED only while Cinder is busy with it', async () => {
    const id = await h.createVolume('pvc-retype-error');
    try {
      for (const status of ['error', 'error_extending']) {
        h.driver.sim.control.setVolumeStatus(id, status);
        const err = await expectCode(modify(id, { type: 'fast' }), Code.FAILED_PRECONDITION);
        assert.match(err.details, new RegExp(`volume ${id} is '${status}' in Cinder, which cannot retype a volume in an error state: .*reset its state`));
      }
      h.driver.sim.control.setVolumeStatus(id, 'extending');
      const err = await expectCode(modify(id, { type: 'fast' }), Code.ABORTED);
      assert.match(err.details, /'extending'; it can be retyped when Cinder has finished/);
    } finally {
      h.driver.sim.control.setVolumeStatus(id, 'available');
    }
    await modify(id, { type: 'fast' });
    assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, 'fast');
  });

  it('a retype to another type left under way by an earlier request: ABORTED once it ends, and the retry retypes', async () => {
    const id = await h.createVolume('pvc-retype-abandoned');
    h.driver.sim.control.setDurations({ retype: 1000 });
    try {
      // The earlier request's deadline passes; Cinder goes on retyping to 'fast'.
      await expectCode(h.rpc('ControllerModifyVolume', { volume_id: id, mutable_parameters: { type: 'fast' } }, 300), Code.DEADLINE_EXCEEDED);
      assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'retyping');
      const err = await expectCode(modify(id, { type: 'multiattach' }), Code.ABORTED);
      assert.match(err.details, new RegExp(`a retype of volume ${id} to 'fast' from an earlier request was under way and has finished; the CO retries`));
      assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, 'fast');
      await modify(id, { type: 'multiattach' });
      assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, 'multiattach');

      // One that fails: Cinder puts the status back and the type stays.
      h.driver.sim.control.setVolumeStatus(id, 'retyping');
      setTimeout(() => h.driver.sim.control.setVolumeStatus(id, 'available'), 300);
      const failed = await expectCode(modify(id, { type: 'fast' }), Code.ABORTED);
      assert.match(failed.details, /from an earlier request was under way and left its type 'multiattach'; the CO retries, and the retry retypes it to 'fast'/);
      await modify(id, { type: 'fast' });
      assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, 'fast');
    } finally {
      h.driver.sim.control.setDurations({ retype: 50 });
    }
  });

  // Cinder answers 202, its scheduler finds no backend, and the volume keeps its type with no user message (Zed).
  it('a retype Cinder accepts but cannot place: INTERNAL saying where the reason is, and the volume keeps its type', async () => {
    const id = await h.createVolume('pvc-retype-nowhere');
    const err = await expectCode(modify(id, { type: 'no-backend' }), Code.INTERNAL);
    assert.match(err.details, /did not retype .* to 'no-backend': it still has type '__DEFAULT__'.*scheduler and volume logs/);
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.deepEqual([v.volumeType, v.status], ['__DEFAULT__', 'available']);
  });

  it('sets the type at creation from mutable_parameters', async () => {
    const id = await h.createVolume('pvc-vac', { mutable_parameters: { type: 'fast' } });
    assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, 'fast');
  });

  it('refuses unknown keys and unknown types with INVALID_ARGUMENT; NOT_FOUND for unknown volumes', async () => {
    const id = await h.createVolume('pvc-modify-errors');
    let err = await expectCode(modify(id, { iops: '3000' }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'iops'/);
    err = await expectCode(modify(id, { type: 'platinum' }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'platinum'/);
    await expectCode(modify('00000000-0000-4000-8000-000000000000', { type: 'fast' }), Code.NOT_FOUND);
    await expectCode(h.rpc('CreateVolume', { name: 'pvc-vac-typo', volume_capabilities: [{ mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }], mutable_parameters: { tier: 'gold' } }), Code.INVALID_ARGUMENT);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, '__DEFAULT__');
  });

  // What csi-sanity sends without --csi.testvolumemutableparameters (its default).
  it('with no mutable parameters: checks that the volume exists and changes nothing', async () => {
    const id = await h.createVolume('pvc-modify-nothing');
    assert.deepEqual(await modify(id, {}), {});
    assert.equal((await h.cloud.blockStorage.getVolume(id)).volumeType, '__DEFAULT__');
    const err = await expectCode(modify('00000000-0000-4000-8000-000000000000', {}), Code.NOT_FOUND);
    assert.match(err.details, /does not exist/);
    await expectCode(modify('', {}), Code.INVALID_ARGUMENT);
  });
});
