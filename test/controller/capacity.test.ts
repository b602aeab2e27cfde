import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { UNLIMITED_CAPACITY_BYTES } from '../../src/controller/capacity';
import { BLOCK_RWX, Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

const zone = (name: string) => ({ segments: { [TOPOLOGY_ZONE_KEY]: name } });

describe('GetCapacity', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({
      sim: {
        availabilityZones: ['nova', 'cinder-b'],
        volumeTypes: [{ name: '__DEFAULT__' }, { name: 'fast' }, { name: 'multiattach', extraSpecs: { multiattach: '<is> True' } }],
        quotas: { gigabytes: 100, per_volume_gigabytes: 30, gigabytes_fast: 20, volumes_multiattach: 0 },
      },
      configure: (c) => {
        c.controller.azMap = { 'compute-b': 'cinder-b' };
      },
    });
    await h.createVolume('pvc-capacity-used', { capacity_range: { required_bytes: 10 * GiB } });
  });
  after(() => h.stop());

  const capacity = (req: Record<string, unknown> = {}) => h.rpc('GetCapacity', req);

  it('reports what is left of the gigabytes quota, and the per-volume limit as the maximum size', async () => {
    const res = await capacity({ volume_capabilities: [MOUNT_RWO] });
    assert.equal(Number(res.available_capacity), 90 * GiB);
    assert.equal(Number(res.maximum_volume_size.value), 30 * GiB);
    assert.equal(Number(res.minimum_volume_size.value), GiB);
  });

  it('honours the quota of the volume type', async () => {
    const res = await capacity({ parameters: { type: 'fast' } });
    assert.equal(Number(res.available_capacity), 20 * GiB);
    assert.equal(Number(res.maximum_volume_size.value), 20 * GiB);
  });

  it('reports nothing when no more volumes of the type may be made, or the access mode cannot be served', async () => {
    assert.equal(Number((await capacity({ parameters: { type: 'multiattach' } })).available_capacity), 0);
    assert.equal(Number((await capacity({ volume_capabilities: [BLOCK_RWX] })).available_capacity), 0);
  });

  it('respects the topology: a zone Cinder has (directly or through the AZ map) has capacity, another has none', async () => {
    assert.equal(Number((await capacity({ accessible_topology: zone('nova') })).available_capacity), 90 * GiB);
    assert.equal(Number((await capacity({ accessible_topology: zone('compute-b') })).available_capacity), 90 * GiB);
    assert.equal(Number((await capacity({ accessible_topology: zone('elsewhere') })).available_capacity), 0);
    assert.equal(Number((await capacity({ accessible_topology: zone('nova'), parameters: { availability: 'cinder-b' } })).available_capacity), 0);
  });

  it('refuses unknown parameters and unknown types', async () => {
    await expectCode(capacity({ parameters: { speed: 'fast' } }), Code.INVALID_ARGUMENT);
    await expectCode(capacity({ parameters: { type: 'gold' } }), Code.INVALID_ARGUMENT);
  });
});

describe('GetCapacity with a quota on Cinder\'s default type', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({
      sim: { volumeTypes: [{ name: '__DEFAULT__' }, { name: 'fast' }], quotas: { gigabytes: 100, gigabytes___DEFAULT__: 12 } },
    });
    await h.createVolume('pvc-capacity-default-type', { capacity_range: { required_bytes: 10 * GiB } });
  });
  after(() => h.stop());

  it('a StorageClass that names no type is held to the quota of the type Cinder gives its volumes', async () => {
    const res = await h.rpc('GetCapacity', { volume_capabilities: [MOUNT_RWO] });
    assert.equal(Number(res.available_capacity), 2 * GiB);
    // The next CreateVolume agrees: 3 GiB more does not fit.
    await expectCode(h.createVolume('pvc-capacity-default-type-2', { capacity_range: { required_bytes: 3 * GiB } }), Code.RESOURCE_EXHAUSTED);
    // A type of its own is not held to it.
    assert.equal(Number((await h.rpc('GetCapacity', { parameters: { type: 'fast' } })).available_capacity), 90 * GiB);
  });
});

describe('GetCapacity without quotas', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController();
  });
  after(() => h.stop());

  it('reports the documented "unlimited" value and no maximum size', async () => {
    const res = await h.rpc('GetCapacity', {});
    assert.equal(Number(res.available_capacity), UNLIMITED_CAPACITY_BYTES);
    assert.equal(res.maximum_volume_size, null);
  });
});
