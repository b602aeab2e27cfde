import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { Code } from '../../src/csi/errors';
import { accessibleTopology, chooseVolumeZone, computeZonesFor, volumeZoneFor } from '../../src/controller/topology';

const t = (zone: string) => ({ segments: { [TOPOLOGY_ZONE_KEY]: zone } });
const azMap = { 'compute-1': 'nova', 'compute-2': 'nova', 'compute-3': 'ceph-3' };

describe('zones', () => {
  it('maps compute zones to volume zones, unmapped ones to themselves', () => {
    assert.equal(volumeZoneFor('compute-1', azMap), 'nova');
    assert.equal(volumeZoneFor('other', azMap), 'other');
    assert.deepEqual(computeZonesFor('nova', azMap), ['compute-1', 'compute-2', 'nova']);
    assert.deepEqual(computeZonesFor('compute-1', azMap), []);
    assert.deepEqual(accessibleTopology('ceph-3', azMap), [t('ceph-3'), t('compute-3')]);
    assert.deepEqual(accessibleTopology('', azMap), []);
  });

  it('takes the first preferred zone reachable from the requisite ones, then the first requisite', () => {
    const req = { requisite: [t('compute-3'), t('compute-1')], preferred: [t('elsewhere'), t('compute-1')] };
    assert.equal(chooseVolumeZone(req, undefined, azMap), 'nova');
    assert.equal(chooseVolumeZone({ requisite: [t('compute-3')], preferred: [] }, undefined, azMap), 'ceph-3');
    assert.equal(chooseVolumeZone({ requisite: [], preferred: [t('compute-2')] }, undefined, azMap), 'nova');
    assert.equal(chooseVolumeZone(null, undefined, azMap), undefined);
    assert.equal(chooseVolumeZone({ requisite: [{ segments: { other: 'x' } }], preferred: [] }, undefined, azMap), undefined);
  });

  it('keeps a fixed zone when a requisite zone reaches it, and otherwise answers RESOURCE_EXHAUSTED (the CO may reschedule)', () => {
    const req = { requisite: [t('compute-1')], preferred: [] };
    assert.equal(chooseVolumeZone(req, { zone: 'nova', why: 'test' }, azMap), 'nova');
    assert.equal(chooseVolumeZone(null, { zone: 'anything', why: 'test' }, azMap), 'anything');
    assert.throws(
      () => chooseVolumeZone(req, { zone: 'ceph-3', why: 'the StorageClass parameter availability=ceph-3' }, azMap),
      (e: any) => e.code === Code.RESOURCE_EXHAUSTED && /availability=ceph-3.*compute-1/.test(e.message),
    );
  });
});
