import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('Controller service', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController();
  });
  after(() => h.stop());

  it('advertises exactly the capabilities it implements', async () => {
    const res = await h.rpc('ControllerGetCapabilities', {});
    const types = res.capabilities.map((c: any) => c.rpc.type).sort();
    assert.deepEqual(types, [
      'CLONE_VOLUME',
      'CREATE_DELETE_SNAPSHOT',
      'CREATE_DELETE_VOLUME',
      'EXPAND_VOLUME',
      'GET_CAPACITY',
      'GET_VOLUME',
      'LIST_SNAPSHOTS',
      'LIST_VOLUMES',
      'LIST_VOLUMES_PUBLISHED_NODES',
      'MODIFY_VOLUME',
      'PUBLISH_READONLY',
      'PUBLISH_UNPUBLISH_VOLUME',
      'SINGLE_NODE_MULTI_WRITER',
      'VOLUME_CONDITION',
    ]);
  });

  it('answers ABORTED for another operation on a volume that one is already running on', async () => {
    h.driver.sim.control.setDurations({ extend: 800 });
    try {
      const id = await h.createVolume('pvc-busy');
      const expand = h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB } });
      await new Promise((r) => setTimeout(r, 100));
      const err = await expectCode(h.rpc('DeleteVolume', { volume_id: id }), Code.ABORTED);
      assert.match(err.details, /ControllerExpandVolume/);
      // The same expansion again joins the running one.
      const [a, b] = await Promise.all([expand, h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB } })]);
      assert.equal(Number(a.capacity_bytes), 2 * GiB);
      assert.equal(Number(b.capacity_bytes), 2 * GiB);
      const extends_ = Object.entries(h.driver.sim.control.counters()).filter(([route]) => route.startsWith('POST') && route.includes('/action'));
      assert.equal(extends_.reduce((n, [, c]) => n + c, 0), 1, 'one extend request');
    } finally {
      h.driver.sim.control.setDurations({ extend: 50 });
    }
  });

  it('answers ABORTED for a CreateVolume of the same name with other arguments while the first runs', async () => {
    h.driver.sim.control.setDurations({ create: 600 });
    try {
      const first = h.rpc('CreateVolume', { name: 'pvc-race', volume_capabilities: [MOUNT_RWO] });
      await new Promise((r) => setTimeout(r, 100));
      await expectCode(h.rpc('CreateVolume', { name: 'pvc-race', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 5 * GiB } }), Code.ABORTED);
      await first;
      assert.equal((await h.volumesNamed('pvc-race')).length, 1);
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('puts the new volume ID on the call log line', async () => {
    const id = await h.createVolume('pvc-logged');
    const line = h.driver.logs.find((l) => l.method === 'CreateVolume' && l.volume_id === id);
    assert.ok(line, 'a CreateVolume log line names the volume');
    assert.equal(line.code, 'OK');
  });
});
