import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { CLUSTER_METADATA_KEY, SOURCE_BACKUP_METADATA_KEY } from '../../src/controller/params';
import { BLOCK_RWO, BLOCK_RWX, Code, GiB, MOUNT_RWO, expectCode, startController, type ControllerHarness } from './harness';

/** A CreateVolume whose deadline passes before Cinder has made the volume fails with a code the provisioner retries. */
async function expectOutOfTime(call: Promise<unknown>): Promise<void> {
  const err = await call.then(
    () => assert.fail('the call should not finish before the volume is available'),
    (e) => e,
  );
  assert.ok([Code.DEADLINE_EXCEEDED, Code.ABORTED, Code.UNAVAILABLE].includes(err.code), `retryable code, got ${err.code}`);
}

describe('CreateVolume', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({
      sim: { availabilityZones: ['nova', 'cinder-b'], instances: [{ name: 'node-1' }] },
      configure: (c) => {
        c.clusterId = 'test-cluster';
        c.controller.azMap = { 'compute-b': 'cinder-b' };
      },
    });
  });
  after(() => h.stop());

  it('creates an available volume rounded up to whole GiB, with metadata and its zone', async () => {
    const res = await h.rpc('CreateVolume', {
      name: 'pvc-basic',
      volume_capabilities: [MOUNT_RWO],
      capacity_range: { required_bytes: 1.5 * GiB },
      parameters: {
        'csi.storage.k8s.io/pvc/name': 'data',
        'csi.storage.k8s.io/pvc/namespace': 'shop',
        'csi.storage.k8s.io/pv/name': 'pvc-basic',
      },
    });
    assert.equal(Number(res.volume.capacity_bytes), 2 * GiB);
    assert.deepEqual(res.volume.accessible_topology, [{ segments: { [TOPOLOGY_ZONE_KEY]: 'nova' } }]);
    const [v] = await h.volumesNamed('pvc-basic');
    assert.equal(v.id, res.volume.volume_id);
    assert.equal(v.status, 'available');
    assert.equal(v.size, 2);
    assert.equal(v.metadata[CLUSTER_METADATA_KEY], 'test-cluster');
    assert.equal(v.metadata['csi.storage.k8s.io/pvc/name'], 'data');
    assert.equal(v.metadata['csi.storage.k8s.io/pvc/namespace'], 'shop');
    assert.equal(v.metadata['csi.storage.k8s.io/pv/name'], 'pvc-basic');
  });

  it('makes 1 GiB when no capacity is asked for', async () => {
    const res = await h.rpc('CreateVolume', { name: 'pvc-nosize', volume_capabilities: [MOUNT_RWO] });
    assert.equal(Number(res.volume.capacity_bytes), GiB);
  });

  it('checks required fields, the limit and the parameters', async () => {
    let err = await expectCode(h.rpc('CreateVolume', { volume_capabilities: [MOUNT_RWO] }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /name/);
    err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-nocaps' }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /volume_capabilities/);
    err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-limit', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB + 1, limit_bytes: 1.5 * GiB } }),
      Code.OUT_OF_RANGE,
    );
    assert.match(err.details, /2 GiB/);
    err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-typo', volume_capabilities: [MOUNT_RWO], parameters: { tpye: 'fast' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(err.details, /'tpye'/);
    err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-notype', volume_capabilities: [MOUNT_RWO], parameters: { type: 'gold' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(err.details, /'gold'.*__DEFAULT__/);
    // The spec: one of the source's type fields MUST be specified. An empty message is not an empty volume.
    err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-nosource', volume_capabilities: [MOUNT_RWO], volume_content_source: {} }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /volume_content_source names neither a snapshot nor a volume/);
    for (const name of ['pvc-limit', 'pvc-typo', 'pvc-notype', 'pvc-nosource']) assert.deepEqual(await h.volumesNamed(name), []);
  });

  it('refuses access modes Cinder cannot honour', async () => {
    let err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-rwx', volume_capabilities: [BLOCK_RWX] }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /multiattach/);
    const rwxMount = { mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
    err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-rwx-fs', volume_capabilities: [rwxMount], parameters: { type: 'multiattach' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(err.details, /Block/);
    const noType = { access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    await expectCode(h.rpc('CreateVolume', { name: 'pvc-noaccesstype', volume_capabilities: [noType] }), Code.INVALID_ARGUMENT);
    const res = await h.rpc('CreateVolume', { name: 'pvc-rwx-block', volume_capabilities: [BLOCK_RWX, BLOCK_RWO], parameters: { type: 'multiattach' } });
    const [v] = await h.volumesNamed('pvc-rwx-block');
    assert.equal(v.id, res.volume.volume_id);
    assert.equal(v.multiattach, true);
  });

  it('refuses a filesystem the node plugin cannot make before any volume is made; takes those it can', async () => {
    const withFs = (fs_type: string) => ({ mount: { fs_type }, access_mode: { mode: 'SINGLE_NODE_WRITER' } });
    const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-ntfs', volume_capabilities: [withFs('ntfs')] }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /fs_type "ntfs" is not supported: the node plugin makes ext4, ext3, xfs/);
    assert.deepEqual(await h.volumesNamed('pvc-ntfs'), []);
    for (const fs of ['ext4', 'xfs']) await h.rpc('CreateVolume', { name: `pvc-fs-${fs}`, volume_capabilities: [withFs(fs)] });
  });

  it("refuses a StorageClass's mountOptions that no node would mount with before any volume is made; takes ordinary ones", async () => {
    const withFlags = (mount_flags: string[]) => ({ mount: { fs_type: 'ext4', mount_flags }, access_mode: { mode: 'SINGLE_NODE_WRITER' } });
    for (const flags of [['loop'], ['noatime,bind'], ['remount']]) {
      const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-bad-flags', volume_capabilities: [withFlags(flags)] }), Code.INVALID_ARGUMENT);
      assert.match(err.details, /mount_flags must not contain .*the StorageClass's mountOptions/, flags.join());
    }
    assert.deepEqual(await h.volumesNamed('pvc-bad-flags'), []);
    await h.rpc('CreateVolume', { name: 'pvc-noatime', volume_capabilities: [withFlags(['noatime', 'discard'])] });
  });

  it('is idempotent by name: the same request returns the same volume, a different size is ALREADY_EXISTS', async () => {
    const req = { name: 'pvc-again', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 3 * GiB } };
    const first = await h.rpc('CreateVolume', req);
    const second = await h.rpc('CreateVolume', req);
    assert.equal(second.volume.volume_id, first.volume.volume_id);
    const err = await expectCode(h.rpc('CreateVolume', { ...req, capacity_range: { required_bytes: 5 * GiB } }), Code.ALREADY_EXISTS);
    assert.match(err.details, /3 GiB/);
    assert.equal((await h.volumesNamed('pvc-again')).length, 1);
  });

  it('makes exactly one volume for 100 concurrent identical calls', async () => {
    h.driver.sim.control.setDurations({ create: 300 });
    try {
      const req = { name: 'pvc-herd', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } };
      const results = await Promise.all(Array.from({ length: 100 }, () => h.rpc('CreateVolume', req)));
      const ids = new Set(results.map((r) => r.volume.volume_id));
      assert.equal(ids.size, 1);
      const volumes = await h.volumesNamed('pvc-herd');
      assert.equal(volumes.length, 1);
      assert.equal(volumes[0].id, [...ids][0]);
      assert.equal(volumes[0].status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('fails with a retryable code at the deadline, and the retry finds the same volume', async () => {
    // A deadline well past the create request (even on a loaded machine) and well before the volume is ready.
    h.driver.sim.control.setDurations({ create: 3000 });
    try {
      const req = { name: 'pvc-slow', volume_capabilities: [MOUNT_RWO] };
      await expectOutOfTime(h.rpc('CreateVolume', req, 1000));
      const [creating] = await h.volumesNamed('pvc-slow');
      assert.ok(creating, 'the volume was created in Cinder before the deadline');
      assert.equal(creating.status, 'creating');
      const res = await h.rpc('CreateVolume', req, 10_000);
      assert.equal(res.volume.volume_id, creating.id);
      const all = await h.volumesNamed('pvc-slow');
      assert.equal(all.length, 1);
      assert.equal(all[0].status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('deletes a volume that ends in error and fails with the reason; the retry makes a fresh one', async () => {
    h.driver.sim.control.setDurations({ create: 1000 });
    try {
      const req = { name: 'pvc-broken', volume_capabilities: [MOUNT_RWO] };
      const call = h.rpc('CreateVolume', req);
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        id = (await h.volumesNamed('pvc-broken'))[0]?.id;
        if (!id) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(id, 'the volume appears in Cinder while it is created');
      h.driver.sim.control.setVolumeStatus(id, 'error');
      const err = await expectCode(call, Code.INTERNAL);
      assert.match(err.details, /'error'/);
      assert.match(err.details, /deleted/);
      const left = await h.cloud.blockStorage.getVolume(id).then((v) => v.status, () => 'gone');
      assert.ok(left === 'deleting' || left === 'gone', `the failed volume is being deleted, not ${left}`);
      h.driver.sim.control.setDurations({ create: 50 });
      const res = await h.rpc('CreateVolume', req);
      assert.notEqual(res.volume.volume_id, id);
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('a volume no backend has room for fails RESOURCE_EXHAUSTED with Cinder\'s own reason, and is deleted', async () => {
    h.driver.sim.control.setBackendCapacity(1);
    try {
      const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-too-big', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 5 * GiB } }), Code.RESOURCE_EXHAUSTED);
      // The scheduler's message, read from Cinder's message API (3.3) before the volume was deleted.
      assert.match(err.details, /Could not find any available weighted backend/);
      assert.match(err.details, /5 GiB/);
      assert.match(err.details, /deleted/);
      const left = await h.volumesNamed('pvc-too-big');
      assert.ok(left.every((v) => v.status === 'deleting'), `the failed volume is being deleted: ${JSON.stringify(left.map((v) => v.status))}`);
    } finally {
      h.driver.sim.control.setBackendCapacity(null);
    }
  });

  it("a type no backend serves (the simulator's own 'no-backend', as the README offers) is RESOURCE_EXHAUSTED too", async () => {
    const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-no-backend', volume_capabilities: [MOUNT_RWO], parameters: { type: 'no-backend' } }), Code.RESOURCE_EXHAUSTED);
    assert.match(err.details, /Could not find any available weighted backend/);
    assert.match(err.details, /type no-backend/);
  });

  it('places the volume by topology: preferred zone through the AZ map, and reports the compute zones', async () => {
    const res = await h.rpc('CreateVolume', {
      name: 'pvc-zone-b',
      volume_capabilities: [MOUNT_RWO],
      accessibility_requirements: {
        requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'nova' } }, { segments: { [TOPOLOGY_ZONE_KEY]: 'compute-b' } }],
        preferred: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'compute-b' } }],
      },
    });
    const [v] = await h.volumesNamed('pvc-zone-b');
    assert.equal(v.availabilityZone, 'cinder-b');
    // compute-b maps to cinder-b; a compute zone called cinder-b (unmapped) would reach it too.
    assert.deepEqual(res.volume.accessible_topology, [{ segments: { [TOPOLOGY_ZONE_KEY]: 'cinder-b' } }, { segments: { [TOPOLOGY_ZONE_KEY]: 'compute-b' } }]);
  });

  it('answers ALREADY_EXISTS when the volume of that name is in a zone the retry cannot use', async () => {
    const inNova = { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'nova' } }] };
    const first = await h.rpc('CreateVolume', { name: 'pvc-zone-retry', volume_capabilities: [MOUNT_RWO], accessibility_requirements: inNova });
    const again = await h.rpc('CreateVolume', { name: 'pvc-zone-retry', volume_capabilities: [MOUNT_RWO], accessibility_requirements: inNova });
    assert.equal(again.volume.volume_id, first.volume.volume_id);
    const elsewhere = await expectCode(
      h.rpc('CreateVolume', {
        name: 'pvc-zone-retry',
        volume_capabilities: [MOUNT_RWO],
        accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'compute-b' } }] },
      }),
      Code.ALREADY_EXISTS,
    );
    assert.match(elsewhere.details, /zone 'nova', which no requisite zone \(compute-b\)/);
    const otherClass = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-zone-retry', volume_capabilities: [MOUNT_RWO], parameters: { availability: 'cinder-b' } }),
      Code.ALREADY_EXISTS,
    );
    assert.match(otherClass.details, /zone 'nova', not in 'cinder-b'/);
    assert.equal((await h.volumesNamed('pvc-zone-retry')).length, 1);
  });

  it('answers RESOURCE_EXHAUSTED when no requisite zone can reach the availability parameter (the CO reschedules)', async () => {
    const err = await expectCode(
      h.rpc('CreateVolume', {
        name: 'pvc-zone-conflict',
        volume_capabilities: [MOUNT_RWO],
        parameters: { availability: 'cinder-b' },
        accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'nova' } }] },
      }),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.match(err.details, /cinder-b/);
    assert.deepEqual(await h.volumesNamed('pvc-zone-conflict'), []);
  });

  it('answers RESOURCE_EXHAUSTED when Cinder has no zone for the node topology, INVALID_ARGUMENT for a bad availability parameter', async () => {
    const fromTopology = await expectCode(
      h.rpc('CreateVolume', {
        name: 'pvc-zone-unknown',
        volume_capabilities: [MOUNT_RWO],
        accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'compute-z' } }] },
      }),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.match(fromTopology.details, /compute-z.*az_map/);
    const fromClass = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-zone-typo', volume_capabilities: [MOUNT_RWO], parameters: { availability: 'cinder-typo' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(fromClass.details, /cinder-typo/);
    assert.deepEqual(await h.volumesNamed('pvc-zone-unknown'), []);
  });

  it('clones a volume and restores a snapshot, marking each for the node to grow its filesystem', async () => {
    const sourceId = await h.createVolume('pvc-source');
    const clone = await h.rpc('CreateVolume', {
      name: 'pvc-clone',
      volume_capabilities: [MOUNT_RWO],
      volume_content_source: { volume: { volume_id: sourceId } },
    });
    assert.equal(clone.volume.content_source.volume.volume_id, sourceId);
    // The same size as its source: the node's growth will have nothing to do, but the volume cannot tell.
    assert.deepEqual(clone.volume.volume_context, { resizeRequired: 'true' });
    assert.equal((await h.volumesNamed('pvc-clone'))[0].sourceVolumeId, sourceId);

    const snap = await h.cloud.blockStorage.createSnapshot({ volumeId: sourceId, name: 'snap-for-restore' });
    await h.cloud.waiter.snapshot(snap.id, { target: ['available'], transient: ['creating'] });
    const restored = await h.rpc('CreateVolume', {
      name: 'pvc-restored',
      volume_capabilities: [MOUNT_RWO],
      capacity_range: { required_bytes: 4 * GiB },
      volume_content_source: { snapshot: { snapshot_id: snap.id } },
    });
    assert.equal(restored.volume.content_source.snapshot.snapshot_id, snap.id);
    assert.equal(restored.volume.volume_context.resizeRequired, 'true');
    assert.equal(Number(restored.volume.capacity_bytes), 4 * GiB);

    // The same name from another source is another volume.
    await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-clone', volume_capabilities: [MOUNT_RWO], volume_content_source: { snapshot: { snapshot_id: snap.id } } }),
      Code.ALREADY_EXISTS,
    );
  });

  it('reports the same volume_context in CreateVolume, ListVolumes and ControllerGetVolume', async () => {
    const sourceId = await h.createVolume('pvc-context-source');
    const snap = await h.cloud.blockStorage.createSnapshot({ volumeId: sourceId, name: 'snap-context' });
    await h.cloud.waiter.snapshot(snap.id, { target: ['available'], transient: ['creating'] });
    const created = [
      await h.rpc('CreateVolume', { name: 'pvc-context-empty', volume_capabilities: [MOUNT_RWO] }),
      await h.rpc('CreateVolume', {
        name: 'pvc-context-larger',
        volume_capabilities: [MOUNT_RWO],
        capacity_range: { required_bytes: 3 * GiB },
        volume_content_source: { snapshot: { snapshot_id: snap.id } },
      }),
      await h.rpc('CreateVolume', { name: 'pvc-context-clone', volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: sourceId } } }),
    ].map((r) => r.volume);
    const listed = (await h.rpc('ListVolumes', {})).entries.map((e: any) => e.volume);
    for (const v of created) {
      const got = await h.rpc('ControllerGetVolume', { volume_id: v.volume_id });
      assert.deepEqual(got.volume.volume_context, v.volume_context, `ControllerGetVolume of ${v.volume_id}`);
      assert.deepEqual(listed.find((l: any) => l.volume_id === v.volume_id)?.volume_context, v.volume_context, `ListVolumes of ${v.volume_id}`);
    }
    assert.deepEqual(created.map((v) => v.volume_context), [{}, { resizeRequired: 'true' }, { resizeRequired: 'true' }]);
  });

  it('answers NOT_FOUND for a missing source and OUT_OF_RANGE for a size below the source', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-nosnap', volume_capabilities: [MOUNT_RWO], volume_content_source: { snapshot: { snapshot_id: missing } } }),
      Code.NOT_FOUND,
    );
    await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-novol', volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: missing } } }),
      Code.NOT_FOUND,
    );
    const bigId = await h.createVolume('pvc-big', { capacity_range: { required_bytes: 3 * GiB } });
    await expectCode(
      h.rpc('CreateVolume', {
        name: 'pvc-too-small',
        volume_capabilities: [MOUNT_RWO],
        capacity_range: { required_bytes: GiB },
        volume_content_source: { volume: { volume_id: bigId } },
      }),
      Code.OUT_OF_RANGE,
    );
    // Without a size, the copy gets the source's size.
    const res = await h.rpc('CreateVolume', { name: 'pvc-same-size', volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: bigId } } });
    assert.equal(Number(res.volume.capacity_bytes), 3 * GiB);
  });
});

describe('CreateVolume on a Cinder without user messages (before 3.3)', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { maxMicroversion: '3.2' } });
  });
  after(() => h.stop());

  it('a volume the scheduler cannot place is INTERNAL with the likely causes, and no time is spent looking for a message', async () => {
    h.driver.sim.control.setBackendCapacity(1);
    try {
      h.driver.sim.control.resetCounters();
      const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-old-cinder', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 5 * GiB } }), Code.INTERNAL);
      assert.match(err.details, /'error'/);
      assert.match(err.details, /openstack volume message list/);
      assert.match(err.details, /deleted/);
      // Where Cinder has no message API, it is not asked (nor waited for).
      const asked = Object.keys(h.driver.sim.control.counters()).filter((k) => k.includes('/messages'));
      assert.deepEqual(asked, []);
    } finally {
      h.driver.sim.control.setBackendCapacity(null);
    }
  });
});

describe('CreateVolume on a Cinder that falls back to its default zone (allow_availability_zone_fallback)', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { availabilityZones: ['nova', 'cinder-b'], availabilityZoneFallback: true } });
  });
  after(() => h.stop());

  it('a volume Cinder puts in a zone the requisite zones cannot reach is deleted and the call is RESOURCE_EXHAUSTED', async () => {
    const err = await expectCode(
      h.rpc('CreateVolume', {
        name: 'pvc-fallback',
        volume_capabilities: [MOUNT_RWO],
        accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'compute-z' } }] },
      }),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.match(err.details, /availability zone 'nova', which no requisite zone \(compute-z\) can attach; it was deleted/);
    assert.ok((await h.volumesNamed('pvc-fallback')).every((v) => v.status === 'deleting'));
    // Where the zone reached is one the pod can use, the volume is kept.
    const ok = await h.rpc('CreateVolume', {
      name: 'pvc-fallback-ok',
      volume_capabilities: [MOUNT_RWO],
      accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_ZONE_KEY]: 'nova' } }] },
    });
    assert.ok(ok.volume.volume_id);
  });
});

describe('CreateVolume on a Cinder that shows extra specs to admins only (before Xena)', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { showUserExtraSpecs: false } });
  });
  after(() => h.stop());

  it('makes a multi-node volume of a multiattach type it cannot see as one', async () => {
    const res = await h.rpc('CreateVolume', { name: 'pvc-rwx-old', volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    assert.equal((await h.cloud.blockStorage.getVolume(res.volume.volume_id)).multiattach, true);
  });

  it('refuses a multi-node volume of a type that turns out not to be multiattach, and deletes what it made', async () => {
    const err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-rwx-plain', volume_capabilities: [BLOCK_RWX], parameters: { type: '__DEFAULT__' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(err.details, /'__DEFAULT__' is not multiattach.*was deleted/);
    const left = await h.volumesNamed('pvc-rwx-plain');
    assert.ok(left.every((v) => v.status === 'deleting'), `left behind: ${JSON.stringify(left.map((v) => v.status))}`);
  });

  it('the retry of an attempt that ran out of time deletes what that attempt made; a volume not ours is ALREADY_EXISTS', async () => {
    const bs = h.cloud.blockStorage;
    // What a first attempt leaves when its deadline passes while Cinder makes the volume.
    const earlier = await bs.createVolume({ name: 'pvc-rwx-retry', size: 1, volumeType: '__DEFAULT__', metadata: { [CLUSTER_METADATA_KEY]: 'kubernetes' } });
    await h.cloud.waiter.volume(earlier.id, { target: ['available'], transient: ['creating'] });
    const retry = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-rwx-retry', volume_capabilities: [BLOCK_RWX], parameters: { type: '__DEFAULT__' } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(retry.details, new RegExp(`${earlier.id}, which was deleted`));
    assert.ok((await h.volumesNamed('pvc-rwx-retry')).every((v) => v.status === 'deleting'));

    const foreign = await bs.createVolume({ name: 'pvc-rwx-foreign', size: 1, volumeType: '__DEFAULT__' });
    await h.cloud.waiter.volume(foreign.id, { target: ['available'], transient: ['creating'] });
    await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-rwx-foreign', volume_capabilities: [BLOCK_RWX], parameters: { type: '__DEFAULT__' } }),
      Code.ALREADY_EXISTS,
    );
    assert.equal((await bs.getVolume(foreign.id)).status, 'available', 'a volume not ours is left alone');
  });
});

describe('CreateVolume from a source the cloud cannot copy', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { maxMicroversion: '3.46' } });
  });
  after(() => h.stop());

  it('answers INVALID_ARGUMENT (the spec: source not supported) for a source in an error state and for a backup before 3.47', async () => {
    const sourceId = await h.createVolume('pvc-broken-source');
    h.driver.sim.control.setVolumeStatus(sourceId, 'error');
    const broken = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-from-broken', volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: sourceId } } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(broken.details, /'error' and cannot be copied/);
    h.driver.sim.control.setVolumeStatus(sourceId, 'available');

    h.driver.sim.control.setDurations({ backup: 0 });
    const backup = await h.cloud.blockStorage.createBackup({ volumeId: sourceId, name: 'b', force: false, incremental: false });
    await h.cloud.waiter.backup(backup.id, { target: ['available'], transient: ['creating'] });
    const old = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-from-backup-old', volume_capabilities: [MOUNT_RWO], volume_content_source: { snapshot: { snapshot_id: backup.id } } }),
      Code.INVALID_ARGUMENT,
    );
    assert.match(old.details, /3\.47/);
    assert.deepEqual(await h.volumesNamed('pvc-from-backup-old'), []);
  });

  // Kubernetes clones a PVC as soon as its last pod is gone, while Nova may still be detaching it:
  // csi-provisioner retries INVALID_ARGUMENT only every few minutes, UNAVAILABLE at once.
  it('answers UNAVAILABLE for a source volume that is being attached or detached', async () => {
    const sourceId = await h.createVolume('pvc-moving-source');
    for (const status of ['reserved', 'attaching', 'detaching']) {
      h.driver.sim.control.setVolumeStatus(sourceId, status);
      const err = await expectCode(
        h.rpc('CreateVolume', { name: `pvc-from-${status}`, volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: sourceId } } }),
        Code.UNAVAILABLE,
      );
      assert.match(err.details, new RegExp(`is '${status}'; the new volume is created once it is available`));
    }
    h.driver.sim.control.setVolumeStatus(sourceId, 'available');
  });

  it("answers UNAVAILABLE when the source starts a detach between the driver's look and Cinder's", async () => {
    const sourceId = await h.createVolume('pvc-racing-source');
    // Cinder sees the create only after the source has moved on.
    h.driver.sim.control.addFault({ method: 'POST', pathPattern: '/volumes$', delayMs: 300, times: 1 });
    const call = h.rpc('CreateVolume', { name: 'pvc-from-racing', volume_capabilities: [MOUNT_RWO], volume_content_source: { volume: { volume_id: sourceId } } });
    await new Promise((r) => setTimeout(r, 100));
    h.driver.sim.control.setVolumeStatus(sourceId, 'detaching');
    const err = await expectCode(call, Code.UNAVAILABLE);
    assert.match(err.details, /Originating source volume status must be one of 'available, in-use' values/);
    h.driver.sim.control.setVolumeStatus(sourceId, 'available');
    assert.deepEqual(await h.volumesNamed('pvc-from-racing'), []);
  });
});

describe('CreateVolume on a Cinder with messages but without their filters (3.3, 3.4)', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { maxMicroversion: '3.4' } });
  });
  after(() => h.stop());

  it("finds the volume's message among the project's others (filtered here, not by Cinder), and answers RESOURCE_EXHAUSTED", async () => {
    // Another volume's message first: before 3.5 Cinder lists every message of the project.
    await expectCode(h.rpc('CreateVolume', { name: 'pvc-other', volume_capabilities: [MOUNT_RWO], parameters: { type: 'no-backend' } }), Code.RESOURCE_EXHAUSTED);
    const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-this', volume_capabilities: [MOUNT_RWO], parameters: { type: 'no-backend' } }), Code.RESOURCE_EXHAUSTED);
    assert.match(err.details, /Could not find any available weighted backend/);
  });
});

// Cinder's restore replaces the new volume's metadata with the backed-up volume's at its end, and a
// restore outlives the provisioner's deadline easily: the retry is what finds it restored.
describe('CreateVolume from a backup, retried', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ configure: (c) => (c.clusterId = 'test-cluster') });
  });
  after(() => h.stop());

  const backupOf = async (volumeId: string): Promise<string> => {
    const b = await h.cloud.blockStorage.createBackup({ volumeId, name: `backup-of-${volumeId}`, force: false, incremental: false });
    await h.cloud.waiter.backup(b.id, { target: ['available'], transient: ['creating'] });
    return b.id;
  };
  const fromBackup = (name: string, backupId: string) => ({
    name,
    volume_capabilities: [MOUNT_RWO],
    parameters: { 'csi.storage.k8s.io/pvc/name': name },
    volume_content_source: { snapshot: { snapshot_id: backupId } },
  });

  it("a retry while the restore runs waits for the volume, not for the backup the restore keeps 'restoring'", async () => {
    const b0 = await backupOf(await h.createVolume('pvc-busy-src'));
    h.driver.sim.control.setDurations({ restore: 1500 });
    try {
      const req = fromBackup('pvc-busy', b0);
      await expectOutOfTime(h.rpc('CreateVolume', req, 300));
      assert.equal((await h.cloud.blockStorage.getBackup(b0)).status, 'restoring');
      const [made] = await h.volumesNamed('pvc-busy');
      const retry = await h.rpc('CreateVolume', req);
      assert.equal(retry.volume.volume_id, made.id);
      assert.deepEqual(retry.volume.content_source?.snapshot, { snapshot_id: b0 });
      assert.equal((await h.volumesNamed('pvc-busy')).length, 1);
    } finally {
      h.driver.sim.control.setDurations({ restore: 50 });
    }
    // A new volume still waits for a busy backup.
    h.driver.sim.control.setDurations({ backup: 1000 });
    try {
      const busy = await h.cloud.blockStorage.createBackup({ volumeId: (await h.volumesNamed('pvc-busy-src'))[0].id, name: 'busy', force: false, incremental: false });
      const wait = await expectCode(h.rpc('CreateVolume', fromBackup('pvc-from-busy', busy.id)), Code.UNAVAILABLE);
      assert.match(wait.details, /is 'creating'; the new volume is created once it is available/);
      assert.deepEqual(await h.volumesNamed('pvc-from-busy'), []);
    } finally {
      h.driver.sim.control.setDurations({ backup: 50 });
    }
  });

  it('a retry after the restore of a backup of a restored volume answers with the volume, as made from its own backup, marked again', async () => {
    const b0 = await backupOf(await h.createVolume('pvc-gen0'));
    const gen1 = await h.rpc('CreateVolume', fromBackup('pvc-gen1', b0));
    const b1 = await backupOf(gen1.volume.volume_id);
    h.driver.sim.control.setDurations({ restore: 1500 });
    try {
      const req = fromBackup('pvc-gen2', b1);
      await expectOutOfTime(h.rpc('CreateVolume', req, 500));
      const [made] = await h.volumesNamed('pvc-gen2');
      const restored = await h.cloud.waiter.volume(made.id, { target: ['available'], transient: ['creating', 'restoring-backup'] });
      // What the restore left: pvc-gen1's metadata, which names b0.
      assert.equal(restored?.metadata[SOURCE_BACKUP_METADATA_KEY], b0);
      assert.equal(restored?.metadata['csi.storage.k8s.io/pvc/name'], 'pvc-gen1');
      const meanwhile = await h.rpc('ControllerGetVolume', { volume_id: made.id });
      assert.deepEqual(meanwhile.volume.content_source?.snapshot, { snapshot_id: b1 });

      const retry = await h.rpc('CreateVolume', req);
      assert.equal(retry.volume.volume_id, made.id);
      assert.deepEqual(retry.volume.content_source?.snapshot, { snapshot_id: b1 });
      const [marked] = await h.volumesNamed('pvc-gen2');
      assert.equal(marked.metadata[SOURCE_BACKUP_METADATA_KEY], b1);
      assert.equal(marked.metadata[CLUSTER_METADATA_KEY], 'test-cluster');
      assert.equal(marked.metadata['csi.storage.k8s.io/pvc/name'], 'pvc-gen2');
      assert.equal((await h.rpc('CreateVolume', req)).volume.volume_id, made.id);
      const listed = (await h.rpc('ListVolumes', {})).entries.find((e: any) => e.volume.volume_id === made.id);
      assert.deepEqual(listed.volume.content_source?.snapshot, { snapshot_id: b1 });
      assert.equal((await h.volumesNamed('pvc-gen2')).length, 1);
    } finally {
      h.driver.sim.control.setDurations({ restore: 50 });
    }
  });
});
