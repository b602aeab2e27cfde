import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_RWO, Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('ControllerExpandVolume', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { quotas: { gigabytes: 20 } } });
  });
  after(() => h.stop());

  const expand = (volumeId: string, bytes: number, extra: Record<string, unknown> = {}) =>
    h.rpc('ControllerExpandVolume', { volume_id: volumeId, capacity_range: { required_bytes: bytes }, volume_capability: MOUNT_RWO, ...extra });

  it('extends a detached volume, rounding up, and waits for the new size', async () => {
    h.driver.sim.control.setDurations({ extend: 300 });
    try {
      const id = await h.createVolume('pvc-grow');
      const res = await expand(id, 2.2 * GiB);
      assert.equal(Number(res.capacity_bytes), 3 * GiB);
      assert.equal(res.node_expansion_required, true);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.size, 3);
      assert.equal(v.status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ extend: 50 });
    }
  });

  it('extends an attached volume online (microversion 3.42); a block volume needs nothing from the node', async () => {
    const id = await h.createVolume('pvc-grow-online', { volume_capabilities: [BLOCK_RWO] });
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: BLOCK_RWO });
    try {
      const res = await expand(id, 2 * GiB, { volume_capability: BLOCK_RWO });
      assert.equal(Number(res.capacity_bytes), 2 * GiB);
      assert.equal(res.node_expansion_required, false);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.size, 2);
      assert.equal(v.status, 'in-use');
    } finally {
      await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    }
  });

  // Publish and unpublish are not ordered with an expand of the same volume: a detach may begin between
  // the driver's look and Cinder's. That passes; FAILED_PRECONDITION could be final for csi-resizer.
  it('answers ABORTED when an attach or a detach of the volume began between its look and Cinder\'s', async () => {
    const id = await h.createVolume('pvc-grow-racing');
    for (const status of ['reserved', 'detaching']) {
      h.driver.sim.control.addFault({ method: 'POST', pathPattern: `/volumes/${id}/action$`, delayMs: 300, times: 1 });
      const call = expand(id, 2 * GiB);
      await new Promise((r) => setTimeout(r, 100));
      h.driver.sim.control.setVolumeStatus(id, status);
      const err = await expectCode(call, Code.ABORTED);
      assert.match(err.details, new RegExp(`is '${status}' now; it can be extended when Cinder has finished`));
      h.driver.sim.control.setVolumeStatus(id, 'available');
    }
    assert.equal(Number((await expand(id, 2 * GiB)).capacity_bytes), 2 * GiB);
    await h.rpc('DeleteVolume', { volume_id: id }); // the project's 20 GiB are for the other cases
  });

  it('succeeds at once when the volume is already large enough', async () => {
    const id = await h.createVolume('pvc-big-enough', { capacity_range: { required_bytes: 2 * GiB } });
    h.driver.sim.control.resetCounters();
    const res = await expand(id, GiB);
    assert.equal(Number(res.capacity_bytes), 2 * GiB);
    const actions = Object.entries(h.driver.sim.control.counters()).filter(([route]) => route.startsWith('POST') && route.includes('/action'));
    assert.deepEqual(actions, []);
  });

  it('answers OUT_OF_RANGE, NOT_FOUND and INVALID_ARGUMENT where they apply; a quota refusal is OUT_OF_RANGE, final for csi-resizer', async () => {
    const id = await h.createVolume('pvc-grow-errors');
    await expectCode(
      h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB + 1, limit_bytes: 2 * GiB } }),
      Code.OUT_OF_RANGE,
    );
    await expectCode(expand('00000000-0000-4000-8000-000000000000', 2 * GiB), Code.NOT_FOUND);
    await expectCode(h.rpc('ControllerExpandVolume', { volume_id: id }), Code.INVALID_ARGUMENT);
    await expectCode(h.rpc('ControllerExpandVolume', { capacity_range: { required_bytes: GiB } }), Code.INVALID_ARGUMENT);
    const err = await expectCode(expand(id, 100 * GiB), Code.OUT_OF_RANGE);
    assert.match(err.details, /quota/);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).size, 1);
  });

  it('answers INVALID_ARGUMENT for a range with neither bound, OUT_OF_RANGE for a limit below the current size', async () => {
    const id = await h.createVolume('pvc-grow-range', { capacity_range: { required_bytes: 3 * GiB } });
    const empty = await expectCode(h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: {} }), Code.INVALID_ARGUMENT);
    assert.match(empty.details, /required_bytes or limit_bytes/);
    // Already 3 GiB: satisfying required_bytes 1 GiB would still break limit_bytes 2 GiB.
    const shrink = await expectCode(
      h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: GiB, limit_bytes: 2 * GiB } }),
      Code.OUT_OF_RANGE,
    );
    assert.match(shrink.details, /3 GiB.*do not shrink/);
    assert.equal(Number((await expand(id, 2 * GiB)).capacity_bytes), 3 * GiB, 'a smaller required_bytes without a limit is satisfied as it is');
  });

  // Cinder's scheduler, finding no backend for the new size, puts the volume back to its previous
  // status at its old size and writes a message: nothing is left to wait for.
  it('answers OUT_OF_RANGE at once, in Cinder\'s words, when no backend has room for the new size; the retry extends once there is', async () => {
    const id = await h.createVolume('pvc-grow-no-room');
    const used = h.driver.sim.control.inventory().volumes.reduce((sum, v) => sum + v.size, 0);
    h.driver.sim.control.setBackendCapacity(used + 1);
    try {
      // Not DEADLINE_EXCEEDED: the volume is back to 'available' at 1 GiB.
      const err = await expectCode(h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 4 * GiB }, volume_capability: MOUNT_RWO }, 10_000), Code.OUT_OF_RANGE);
      assert.match(err.details, /Cinder did not extend volume .* to 4 GiB \(Cinder says: extend volume: Could not find any available weighted backend\.\): no backend could take the new size/);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.status, 'available');
      assert.equal(v.size, 1);
    } finally {
      h.driver.sim.control.setBackendCapacity(null);
    }
    assert.equal(Number((await expand(id, 4 * GiB)).capacity_bytes), 4 * GiB);
  });

  it('an earlier attempt\'s smaller extend still under way: ABORTED once it ends, and the retry asks for the new size', async () => {
    const id = await h.createVolume('pvc-grow-twice');
    h.driver.sim.control.setDurations({ extend: 1000 });
    try {
      await expectCode(h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB }, volume_capability: MOUNT_RWO }, 200), Code.DEADLINE_EXCEEDED);
      const err = await expectCode(expand(id, 3 * GiB), Code.ABORTED);
      assert.match(err.details, /an extend of volume .* under way from an earlier attempt ended below 3 GiB/);
      assert.equal(Number((await expand(id, 3 * GiB)).capacity_bytes), 3 * GiB);
    } finally {
      h.driver.sim.control.setDurations({ extend: 50 });
    }
  });

  it('answers FAILED_PRECONDITION for a volume Cinder left in error_extending, saying how to recover', async () => {
    const id = await h.createVolume('pvc-grow-failed');
    h.driver.sim.control.setVolumeStatus(id, 'error_extending');
    const err = await expectCode(expand(id, 2 * GiB), Code.FAILED_PRECONDITION);
    assert.match(err.details, /error_extending.*reset its state/);
    h.driver.sim.control.setVolumeStatus(id, 'available');
    assert.equal(Number((await expand(id, 2 * GiB)).capacity_bytes), 2 * GiB);
  });
});

describe('ControllerExpandVolume on a cloud without online extend', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { maxMicroversion: '3.40' } });
  });
  after(() => h.stop());

  it('refuses an attached volume with FAILED_PRECONDITION telling the operator to detach, and extends it once detached', async () => {
    const id = await h.createVolume('pvc-old-cinder');
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO });
    const err = await expectCode(
      h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB } }),
      Code.FAILED_PRECONDITION,
    );
    assert.match(err.details, /3\.42/);
    assert.match(err.details, /detach/);
    await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    const res = await h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB } });
    assert.equal(Number(res.capacity_bytes), 2 * GiB);
  });
});

describe('ControllerExpandVolume joining an extend under way', () => {
  let h2: ControllerHarness;
  before(async () => {
    h2 = await startController();
  });
  after(() => h2.stop());

  it('an earlier attempt\'s larger extend still under way: OUT_OF_RANGE once it ends above limit_bytes, never a size beyond the limit', async () => {
    const id = await h2.createVolume('pvc-grow-past-limit');
    h2.driver.sim.control.setDurations({ extend: 1000 });
    try {
      await expectCode(h2.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 4 * GiB }, volume_capability: MOUNT_RWO }, 200), Code.DEADLINE_EXCEEDED);
      const err = await expectCode(h2.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB, limit_bytes: 3 * GiB }, volume_capability: MOUNT_RWO }), Code.OUT_OF_RANGE);
      assert.match(err.details, /already has 4 GiB .* more than limit_bytes/);
    } finally {
      h2.driver.sim.control.setDurations({ extend: 50 });
    }
  });
});
