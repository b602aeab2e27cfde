import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadCsi } from '../../src/csi/proto';
import { listSnapshotsEntrySize, listVolumesEntrySize } from '../../src/controller/wire-size';
import type { _csi_v1_ListSnapshotsResponse_Entry as SnapshotEntry } from '../../src/gen/csi/v1/ListSnapshotsResponse';
import type { _csi_v1_ListVolumesResponse_Entry as Entry } from '../../src/gen/csi/v1/ListVolumesResponse';

const ZONE = 'topology.cinder.csi.openstack.org/zone';

describe('ListVolumes entry wire size', () => {
  const serialize = loadCsi().csi.v1.Controller.service.ListVolumes.responseSerialize;
  const encoded = (entries: Entry[]) => serialize({ entries }).length;

  const entries: Record<string, Entry> = {
    'plain, available': {
      volume: { volume_id: '5f3c1b7e-0d47-4c1e-9d43-6f2b8a1c0e11', capacity_bytes: 2 ** 30, volume_context: {}, content_source: null, accessible_topology: [{ segments: { [ZONE]: 'nova' } }] },
      status: { published_node_ids: [], volume_condition: { abnormal: false, message: 'volume is available' } },
    },
    'from a snapshot, another cloud, published twice, abnormal': {
      volume: {
        volume_id: 'east:5f3c1b7e-0d47-4c1e-9d43-6f2b8a1c0e11',
        capacity_bytes: 5 * 2 ** 40,
        volume_context: { resizeRequired: 'true' },
        content_source: { snapshot: { snapshot_id: 'east:0a0b0c0d-0000-4000-8000-000000000001' } },
        accessible_topology: [{ segments: { [ZONE]: 'az-é' } }, { segments: { [ZONE]: 'az-2', other: '' } }],
      },
      status: {
        published_node_ids: ['11111111-2222-4333-8444-555555555555', '66666666-7777-4888-9999-000000000000'],
        volume_condition: { abnormal: true, message: `Cinder reports volume x in status 'error'; ${'long reason '.repeat(20)}` },
      },
    },
    'a clone, no topology, no status': {
      volume: { volume_id: 'v', capacity_bytes: 0, volume_context: {}, content_source: { volume: { volume_id: 'src' } }, accessible_topology: [] },
    },
  };

  for (const [name, entry] of Object.entries(entries)) {
    it(`matches the encoder: ${name}`, () => {
      assert.equal(listVolumesEntrySize(entry), encoded([entry]));
    });
  }

  it('adds up over several entries', () => {
    const all = Object.values(entries);
    assert.equal(all.reduce((sum, e) => sum + listVolumesEntrySize(e), 0), encoded(all));
  });
});

describe('ListSnapshots entry wire size', () => {
  const serialize = loadCsi().csi.v1.Controller.service.ListSnapshots.responseSerialize;
  const encoded = (entries: SnapshotEntry[]) => serialize({ entries }).length;

  const entries: Record<string, SnapshotEntry> = {
    'ready, with a creation time': {
      snapshot: {
        snapshot_id: '0a0b0c0d-0000-4000-8000-000000000001',
        source_volume_id: '5f3c1b7e-0d47-4c1e-9d43-6f2b8a1c0e11',
        size_bytes: 5 * 2 ** 40,
        creation_time: { seconds: 1_764_000_000, nanos: 123_000_000 },
        ready_to_use: true,
        group_snapshot_id: '',
      },
    },
    'not ready, another cloud, no nanos': {
      snapshot: { snapshot_id: 'east:b', source_volume_id: 'east:v', size_bytes: 2 ** 30, creation_time: { seconds: 1, nanos: 0 }, ready_to_use: false, group_snapshot_id: 'g' },
    },
    'no creation time, no size': {
      snapshot: { snapshot_id: 's', source_volume_id: 'v', size_bytes: 0, creation_time: null, ready_to_use: false, group_snapshot_id: '' },
    },
  };

  for (const [name, entry] of Object.entries(entries)) {
    it(`matches the encoder: ${name}`, () => {
      assert.equal(listSnapshotsEntrySize(entry), encoded([entry]));
    });
  }

  it('adds up over several entries', () => {
    const all = Object.values(entries);
    assert.equal(all.reduce((sum, e) => sum + listSnapshotsEntrySize(e), 0), encoded(all));
  });
});
