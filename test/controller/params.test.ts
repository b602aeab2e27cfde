import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '../../src/csi/errors';
import { CLUSTER_METADATA_KEY, ownedMetadata, parseMutableParams, parseSnapshotParams, parseVolumeParams } from '../../src/controller/params';

const invalid = (re: RegExp) => (e: any) => e.code === Code.INVALID_ARGUMENT && re.test(e.message);

describe('StorageClass parameters', () => {
  it('reads type and availability, and turns the sidecar keys into metadata', () => {
    const p = parseVolumeParams({
      type: 'fast',
      availability: 'az-2',
      'csi.storage.k8s.io/pvc/name': 'data',
      'csi.storage.k8s.io/pvc/namespace': 'shop',
      'csi.storage.k8s.io/pv/name': 'pvc-1',
    });
    assert.equal(p.volumeType, 'fast');
    assert.equal(p.availability, 'az-2');
    assert.deepEqual(p.metadata, { 'csi.storage.k8s.io/pvc/name': 'data', 'csi.storage.k8s.io/pvc/namespace': 'shop', 'csi.storage.k8s.io/pv/name': 'pvc-1' });
    assert.deepEqual(parseVolumeParams(undefined), { volumeType: undefined, availability: undefined, metadata: {} });
  });

  it('merges appendVolumeMetadata under the sidecar keys', () => {
    const p = parseVolumeParams({ appendVolumeMetadata: '{"team":"storage","csi.storage.k8s.io/pvc/name":"x"}', 'csi.storage.k8s.io/pvc/name': 'data' });
    assert.deepEqual(p.metadata, { team: 'storage', 'csi.storage.k8s.io/pvc/name': 'data' });
    assert.throws(() => parseVolumeParams({ appendVolumeMetadata: '{bad' }), invalid(/valid JSON/));
    assert.throws(() => parseVolumeParams({ appendVolumeMetadata: '["a"]' }), invalid(/JSON object/));
    assert.throws(() => parseVolumeParams({ appendVolumeMetadata: '{"n":1}' }), invalid(/'n' must be a string/));
  });

  it('names an unknown or empty parameter', () => {
    assert.throws(() => parseVolumeParams({ fstyp: 'ext4' }), invalid(/'fstyp'.*'type', 'availability'/));
    assert.throws(() => parseVolumeParams({ type: ' ' }), invalid(/'type' is empty/));
  });

  it("accepts the in-tree plugin's fsType key in any case, which the external-provisioner passes on after reading it", () => {
    for (const key of ['fsType', 'fstype', 'FSTYPE']) {
      assert.deepEqual(parseVolumeParams({ [key]: 'xfs', type: 'fast' }), { volumeType: 'fast', availability: undefined, metadata: {} });
    }
  });

  it('refuses a filesystem no node makes, under either filesystem key, and names fsType among the keys it knows', () => {
    assert.throws(() => parseVolumeParams({ fsType: 'ntfs' }), invalid(/'fsType' is "ntfs": the node plugin makes ext4, ext3, xfs/));
    assert.throws(() => parseVolumeParams({ 'csi.storage.k8s.io/fstype': 'btrfs' }), invalid(/'csi.storage.k8s.io\/fstype' is "btrfs"/));
    assert.throws(() => parseVolumeParams({ fstyp: 'ext4' }), invalid(/'appendVolumeMetadata', 'fsType'/));
  });

  it('lets appendVolumeMetadata override the cluster key only', () => {
    assert.deepEqual(ownedMetadata('k8s-a', {}), { [CLUSTER_METADATA_KEY]: 'k8s-a' });
    assert.deepEqual(ownedMetadata('k8s-a', { [CLUSTER_METADATA_KEY]: 'other' }), { [CLUSTER_METADATA_KEY]: 'other' });
  });
});

describe('VolumeAttributesClass parameters', () => {
  it('accepts only type', () => {
    assert.deepEqual(parseMutableParams({ type: 'gold' }), { volumeType: 'gold' });
    assert.deepEqual(parseMutableParams({}), { volumeType: undefined });
    // csi-resizer --extra-modify-metadata
    assert.deepEqual(parseMutableParams({ type: 'gold', 'csi.storage.k8s.io/pvc/name': 'data', 'csi.storage.k8s.io/pv/name': 'pvc-1' }), { volumeType: 'gold' });
    assert.throws(() => parseMutableParams({ iops: '100' }), invalid(/'iops'.*only mutable parameter is 'type'/));
  });
});

describe('VolumeSnapshotClass parameters', () => {
  it('defaults to a plain snapshot', () => {
    assert.deepEqual(parseSnapshotParams(undefined), { kind: 'snapshot', force: false, incremental: false, availability: undefined, metadata: {} });
  });

  it('reads backups with their options and the sidecar metadata', () => {
    const p = parseSnapshotParams({
      type: 'backup',
      'force-create': 'True',
      incremental: 'true',
      availability: 'backup-az',
      'backup-max-duration-seconds-per-gb': '20',
      'csi.storage.k8s.io/volumesnapshot/name': 'nightly',
    });
    assert.deepEqual(p, { kind: 'backup', force: true, incremental: true, availability: 'backup-az', metadata: { 'csi.storage.k8s.io/volumesnapshot/name': 'nightly' } });
  });

  it('refuses what does not fit', () => {
    assert.throws(() => parseSnapshotParams({ type: 'clone' }), invalid(/'snapshot' or 'backup'/));
    assert.throws(() => parseSnapshotParams({ 'force-create': 'yes' }), invalid(/'true' or 'false'/));
    assert.throws(() => parseSnapshotParams({ incremental: 'true' }), invalid(/only to type 'backup'/));
    assert.throws(() => parseSnapshotParams({ 'backup-max-duration-seconds-per-gb': 'ten' }), invalid(/whole number/));
    assert.throws(() => parseSnapshotParams({ force: 'true' }), invalid(/'force'/));
  });
});
