import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNotFound } from '../../src/openstack/errors';
import { CLUSTER_METADATA_KEY } from '../../src/controller/params';
import { until } from '../helpers/server';
import { Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('CreateSnapshot, DeleteSnapshot, GetSnapshot, ListSnapshots', () => {
  let h: ControllerHarness;
  let volumeId: string;
  before(async () => {
    h = await startController();
    volumeId = await h.createVolume('pvc-snap-source', { capacity_range: { required_bytes: 2 * GiB } });
  });
  after(() => h.stop());

  const snapshot = (name: string, extra: Record<string, unknown> = {}) =>
    h.rpc('CreateSnapshot', { name, source_volume_id: volumeId, ...extra }).then((r) => r.snapshot);

  it('blocks until Cinder has made the snapshot (the spec: until it is cut), then answers ready_to_use true', async () => {
    h.driver.sim.control.setDurations({ snapshot: 1200 });
    try {
      const started = Date.now();
      const first = await snapshot('snap-sync', { parameters: { 'csi.storage.k8s.io/volumesnapshot/name': 'nightly' } });
      assert.ok(Date.now() - started >= 1100, 'CreateSnapshot answered before Cinder had made the snapshot');
      assert.equal(first.ready_to_use, true);
      assert.equal(first.source_volume_id, volumeId);
      assert.equal(Number(first.size_bytes), 2 * GiB);
      assert.ok(Number(first.creation_time.seconds) > 1_700_000_000);
      const stored = await h.cloud.blockStorage.getSnapshot(first.snapshot_id);
      assert.equal(stored.status, 'available');
      assert.equal(stored.metadata[CLUSTER_METADATA_KEY], 'kubernetes');
      assert.equal(stored.metadata['csi.storage.k8s.io/volumesnapshot/name'], 'nightly');
      const again = await snapshot('snap-sync', { parameters: { 'csi.storage.k8s.io/volumesnapshot/name': 'nightly' } });
      assert.equal(again.snapshot_id, first.snapshot_id);
      assert.equal(again.ready_to_use, true);
      const all = await h.cloud.blockStorage.listSnapshots({ name: 'snap-sync' });
      assert.equal(all.items.length, 1);
    } finally {
      h.driver.sim.control.setDurations({ snapshot: 50 });
    }
  });

  it('a deadline that passes first is DEADLINE_EXCEEDED, and the retry waits on for the same snapshot', async () => {
    h.driver.sim.control.setDurations({ snapshot: 1500 });
    try {
      await expectCode(h.rpc('CreateSnapshot', { name: 'snap-slow', source_volume_id: volumeId }, 500), Code.DEADLINE_EXCEEDED);
      const [made] = (await h.cloud.blockStorage.listSnapshots({ name: 'snap-slow' })).items;
      assert.equal(made.status, 'creating');
      const retry = await snapshot('snap-slow');
      assert.equal(retry.snapshot_id, made.id);
      assert.equal(retry.ready_to_use, true);
      assert.equal((await h.cloud.blockStorage.listSnapshots({ name: 'snap-slow' })).items.length, 1);
    } finally {
      h.driver.sim.control.setDurations({ snapshot: 50 });
    }
  });

  it('ListSnapshots leaves out a snapshot Cinder is still making (the spec: not before it is cut)', async () => {
    h.driver.sim.control.setDurations({ snapshot: 1000 });
    try {
      const making = await h.cloud.blockStorage.createSnapshot({ volumeId, name: 'snap-in-progress', force: false });
      const listed = async () => {
        const all = await h.rpc('ListSnapshots', { source_volume_id: volumeId });
        const byId = await h.rpc('ListSnapshots', { snapshot_id: making.id });
        return [all.entries.some((e: any) => e.snapshot.snapshot_id === making.id), byId.entries.length === 1];
      };
      assert.deepEqual(await listed(), [false, false]);
      await h.cloud.waiter.snapshot(making.id, { target: ['available'], transient: ['creating'] });
      assert.deepEqual(await listed(), [true, true]);
    } finally {
      h.driver.sim.control.setDurations({ snapshot: 50 });
    }
  });

  it('a snapshot Cinder failed is deleted and reported INTERNAL, pointing at the backend\'s capacity too (Cinder leaves no message for that)', async () => {
    h.driver.sim.control.setDurations({ snapshot: 600 });
    try {
      await expectCode(h.rpc('CreateSnapshot', { name: 'snap-failed', source_volume_id: volumeId }, 200), Code.DEADLINE_EXCEEDED);
      const [made] = (await h.cloud.blockStorage.listSnapshots({ name: 'snap-failed' })).items;
      await h.cloud.waiter.snapshot(made.id, { target: ['available'], transient: ['creating'] });
      h.driver.sim.control.setSnapshotStatus(made.id, 'error');
      const err = await expectCode(snapshot('snap-failed'), Code.INTERNAL);
      assert.match(err.details, new RegExp(`could not make snapshot ${made.id} .*status 'error'; .*no backend has room for a snapshot, so check the backend's free capacity too\\)\\. It was deleted`));
      await h.cloud.waiter.snapshot(made.id, { target: [], transient: ['deleting'], goneIsTarget: true });
    } finally {
      h.driver.sim.control.setDurations({ snapshot: 50 });
    }
  });

  it('checks its arguments', async () => {
    await expectCode(h.rpc('CreateSnapshot', { source_volume_id: volumeId }), Code.INVALID_ARGUMENT);
    await expectCode(h.rpc('CreateSnapshot', { name: 'snap-nosource' }), Code.INVALID_ARGUMENT);
    let err = await expectCode(snapshot('snap-badparam', { parameters: { 'force-crate': 'true' } }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'force-crate'/);
    err = await expectCode(snapshot('snap-badtype', { parameters: { type: 'clone' } }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'snapshot' or 'backup'/);
    err = await expectCode(snapshot('snap-badbool', { parameters: { 'force-create': 'yes' } }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'true' or 'false'/);
    await expectCode(
      h.rpc('CreateSnapshot', { name: 'snap-novolume', source_volume_id: '00000000-0000-4000-8000-000000000000' }),
      Code.NOT_FOUND,
    );
  });

  it('answers ALREADY_EXISTS for the same name on another volume', async () => {
    await snapshot('snap-taken');
    const other = await h.createVolume('pvc-snap-other');
    const err = await expectCode(h.rpc('CreateSnapshot', { name: 'snap-taken', source_volume_id: other }), Code.ALREADY_EXISTS);
    assert.match(err.details, /snap-taken/);
  });

  // Snapshots and backups share the name space (and the IDs) of VolumeSnapshots.
  it('answers ALREADY_EXISTS for a name a copy of the other type holds, making nothing', async () => {
    const snap = await snapshot('snap-or-backup');
    let err = await expectCode(snapshot('snap-or-backup', { parameters: { type: 'backup' } }), Code.ALREADY_EXISTS);
    assert.match(err.details, new RegExp(`a Cinder snapshot named 'snap-or-backup' already exists \\(${snap.snapshot_id}, of volume ${volumeId}\\), and this request asks for a backup`));
    assert.match(err.details, new RegExp(`set type: snapshot back in its VolumeSnapshotClass, or delete the snapshot \\('openstack volume snapshot delete ${snap.snapshot_id}'\\)`));
    assert.deepEqual((await h.cloud.blockStorage.listBackups({ name: 'snap-or-backup' })).items, []);

    const backup = await snapshot('backup-or-snap', { parameters: { type: 'backup' } });
    await h.cloud.waiter.backup(backup.snapshot_id, { target: ['available'], transient: ['creating'] });
    await h.cloud.waiter.volume(volumeId, { target: ['available'], transient: ['backing-up'] });
    err = await expectCode(snapshot('backup-or-snap'), Code.ALREADY_EXISTS);
    assert.match(err.details, new RegExp(`a Cinder backup named 'backup-or-snap' already exists \\(${backup.snapshot_id}, .* asks for a snapshot`));
    assert.deepEqual((await h.cloud.blockStorage.listSnapshots({ name: 'backup-or-snap' })).items, []);
    assert.equal((await snapshot('backup-or-snap', { parameters: { type: 'backup' } })).snapshot_id, backup.snapshot_id, 'the same type is still a retry');
    await h.rpc('DeleteSnapshot', { snapshot_id: snap.snapshot_id });
    await h.rpc('DeleteSnapshot', { snapshot_id: backup.snapshot_id });
  });

  it('gets, lists by ID and by source volume, and pages with a signed token', async () => {
    const other = await h.createVolume('pvc-snap-list');
    const mine = await Promise.all(['snap-l1', 'snap-l2', 'snap-l3'].map((n) => h.rpc('CreateSnapshot', { name: n, source_volume_id: other }).then((r) => r.snapshot.snapshot_id)));
    const got = await h.rpc('GetSnapshot', { snapshot_id: mine[0] });
    assert.equal(got.snapshot.source_volume_id, other);
    await expectCode(h.rpc('GetSnapshot', { snapshot_id: '00000000-0000-4000-8000-000000000000' }), Code.NOT_FOUND);
    await expectCode(h.rpc('GetSnapshot', {}), Code.INVALID_ARGUMENT);

    const byId = await h.rpc('ListSnapshots', { snapshot_id: mine[1] });
    assert.deepEqual(byId.entries.map((e: any) => e.snapshot.snapshot_id), [mine[1]]);
    const missing = await h.rpc('ListSnapshots', { snapshot_id: '00000000-0000-4000-8000-000000000000' });
    assert.deepEqual(missing.entries, []);
    const bySource = await h.rpc('ListSnapshots', { source_volume_id: other });
    assert.deepEqual(bySource.entries.map((e: any) => e.snapshot.snapshot_id).sort(), [...mine].sort());

    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await h.rpc('ListSnapshots', { max_entries: 2, starting_token: token });
      assert.ok(page.entries.length <= 2);
      seen.push(...page.entries.map((e: any) => e.snapshot.snapshot_id));
      token = page.next_token;
      pages++;
    } while (token && pages < 50);
    assert.equal(token, '');
    const everything = await h.cloud.blockStorage.listSnapshots({});
    assert.deepEqual([...seen].sort(), everything.items.map((s) => s.id).sort());
    assert.equal(new Set(seen).size, seen.length, 'no snapshot is listed twice');

    await expectCode(h.rpc('ListSnapshots', { starting_token: 'not-ours' }), Code.ABORTED);
    await expectCode(h.rpc('ListSnapshots', { max_entries: -1 }), Code.INVALID_ARGUMENT);
  });

  it('deletes idempotently, waiting for a snapshot that is still being made', async () => {
    h.driver.sim.control.setDurations({ snapshot: 500 });
    try {
      // Left 'creating' by a CreateSnapshot whose deadline passed.
      const snap = await h.cloud.blockStorage.createSnapshot({ volumeId, name: 'snap-delete-early', force: false });
      assert.equal(snap.status, 'creating');
      await h.rpc('DeleteSnapshot', { snapshot_id: snap.id });
      await assert.rejects(h.cloud.blockStorage.getSnapshot(snap.id), (e) => isNotFound(e));
      await h.rpc('DeleteSnapshot', { snapshot_id: snap.id });
      await h.rpc('DeleteSnapshot', { snapshot_id: '00000000-0000-4000-8000-000000000000' });
      await expectCode(h.rpc('DeleteSnapshot', {}), Code.INVALID_ARGUMENT);
    } finally {
      h.driver.sim.control.setDurations({ snapshot: 50 });
    }
  });

  // Cinder's volume manager on SnapshotIsBusy: the snapshot is put back to 'available', with a message.
  it('answers FAILED_PRECONDITION at once, in Cinder\'s words, when the backend refuses a snapshot delete as busy', async () => {
    const made = await h.rpc('CreateSnapshot', { name: 'snap-delete-busy', source_volume_id: volumeId });
    const id = made.snapshot.snapshot_id;
    h.driver.sim.control.failDeletes(1);
    const err = await expectCode(h.rpc('DeleteSnapshot', { snapshot_id: id }, 10_000), Code.FAILED_PRECONDITION);
    assert.match(err.details, /refused to delete snapshot .* as busy and put it back to 'available' \(Cinder says: delete snapshot: Snapshot is busy\.\)/);
    await h.rpc('DeleteSnapshot', { snapshot_id: id });
    await assert.rejects(h.cloud.blockStorage.getSnapshot(id), (e) => isNotFound(e));
  });

  it('a delete Cinder refuses says why, from the copy\'s status: busy (ABORTED), an earlier failed delete, or incremental backups on it', async () => {
    const source = await h.createVolume('pvc-delete-refused');
    const snap = (await h.rpc('CreateSnapshot', { name: 'snap-delete-refused', source_volume_id: source })).snapshot.snapshot_id;
    const full = (await h.rpc('CreateSnapshot', { name: 'backup-delete-refused', source_volume_id: source, parameters: { type: 'backup' } })).snapshot.snapshot_id;
    await h.cloud.waiter.backup(full, { target: ['available'], transient: ['creating'] });
    await h.cloud.waiter.volume(source, { target: ['available'], transient: ['backing-up'] });
    const control = h.driver.sim.control;
    const refused = async (id: string, code: number, says: RegExp) => {
      const err = await expectCode(h.rpc('DeleteSnapshot', { snapshot_id: id }), code);
      assert.match(err.details, says);
      assert.doesNotMatch(err.details, /being restored from it, the CO retries once they are done/);
    };

    control.setSnapshotStatus(snap, 'backing-up');
    await refused(snap, Code.ABORTED, /it is 'backing-up' \(a backup is being taken from it\), and the CO retries when Cinder has finished/);
    control.setSnapshotStatus(snap, 'error_deleting');
    await refused(snap, Code.FAILED_PRECONDITION, new RegExp(`status 'error_deleting'.*'openstack volume snapshot set --state error ${snap}'`));
    control.setBackupStatus(full, 'restoring');
    await refused(full, Code.ABORTED, /it is 'restoring' \(a volume is being restored from it\)/);
    control.setBackupStatus(full, 'error_deleting');
    await refused(full, Code.FAILED_PRECONDITION, new RegExp(`'openstack volume backup set --state error ${full}'`));
    control.setBackupStatus(full, 'available');
    const incremental = (await h.rpc('CreateSnapshot', { name: 'incremental-delete-refused', source_volume_id: source, parameters: { type: 'backup', incremental: 'true' } })).snapshot.snapshot_id;
    await h.cloud.waiter.backup(incremental, { target: ['available'], transient: ['creating'] });
    await refused(full, Code.FAILED_PRECONDITION, /Incremental backups exist for this backup.*incremental backups build on it: delete their VolumeSnapshots first/);

    control.setSnapshotStatus(snap, 'available');
    for (const id of [snap, incremental, full]) await h.rpc('DeleteSnapshot', { snapshot_id: id });
  });

  it('a snapshot found by name while a backup is taken from it was cut: ready_to_use false, not deleted as failed', async () => {
    const first = await h.rpc('CreateSnapshot', { name: 'snap-backing-up', source_volume_id: volumeId });
    const id = first.snapshot.snapshot_id;
    h.driver.sim.control.setSnapshotStatus(id, 'backing-up');
    const busy = await h.rpc('CreateSnapshot', { name: 'snap-backing-up', source_volume_id: volumeId });
    assert.equal(busy.snapshot.snapshot_id, id);
    assert.equal(busy.snapshot.ready_to_use, false);
    assert.equal((await h.cloud.blockStorage.getSnapshot(id)).status, 'backing-up');
    h.driver.sim.control.setSnapshotStatus(id, 'available');
    assert.equal((await h.rpc('CreateSnapshot', { name: 'snap-backing-up', source_volume_id: volumeId })).snapshot.ready_to_use, true);
    await h.rpc('DeleteSnapshot', { snapshot_id: id });
  });

  // The snapshotter keeps the first snapshot_id it is given (a backup's comes with ready_to_use false):
  // a failed backup found by name must not be replaced by a new one under an ID it never learns.
  it('a backup that fails after its ID was handed out is kept and reported, never silently made again', async () => {
    const source = await h.createVolume('pvc-backup-fails');
    h.driver.sim.control.setDurations({ backup: 3000 });
    try {
      const first = await h.rpc('CreateSnapshot', { name: 'backup-fails', source_volume_id: source, parameters: { type: 'backup' } });
      const id = first.snapshot.snapshot_id;
      assert.equal(first.snapshot.ready_to_use, false);
      h.driver.sim.control.setBackupStatus(id, 'error');
      for (let retry = 0; retry < 2; retry++) {
        const err = await expectCode(h.rpc('CreateSnapshot', { name: 'backup-fails', source_volume_id: source, parameters: { type: 'backup' } }), Code.INTERNAL);
        assert.match(err.details, new RegExp(`could not make backup ${id} .* It is kept, because the VolumeSnapshot already names it`));
      }
      assert.equal((await h.cloud.blockStorage.getBackup(id)).status, 'error');
      const named = await h.cloud.blockStorage.listBackups({ name: 'backup-fails' });
      assert.deepEqual(named.items.map((b) => b.id), [id], 'no second backup under the same name');
      await h.rpc('DeleteSnapshot', { snapshot_id: id });
      await assert.rejects(h.cloud.blockStorage.getBackup(id), (e) => isNotFound(e));
    } finally {
      h.driver.sim.control.setDurations({ backup: 50 });
    }
  });

  it('makes a backup with type: backup, restores a volume from it and deletes it', async () => {
    h.driver.sim.control.setDurations({ backup: 600 });
    try {
      const first = await snapshot('backup-1', { parameters: { type: 'backup' } });
      assert.equal(first.ready_to_use, false);
      const backup = await h.cloud.blockStorage.getBackup(first.snapshot_id);
      assert.equal(backup.volumeId, volumeId);
      await h.cloud.waiter.backup(backup.id, { target: ['available'], transient: ['creating'] });
      const ready = await snapshot('backup-1', { parameters: { type: 'backup' } });
      assert.equal(ready.snapshot_id, first.snapshot_id);
      assert.equal(ready.ready_to_use, true);
      assert.equal((await h.rpc('GetSnapshot', { snapshot_id: backup.id })).snapshot.ready_to_use, true);

      const restored = await h.rpc('CreateVolume', {
        name: 'pvc-from-backup',
        volume_capabilities: [MOUNT_RWO],
        capacity_range: { required_bytes: 3 * GiB },
        volume_content_source: { snapshot: { snapshot_id: backup.id } },
      });
      assert.equal(restored.volume.volume_context.resizeRequired, 'true');
      assert.equal((await h.cloud.blockStorage.getVolume(restored.volume.volume_id)).status, 'available');
      // The external-provisioner deletes a volume made for a data source when content_source is missing.
      // Cinder's volume record has no backup_id, so this comes from the driver's own metadata.
      assert.deepEqual(restored.volume.content_source?.snapshot, { snapshot_id: backup.id });
      const again = await h.rpc('CreateVolume', {
        name: 'pvc-from-backup',
        volume_capabilities: [MOUNT_RWO],
        capacity_range: { required_bytes: 3 * GiB },
        volume_content_source: { snapshot: { snapshot_id: backup.id } },
      });
      assert.equal(again.volume.volume_id, restored.volume.volume_id);
      assert.deepEqual(again.volume.content_source?.snapshot, { snapshot_id: backup.id });
      const empty = await expectCode(
        h.rpc('CreateVolume', { name: 'pvc-from-backup', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 3 * GiB } }),
        Code.ALREADY_EXISTS,
      );
      assert.match(empty.details, new RegExp(`made from backup ${backup.id}, not empty`));
      await h.rpc('DeleteVolume', { volume_id: restored.volume.volume_id });

      await h.rpc('DeleteSnapshot', { snapshot_id: backup.id });
      await assert.rejects(h.cloud.blockStorage.getBackup(backup.id), (e) => isNotFound(e));
    } finally {
      h.driver.sim.control.setDurations({ backup: 50 });
    }
  });

  // ABORTED keeps csi-snapshotter retrying; FAILED_PRECONDITION is final for it, and the force-create hint was wrong here.
  it('answers ABORTED while Cinder works on the volume (extending, backing-up), without the force-create hint, and takes the copy on the retry', async () => {
    const id = await h.createVolume('pvc-snap-busy');
    h.driver.sim.control.setDurations({ extend: 1000, backup: 1000 });
    try {
      await h.cloud.blockStorage.extendVolume(id, 2);
      for (const type of ['snapshot', 'backup']) {
        const err = await expectCode(h.rpc('CreateSnapshot', { name: `${type}-while-extending`, source_volume_id: id, parameters: { type } }), Code.ABORTED);
        assert.match(err.details, new RegExp(`volume ${id} is 'extending' in Cinder; the ${type} is taken when Cinder has finished, and the snapshotter retries`));
        assert.doesNotMatch(err.details, /force-create/);
      }
      await h.cloud.waiter.volume(id, { target: ['available'], transient: ['extending'] });

      const backup = await h.rpc('CreateSnapshot', { name: 'backup-holds-volume', source_volume_id: id, parameters: { type: 'backup' } });
      assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'backing-up');
      const err = await expectCode(h.rpc('CreateSnapshot', { name: 'snapshot-while-backing-up', source_volume_id: id }), Code.ABORTED);
      assert.match(err.details, /'backing-up' in Cinder; the snapshot is taken when Cinder has finished/);
      assert.deepEqual((await h.cloud.blockStorage.listSnapshots({ volumeId: id })).items, [], 'nothing was made');
      await h.cloud.waiter.backup(backup.snapshot.snapshot_id, { target: ['available'], transient: ['creating'] });
      const snap = await h.rpc('CreateSnapshot', { name: 'snapshot-while-backing-up', source_volume_id: id });
      assert.equal(snap.snapshot.ready_to_use, true);
      await h.rpc('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
      await h.rpc('DeleteSnapshot', { snapshot_id: backup.snapshot.snapshot_id });
    } finally {
      h.driver.sim.control.setDurations({ extend: 50, backup: 50 });
    }
  });

  it('a volume whose status changes just before Cinder refuses the copy is judged by its status after the refusal', async () => {
    const id = await h.createVolume('pvc-snap-race');
    const posts = () => h.driver.sim.control.counters()['POST /volume/v3/{project}/snapshots'] ?? 0;
    const before = posts();
    // Cinder receives the create and holds it while the volume goes 'extending' (an extend from elsewhere).
    h.driver.sim.control.addFault({ method: 'POST', pathPattern: '/snapshots$', delayMs: 400, times: 1 });
    const refused = expectCode(h.rpc('CreateSnapshot', { name: 'snap-race', source_volume_id: id }), Code.ABORTED);
    await until(() => posts() > before, 5000, 'the snapshot create reaching Cinder');
    h.driver.sim.control.setVolumeStatus(id, 'extending');
    try {
      const err = await refused;
      assert.match(err.details, /'extending' in Cinder; the snapshot is taken when Cinder has finished/);
    } finally {
      h.driver.sim.control.setVolumeStatus(id, 'available');
    }
  });

  it('answers FAILED_PRECONDITION for a volume in an error state, saying to repair or reset it, even with force-create', async () => {
    const id = await h.createVolume('pvc-snap-error');
    h.driver.sim.control.setVolumeStatus(id, 'error');
    try {
      for (const parameters of [{}, { 'force-create': 'true' }, { type: 'backup', 'force-create': 'true' }]) {
        const err = await expectCode(h.rpc('CreateSnapshot', { name: 'snap-of-error', source_volume_id: id, parameters }), Code.FAILED_PRECONDITION);
        assert.match(err.details, new RegExp(`volume ${id} is 'error' in Cinder.*repair the volume or reset its state \\('openstack volume set --state available'`));
        assert.doesNotMatch(err.details, /force-create/);
      }
    } finally {
      h.driver.sim.control.setVolumeStatus(id, 'available');
    }
  });

  it('an incremental backup that Cinder refuses says why: no full backup yet, one still being made, or a failed one', async () => {
    const id = await h.createVolume('pvc-incremental');
    const incremental = { type: 'backup', incremental: 'true' };
    let err = await expectCode(h.rpc('CreateSnapshot', { name: 'incremental-1', source_volume_id: id, parameters: incremental }), Code.FAILED_PRECONDITION);
    assert.match(err.details, /No backups available to do an incremental backup.*has no backup for an incremental one to build on: take a full backup first/);
    const full = (await h.rpc('CreateSnapshot', { name: 'full-1', source_volume_id: id, parameters: { type: 'backup' } })).snapshot.snapshot_id;
    await h.cloud.waiter.backup(full, { target: ['available'], transient: ['creating'] });
    await h.cloud.waiter.volume(id, { target: ['available'], transient: ['backing-up'] });
    for (const [status, code, says] of [
      ['creating', Code.ABORTED, /the snapshotter retries when Cinder has finished with it/],
      ['error', Code.FAILED_PRECONDITION, /delete that backup \(or take a full backup\)/],
    ] as const) {
      h.driver.sim.control.setBackupStatus(full, status);
      err = await expectCode(h.rpc('CreateSnapshot', { name: 'incremental-1', source_volume_id: id, parameters: incremental }), code);
      assert.match(err.details, new RegExp(`The parent backup must be available.*newest backup, ${full}, which is '${status}'`));
      assert.match(err.details, says);
    }
    h.driver.sim.control.setBackupStatus(full, 'available');
    const made = await h.rpc('CreateSnapshot', { name: 'incremental-1', source_volume_id: id, parameters: incremental });
    await h.cloud.waiter.backup(made.snapshot.snapshot_id, { target: ['available'], transient: ['creating'] });
    await h.rpc('DeleteSnapshot', { snapshot_id: made.snapshot.snapshot_id });
    await h.rpc('DeleteSnapshot', { snapshot_id: full });
  });

  it('backs up an attached volume only with force-create, telling the operator so', async () => {
    const id = await h.createVolume('pvc-backup-attached');
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO });
    try {
      const err = await expectCode(h.rpc('CreateSnapshot', { name: 'backup-inuse', source_volume_id: id, parameters: { type: 'backup' } }), Code.FAILED_PRECONDITION);
      assert.match(err.details, /force-create/);
      const ok = await h.rpc('CreateSnapshot', { name: 'backup-inuse', source_volume_id: id, parameters: { type: 'backup', 'force-create': 'true' } });
      assert.equal(ok.snapshot.source_volume_id, id);
      await h.cloud.waiter.backup(ok.snapshot.snapshot_id, { target: ['available'], transient: ['creating'] });
      await h.rpc('DeleteSnapshot', { snapshot_id: ok.snapshot.snapshot_id });
    } finally {
      await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    }
  });
});
