import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Volume } from '../../src/openstack/types';
import { publishedNodeIds, timestampOf, volumeCondition } from '../../src/controller/views';

const volume = (over: Partial<Volume>): Volume => ({
  id: 'v1', name: 'n', description: '', size: 1, status: 'available', availabilityZone: 'nova', volumeType: null, multiattach: false,
  metadata: {}, snapshotId: null, sourceVolumeId: null, backupId: null, attachments: [], createdAt: '', migrationStatus: null, ...over,
});

describe('views', () => {
  it('reads Cinder times (UTC without a zone, microseconds) into protobuf timestamps', () => {
    assert.deepEqual(timestampOf('2024-01-02T03:04:05.123456'), { seconds: 1704164645, nanos: 123456000 });
    assert.deepEqual(timestampOf('2024-01-02T03:04:05Z'), { seconds: 1704164645, nanos: 0 });
    assert.deepEqual(timestampOf('2024-01-02T05:04:05+02:00'), { seconds: 1704164645, nanos: 0 });
    assert.equal(timestampOf(''), null);
    assert.equal(timestampOf('yesterday'), null);
  });

  it('calls error states and failed migrations abnormal, with what to do', () => {
    assert.equal(volumeCondition(volume({})).abnormal, false);
    assert.equal(volumeCondition(volume({ status: 'in-use' })).abnormal, false);
    const err = volumeCondition(volume({ status: 'error_restoring' }));
    assert.equal(err.abnormal, true);
    assert.match(err.message ?? '', /error_restoring.*openstack volume message list/);
    assert.equal(volumeCondition(volume({ migrationStatus: 'error' })).abnormal, true);
  });

  it('lists each published node once', () => {
    const a = (serverId: string) => ({ attachmentId: `x-${serverId}`, serverId });
    assert.deepEqual(publishedNodeIds(volume({ attachments: [a('s2'), a('s1'), a('s2')] })), ['s1', 's2']);
  });
});
