// The controller under the call patterns of the sidecars deploy/controller.yaml ships
// (csi-provisioner v6.3, csi-attacher v4.13, csi-resizer v2.2, csi-snapshotter v8.6),
// each test naming the sidecar source whose behaviour it checks. What a sidecar does
// with an error code (kubernetes-csi sources):
// - external-resizer pkg/util/util.go IsFinalError: CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE,
//   RESOURCE_EXHAUSTED and ABORTED are not final ("the operation may still be in progress");
//   IsResizeInfeasibleError: INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND; modify: INVALID_ARGUMENT only.
// - external-snapshotter pkg/sidecar-controller/snapshot_controller.go isCSIFinalError: the same
//   five codes are not final; after a non-final one the content keeps its "being created"
//   annotation, and shouldDelete() refuses to delete it.
// - external-attacher pkg/attacher/attacher.go isFinalError: the same five; csi_handler.go retries
//   every error with backoff either way.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_RWO, Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

/** What csi-resizer's GetVolumeCapabilities (pkg/resizer/csi_resizer.go) sends for an RWO filesystem PV when the driver has SINGLE_NODE_MULTI_WRITER. */
const RESIZER_MOUNT_RWO = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' } };
const RESIZER_BLOCK_RWO = { block: {}, access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' } };

describe('the sidecars call patterns', () => {
  let h: ControllerHarness;
  let node: string;
  before(async () => {
    h = await startController();
    node = h.driver.sim.instances[0].id;
  });
  after(() => h.stop());

  // external-provisioner pkg/controller/controller.go (Provision): a capacity_bytes below the
  // PVC's request makes it DeleteVolume the new volume ("created volume capacity %v less than
  // requested capacity %v"); a PVC with a dataSource whose answer has no content_source is
  // deleted too ("volume content source missing"). Both checks run on every answer, including
  // the one to a retry after a timeout, which finds the volume by name.
  it('CreateVolume: capacity_bytes covers an unaligned request, and content_source is set on the first answer and on a retry', async () => {
    const source = await h.createVolume('pvc-sidecar-src', { capacity_range: { required_bytes: 2 * GiB } });
    const snap = (await h.rpc('CreateSnapshot', { name: 'snap-sidecar-src', source_volume_id: source })).snapshot;
    const requested = 2 * GiB + 512 * 1024 * 1024; // a PVC asking for 2.5Gi
    const cases = [
      { name: 'pvc-sidecar-from-snap', source: { snapshot: { snapshot_id: snap.snapshot_id } }, want: { type: 'snapshot', id: snap.snapshot_id } },
      { name: 'pvc-sidecar-clone', source: { volume: { volume_id: source } }, want: { type: 'volume', id: source } },
    ];
    for (const c of cases) {
      const req = { name: c.name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: requested }, volume_content_source: c.source };
      for (const attempt of ['first', 'retry']) {
        const { volume } = await h.rpc('CreateVolume', req);
        assert.ok(Number(volume.capacity_bytes) >= requested, `${c.name} ${attempt}: capacity_bytes ${volume.capacity_bytes} < requested ${requested}`);
        assert.ok(volume.content_source, `${c.name} ${attempt}: no content_source`);
        const got = c.want.type === 'snapshot' ? volume.content_source.snapshot?.snapshot_id : volume.content_source.volume?.volume_id;
        assert.equal(got, c.want.id, `${c.name} ${attempt}`);
      }
      assert.equal((await h.volumesNamed(c.name)).length, 1);
    }
  });

  // external-provisioner pkg/controller/controller.go: each CreateVolume runs under --timeout
  // (3m in deploy/controller.yaml); checkError() reads DEADLINE_EXCEEDED as
  // ProvisioningInBackground and calls CreateVolume again with the same request.
  it('CreateVolume cut off by the provisioner timeout answers a non-final code, and the retry gets the one volume', async () => {
    h.driver.sim.control.setDurations({ create: 1200 });
    try {
      const req = { name: 'pvc-sidecar-timeout', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } };
      await expectCode(h.rpc('CreateVolume', req, 300), Code.DEADLINE_EXCEEDED);
      const { volume } = await h.rpc('CreateVolume', req);
      const all = await h.volumesNamed('pvc-sidecar-timeout');
      assert.deepEqual(all.map((v) => v.id), [volume.volume_id]);
      assert.equal(all[0].status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  // external-attacher pkg/controller/csi_handler.go ReconcileVA with pkg/attacher/lister.go: every
  // --reconcile-sync it pages ListVolumes to the end and, for each VolumeAttachment, compares
  // va.Status.Attached with slices.Contains(published[volumeHandle], nodeID); any difference
  // force-syncs the VA (attach again, or detach). So published_node_ids must name exactly the
  // nodes the volume is attached to, and a repeated ControllerPublishVolume (the force-sync)
  // must answer the publish_context the attacher stored in va.Status.AttachmentMetadata.
  it('ListVolumes published_node_ids follows the real attachment, and a force-synced publish answers the same publish_context', async () => {
    const id = await h.createVolume('pvc-sidecar-reconcile');
    const publishedTo = async () => {
      const ids = new Map<string, string[]>();
      let token = '';
      do {
        const page = await h.rpc('ListVolumes', { starting_token: token });
        for (const e of page.entries) ids.set(e.volume.volume_id, e.status.published_node_ids);
        token = page.next_token;
      } while (token);
      return ids.get(id);
    };
    assert.deepEqual(await publishedTo(), []);
    const publish = { volume_id: id, node_id: node, volume_capability: RESIZER_MOUNT_RWO, readonly: false, volume_context: { 'storage.kubernetes.io/csiProvisionerIdentity': 'x' } };
    const first = await h.rpc('ControllerPublishVolume', publish);
    assert.deepEqual(await publishedTo(), [node]);
    const again = await h.rpc('ControllerPublishVolume', publish);
    assert.deepEqual(again.publish_context, first.publish_context);

    // Detached behind Kubernetes' back (an operator's 'openstack server remove volume'): the node
    // must leave the list, so that the attacher attaches again.
    await h.cloud.compute.detachVolume(node, id);
    await h.cloud.waiter.volume(id, { target: ['available'], transient: ['in-use', 'detaching'] });
    assert.deepEqual(await publishedTo(), []);
    const reattached = await h.rpc('ControllerPublishVolume', publish);
    assert.ok(reattached.publish_context.DevicePath);
    assert.deepEqual(await publishedTo(), [node]);
    await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    assert.deepEqual(await publishedTo(), []);
  });

  // external-attacher pkg/controller/csi_handler.go csiAttach/csiDetach: each call under --timeout
  // (3m); on any error the VA is re-queued and the same request sent again.
  it('ControllerPublishVolume cut off by the attacher timeout is joined by the retry: one attachment', async () => {
    const id = await h.createVolume('pvc-sidecar-attach-timeout');
    h.driver.sim.control.setDurations({ attach: 1200 });
    try {
      const publish = { volume_id: id, node_id: node, volume_capability: MOUNT_RWO };
      await expectCode(h.rpc('ControllerPublishVolume', publish, 300), Code.DEADLINE_EXCEEDED);
      const res = await h.rpc('ControllerPublishVolume', publish);
      assert.ok(res.publish_context.DevicePath);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.deepEqual(v.attachments.map((a) => a.serverId), [node]);
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
      await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });
    }
  });

  // external-resizer pkg/resizer/csi_resizer.go Resize: required_bytes is the PVC's new request
  // (no limit_bytes) and volume_capability always comes from the PV; the answer's capacity_bytes
  // becomes the PV's capacity and node_expansion_required decides between NodeResizePending
  // and finishing (pkg/controller/expand_and_recover.go callResizeOnPlugin).
  it('ControllerExpandVolume with the resizer request: capacity covers the request; node expansion only for a filesystem', async () => {
    const fsId = await h.createVolume('pvc-sidecar-grow-fs');
    const blockId = await h.createVolume('pvc-sidecar-grow-block', { volume_capabilities: [BLOCK_RWO] });
    const requested = 3 * GiB + 1;
    const fs = await h.rpc('ControllerExpandVolume', { volume_id: fsId, capacity_range: { required_bytes: requested }, volume_capability: RESIZER_MOUNT_RWO });
    assert.ok(Number(fs.capacity_bytes) >= requested);
    assert.equal(fs.node_expansion_required, true);
    const block = await h.rpc('ControllerExpandVolume', { volume_id: blockId, capacity_range: { required_bytes: requested }, volume_capability: RESIZER_BLOCK_RWO });
    assert.ok(Number(block.capacity_bytes) >= requested);
    assert.equal(block.node_expansion_required, false);
    // The resizer calls again when it failed to record the result: same answer, nothing asked of Cinder.
    const again = await h.rpc('ControllerExpandVolume', { volume_id: fsId, capacity_range: { required_bytes: requested }, volume_capability: RESIZER_MOUNT_RWO });
    assert.deepEqual(again, fs);
  });

  // external-snapshotter pkg/sidecar-controller/snapshot_controller.go: for a dynamic snapshot,
  // checkandUpdateContentStatusOperation polls ready_to_use by calling CreateSnapshot again
  // (createSnapshotWrapper); updateSnapshotContentStatus keeps the first snapshot handle and
  // creation time and sets restoreSize only from a size_bytes > 0. A pre-provisioned content
  // (spec.source.snapshotHandle) is polled with ListSnapshots{snapshot_id} instead
  // (pkg/snapshotter/snapshotter.go GetSnapshotStatus: no entry is an error).
  it('CreateSnapshot of a backup, polled by repeated CreateSnapshot and by ListSnapshots(snapshot_id): one ID, a stable creation_time, size and source', async () => {
    const source = await h.createVolume('pvc-sidecar-backup-src', { capacity_range: { required_bytes: 2 * GiB } });
    h.driver.sim.control.setDurations({ backup: 800 });
    try {
      const req = { name: 'snapshot-sidecar-backup', source_volume_id: source, parameters: { type: 'backup', 'csi.storage.k8s.io/volumesnapshot/name': 'vs' } };
      const first = (await h.rpc('CreateSnapshot', req)).snapshot;
      assert.equal(first.ready_to_use, false);
      assert.ok(first.creation_time && Number(first.creation_time.seconds) > 1_700_000_000, 'creation_time set');
      assert.equal(Number(first.size_bytes), 2 * GiB);
      assert.equal(first.source_volume_id, source);
      let polled = first;
      for (let i = 0; i < 50 && !polled.ready_to_use; i++) {
        await new Promise((r) => setTimeout(r, 100));
        polled = (await h.rpc('CreateSnapshot', req)).snapshot;
        assert.equal(polled.snapshot_id, first.snapshot_id);
        assert.deepEqual(polled.creation_time, first.creation_time);
      }
      assert.equal(polled.ready_to_use, true);
      const listed = await h.rpc('ListSnapshots', { snapshot_id: first.snapshot_id });
      assert.equal(listed.entries.length, 1);
      assert.equal(listed.entries[0].snapshot.ready_to_use, true);
      assert.deepEqual(listed.entries[0].snapshot.creation_time, first.creation_time);
      await h.rpc('DeleteSnapshot', { snapshot_id: first.snapshot_id });
    } finally {
      h.driver.sim.control.setDurations({ backup: 50 });
    }
  });
});

describe('the sidecars error-code expectations against a project at its quota', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { quotas: { gigabytes: 4, snapshots: 1 } } });
  });
  after(() => h.stop());

  // CSI spec (CreateSnapshot errors): not enough space is RESOURCE_EXHAUSTED. The snapshotter
  // (snapshot_controller.go isCSIFinalError) treats it as "maybe still in progress" and keeps the
  // content's being-created annotation, so nothing may be left in Cinder behind that answer.
  it('CreateSnapshot over the snapshot quota: RESOURCE_EXHAUSTED, and nothing is left in Cinder', async () => {
    const source = await h.createVolume('pvc-quota-snap-src');
    const one = (await h.rpc('CreateSnapshot', { name: 'snap-quota-1', source_volume_id: source })).snapshot;
    await expectCode(h.rpc('CreateSnapshot', { name: 'snap-quota-2', source_volume_id: source }), Code.RESOURCE_EXHAUSTED);
    assert.equal((await h.cloud.blockStorage.listSnapshots({ name: 'snap-quota-2' })).items.length, 0);
    await h.rpc('DeleteSnapshot', { snapshot_id: one.snapshot_id });
  });

  // external-resizer pkg/controller/expand_and_recover.go: after a non-final error the PVC stays
  // ControllerResizeInProgress and, not being in finalErrorPVCs, every later attempt re-uses
  // status.allocatedResources, so a user who lowers the request (recovery from expansion failure,
  // GA in Kubernetes 1.34) is ignored and the impossible size is retried forever. Cinder's quota
  // refusal is a definite answer: nothing is in progress, so the code must be final (the CSI spec's
  // ControllerExpandVolume row for an unsupported capacity is OUT_OF_RANGE).
  it(
    'ControllerExpandVolume refused by the quota answers a final code, so the resizer lets the user lower the request',
    async () => {
      const id = await h.createVolume('pvc-quota-grow');
      const err = await h
        .rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 16 * GiB }, volume_capability: RESIZER_MOUNT_RWO })
        .then(() => assert.fail('the extend past the quota succeeded'), (e) => e);
      assert.equal((await h.cloud.blockStorage.getVolume(id)).size, 1, 'the volume was not extended');
      const nonFinal = [Code.CANCELLED, Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED, Code.ABORTED];
      assert.ok(!nonFinal.includes(err.code), `code ${Code[err.code]} is not final for csi-resizer: ${err.details}`);
      // The lowered request the user then makes goes through.
      const lowered = await h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 2 * GiB }, volume_capability: RESIZER_MOUNT_RWO });
      assert.equal(Number(lowered.capacity_bytes), 2 * GiB);
    },
  );
});
