// The node RPCs in the order, with the paths and fields, that kubelet's CSI
// volume plugin sends them in real life, on real loop devices and mounts.
// Each test names the kubernetes/kubernetes source that produces its pattern
// (pkg/volume/csi, pkg/volume/util/operationexecutor/operation_generator.go,
// pkg/kubelet/volumemanager/reconciler). What kubelet itself does around the
// calls (the directories and vol_data.json files it makes, its bind and its
// loop device for a raw block pod) is done here by hand, as kubelet does it.
// Tests marked `todo` fail today: each names the bug it proves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { run } from '../../src/util/exec';
import { findMountAt } from '../../src/node/mount';
import { DEFAULT_DRIVER_NAME } from '../../src/csi/constants';
import { CsiError } from '../../src/csi/errors';
import type { NodeService } from '../../src/node/service';
import type { VolumeCapability__Output } from '../../src/gen/csi/v1/VolumeCapability';
import { isRoot, mountinfoTargets, ROOT_SKIP_REASON, type Sandbox, XFS_SKIP } from './loop';
import { rejectsWithCode, testContext } from './context';
import { attach, blockCap, ctx, fakeCommand, fixture, kubeletMapBlock, MiB, mountCap, nodeServiceOn, publishReq, stageReq } from './harness';

const skip = isRoot() ? false : ROOT_SKIP_REASON;

/** kubelet's paths for a volume, under its root directory (the sandbox's kubelet directory). */
function kubeletLayout(root: string, pv: string, volumeHandle: string) {
  const csi = path.join(root, 'plugins', 'kubernetes.io', 'csi');
  return {
    // pkg/volume/csi/csi_attacher.go makeDeviceMountPath: <plugins>/kubernetes.io/csi/<driver>/<sha256(volumeHandle)>/globalmount
    fsStaging: path.join(csi, DEFAULT_DRIVER_NAME, createHash('sha256').update(volumeHandle).digest('hex'), 'globalmount'),
    // pkg/volume/csi/csi_mounter.go GetPath: pods/<podUID>/volumes/kubernetes.io~csi/<pv>/mount
    fsTarget: (pod: string) => path.join(root, 'pods', pod, 'volumes', 'kubernetes.io~csi', pv, 'mount'),
    // pkg/volume/csi/csi_block.go getStagingPath: volumeDevices/staging/<pv>, a directory kubelet makes
    blockStaging: path.join(csi, 'volumeDevices', 'staging', pv),
    // pkg/volume/csi/csi_block.go getPublishPath: volumeDevices/publish/<pv>/<podUID>; kubelet makes its directory, the driver the file
    blockPublish: (pod: string) => path.join(csi, 'volumeDevices', 'publish', pv, pod),
  };
}

/**
 * kubelet's MkdirAll(dir, 0750) and the vol_data.json it saves in `dataDir`: csi_attacher.go MountDevice
 * (dir: the staging path, dataDir its parent), csi_mounter.go SetUpAt (dir and dataDir: the target's parent).
 */
async function kubeletMakes(dir: string, dataDir: string, volumeHandle: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const volData = path.join(dataDir, 'vol_data.json');
  await writeFile(volData, JSON.stringify({ volumeHandle, driverName: DEFAULT_DRIVER_NAME }));
  return volData;
}

/** csi_attacher.go MountDevice: kubelet's staging directory and vol_data.json, then NodeStageVolume. */
async function kubeletStages(node: NodeService, k: ReturnType<typeof kubeletLayout>, volumeId: string, cap: VolumeCapability__Output): Promise<void> {
  await kubeletMakes(k.fsStaging, path.dirname(k.fsStaging), volumeId);
  await node.NodeStageVolume(stageReq(volumeId, k.fsStaging, cap), ctx('NodeStageVolume'));
}

/** csi_mounter.go SetUpAt: the target's parent and vol_data.json, then NodePublishVolume. */
async function kubeletPublishes(node: NodeService, k: ReturnType<typeof kubeletLayout>, volumeId: string, target: string, cap: VolumeCapability__Output): Promise<void> {
  await kubeletMakes(path.dirname(target), path.dirname(target), volumeId);
  await node.NodePublishVolume(publishReq(volumeId, k.fsStaging, target, cap), ctx('NodePublishVolume'));
}

/** How many mounts are stacked at exactly `p`, in the kernel's table. */
async function mountsAt(p: string): Promise<number> {
  return (await mountinfoTargets()).filter((m) => m === p).length;
}

/** Whether loop device `loop` is attached (its backing file shows in sysfs). */
async function loopAttached(loop: string): Promise<boolean> {
  return readFile(`/sys/block/${path.basename(loop)}/loop/backing_file`).then(
    () => true,
    () => false,
  );
}

/**
 * kubelet's map of a raw block publish for a pod (operation_generator.go GenerateMapVolumeFunc ->
 * pkg/volume/util/util.go MapBlockVolume): the bind at volumeDevices/<pv>/dev/<podUID>, then
 * AttachFileDevice, a loop device on that map file held as a descriptor lock
 * (pkg/volume/util/volumepathhandler makeLoopDevice: `losetup -f <path>`). `locks` collects the
 * loop devices for the test's cleanup.
 */
async function kubeletMap(box: Sandbox, pv: string, publishPath: string, pod: string, locks: Set<string>): Promise<{ mapPath: string; lock: string }> {
  const mapPath = await kubeletMapBlock(box.kubeletDir, pv, publishPath, pod);
  const lock = (await run('losetup', ['--find', '--show', mapPath])).stdout.trim();
  locks.add(lock);
  return { mapPath, lock };
}

/** util.go UnmapBlockVolume, before UnmapPodDevice's NodeUnpublishVolume: DetachFileDevice, then unmount the map bind. */
async function kubeletUnmap(m: { mapPath: string; lock: string }, locks: Set<string>): Promise<void> {
  await run('losetup', ['--detach', m.lock]);
  locks.delete(m.lock);
  await run('umount', [m.mapPath]);
}

/** kubelet retries a failed operation with backoff until it answers OK; the errors on the way. */
async function untilOk(call: () => Promise<unknown>, attempts: number): Promise<string[]> {
  const errors: string[] = [];
  for (;;) {
    try {
      await call();
      return errors;
    } catch (e) {
      errors.push(e instanceof CsiError ? `${status[e.code]}: ${e.message}` : String(e));
      if (errors.length >= attempts) assert.fail(`never answered OK in ${attempts} attempts: ${errors.join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

test('a filesystem volume in kubelet\'s own paths: the driver makes the pod\'s mount directory and removes only it; kubelet\'s directories and vol_data.json stay', { skip }, async (t) => {
  // pkg/volume/csi/csi_attacher.go MountDevice: MkdirAll(deviceMountPath), vol_data.json in its parent, NodeStageVolume;
  // UnmountDevice: NodeUnstageVolume, then kubelet removes the directory and vol_data.json itself.
  // pkg/volume/csi/csi_mounter.go SetUpAt: MkdirAll(filepath.Dir(dir)) only (the target itself is the driver's), vol_data.json
  // there, NodePublishVolume with the PV's mountOptions as mount_flags; TearDownAt: NodeUnpublishVolume, then removeMountDir.
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box);
  const k = kubeletLayout(box.kubeletDir, 'pvc-layout', volumeId);
  const target = k.fsTarget(randomUUID());
  const cap = mountCap('ext4', 'SINGLE_NODE_WRITER', ['noatime']);

  const stagingData = await kubeletMakes(k.fsStaging, path.dirname(k.fsStaging), volumeId);
  await node.NodeStageVolume(stageReq(volumeId, k.fsStaging, cap), ctx('NodeStageVolume'));
  assert.equal((await findMountAt(k.fsStaging))?.source, loop.path);
  const podData = await kubeletMakes(path.dirname(target), path.dirname(target), volumeId);
  await assert.rejects(stat(target), { code: 'ENOENT' }, 'kubelet leaves the target itself to the driver');
  await node.NodePublishVolume(publishReq(volumeId, k.fsStaging, target, cap), ctx('NodePublishVolume'));
  assert.equal((await findMountAt(target))?.source, loop.path);
  await writeFile(path.join(target, 'data.txt'), 'written by the pod');

  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await assert.rejects(stat(target), { code: 'ENOENT' }, 'the driver removed the target it made');
  await stat(podData); // kubelet's removeMountDir deletes it, not the driver
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
  assert.equal(await findMountAt(k.fsStaging), undefined);
  assert.ok((await stat(k.fsStaging)).isDirectory(), 'the staging directory is kubelet\'s to remove');
  await stat(stagingData);
});

test('after a kubelet and plugin restart, the reconstructed volume\'s repeated NodeStage and NodePublish on mounted paths are OK and stack nothing; a pod deleted meanwhile is unpublished', { skip }, async (t) => {
  // pkg/kubelet/volumemanager/reconciler/reconstruct.go and reconstruct_common.go: volumes found in the pod directories
  // are added to the actual state as uncertain; operation_generator.go GenerateMountVolumeFunc then calls MountDevice
  // (NodeStageVolume) again unless the device is DeviceGloballyMounted, and SetUp (NodePublishVolume) again, for the
  // pods that still exist; GenerateUnmountVolumeFunc (NodeUnpublishVolume) for those deleted while kubelet was down.
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box);
  const k = kubeletLayout(box.kubeletDir, 'pvc-reconstructed', volumeId);
  const [running, deleted] = [k.fsTarget(randomUUID()), k.fsTarget(randomUUID())];
  const cap = mountCap('ext4', 'SINGLE_NODE_MULTI_WRITER');
  await kubeletStages(node, k, volumeId, cap);
  for (const target of [running, deleted]) {
    await kubeletPublishes(node, k, volumeId, target, cap);
  }
  await writeFile(path.join(running, 'data.txt'), 'before the restart');

  const restarted = nodeServiceOn(box);
  await restarted.NodeStageVolume(stageReq(volumeId, k.fsStaging, cap), ctx('NodeStageVolume'));
  await restarted.NodePublishVolume(publishReq(volumeId, k.fsStaging, running, cap), ctx('NodePublishVolume'));
  await restarted.NodeUnpublishVolume({ volume_id: volumeId, target_path: deleted }, ctx('NodeUnpublishVolume'));
  assert.equal(await mountsAt(k.fsStaging), 1, 'one staging mount');
  assert.equal(await mountsAt(running), 1, 'one bind at the running pod\'s target');
  await assert.rejects(stat(deleted), { code: 'ENOENT' });
  assert.equal(await readFile(path.join(running, 'data.txt'), 'utf8'), 'before the restart');

  await restarted.NodeUnpublishVolume({ volume_id: volumeId, target_path: running }, ctx('NodeUnpublishVolume'));
  await restarted.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
  assert.equal(await findMountAt(k.fsStaging), undefined);
});

test('after a node reboot (kubelet\'s directories left, nothing mounted, the disk back under another name) NodeStage mounts the new device without formatting it and NodePublish reuses the pod\'s directory', { skip }, async (t) => {
  // After a reboot the pod directories and globalmount survive on disk and nothing is mounted. kubelet starts the
  // same pods (same UIDs): reconstruct_common.go finds their volumes, operation_generator.go GenerateMountVolumeFunc
  // calls MountDevice (NodeStageVolume) on the existing empty staging directory and SetUp (NodePublishVolume) on
  // the existing empty target; a pod deleted while the node was down gets TearDown (NodeUnpublishVolume) on its
  // leftover empty directory. Device names are not stable across reboots.
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box);
  const k = kubeletLayout(box.kubeletDir, 'pvc-rebooted', volumeId);
  const [restarted, gone] = [k.fsTarget(randomUUID()), k.fsTarget(randomUUID())];
  const cap = mountCap('ext4');
  await kubeletStages(node, k, volumeId, cap);
  for (const target of [restarted, gone]) {
    await kubeletPublishes(node, k, volumeId, target, cap);
  }
  await writeFile(path.join(restarted, 'data.txt'), 'before the reboot');

  // The reboot: every mount gone (the directories stay), the disk back under another name, udev's link to it.
  for (const p of [restarted, gone, k.fsStaging]) await run('umount', [p]);
  const renamed = await box.reattach(loop);
  await box.detach(loop);
  await unlink(path.join(box.byIdDir, `virtio-${volumeId.slice(0, 20)}`));
  await box.linkVirtio(volumeId, renamed);
  const afterReboot = nodeServiceOn(box);

  await afterReboot.NodeStageVolume(stageReq(volumeId, k.fsStaging, cap), ctx('NodeStageVolume'));
  assert.equal((await findMountAt(k.fsStaging))?.source, renamed.path);
  await afterReboot.NodePublishVolume(publishReq(volumeId, k.fsStaging, restarted, cap), ctx('NodePublishVolume'));
  assert.equal(await readFile(path.join(restarted, 'data.txt'), 'utf8'), 'before the reboot', 'not formatted again');
  await afterReboot.NodeUnpublishVolume({ volume_id: volumeId, target_path: gone }, ctx('NodeUnpublishVolume'));
  await assert.rejects(stat(gone), { code: 'ENOENT' });

  await afterReboot.NodeUnpublishVolume({ volume_id: volumeId, target_path: restarted }, ctx('NodeUnpublishVolume'));
  await afterReboot.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
});

test('raw block in kubelet\'s paths with its map and descriptor-lock loop device: two pods (one read-only), stats, expansion, a restart\'s repeats, then unmap, unpublish and unstage leave nothing', { skip }, async (t) => {
  // pkg/volume/csi/csi_block.go: SetUpDevice (MkdirAll(stagingPath), NodeStageVolume), MapPodDevice (MkdirAll of the
  // publish directory, NodePublishVolume to publish/<pv>/<podUID>), UnmapPodDevice (NodeUnpublishVolume),
  // TearDownDevice (NodeUnstageVolume). operation_generator.go GenerateMapVolumeFunc then util.MapBlockVolume (bind
  // plus `losetup -f` lock on it), and expandVolumeDuringMount with DevicePath = this pod's publish path and
  // DeviceStagePath = "" when the device was already staged; GenerateExpandInUseVolumeFunc (online) with the block
  // staging path. pkg/volume/csi/expander.go: for block, volume_path = DevicePath. pkg/volume/csi/csi_client.go
  // NodeGetVolumeStats: only volume_id and volume_path (csi_block.go's metrics use the publish path).
  const locks = new Set<string>();
  t.after(async () => {
    for (const lock of locks) await run('losetup', ['--detach', lock]).catch(() => undefined);
  });
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const pv = 'pvc-block';
  const k = kubeletLayout(box.kubeletDir, pv, volumeId);
  const [writer, reader] = [randomUUID(), randomUUID()];
  const cap = blockCap('SINGLE_NODE_MULTI_WRITER');

  await mkdir(k.blockStaging, { recursive: true, mode: 0o750 });
  await node.NodeStageVolume(stageReq(volumeId, k.blockStaging, cap), ctx('NodeStageVolume'));
  const maps = new Map<string, { mapPath: string; lock: string }>();
  for (const [pod, readonly] of [[writer, false], [reader, true]] as const) {
    await mkdir(path.dirname(k.blockPublish(pod)), { recursive: true, mode: 0o750 });
    await node.NodePublishVolume(publishReq(volumeId, k.blockStaging, k.blockPublish(pod), cap, readonly), ctx('NodePublishVolume'));
    maps.set(pod, await kubeletMap(box, pv, k.blockPublish(pod), pod, locks));
  }
  for (const pod of [writer, reader]) {
    const stats = await node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: k.blockPublish(pod), staging_target_path: '' }, ctx('NodeGetVolumeStats'));
    assert.deepEqual(stats.usage, [{ unit: 'BYTES', total: 16 * MiB }], pod);
  }

  await box.grow(loop, 32 * MiB);
  const expand = (volume_path: string, staging_target_path: string) =>
    node.NodeExpandVolume(
      { volume_id: volumeId, volume_path, staging_target_path, capacity_range: { required_bytes: 32 * MiB, limit_bytes: 0 }, volume_capability: cap, secrets: {} },
      ctx('NodeExpandVolume'),
    );
  assert.equal((await expand(k.blockPublish(reader), '')).capacity_bytes, 32 * MiB, 'during the map of a second pod');
  assert.equal((await expand(k.blockPublish(writer), k.blockStaging)).capacity_bytes, 32 * MiB, 'online');

  const restarted = nodeServiceOn(box);
  await restarted.NodeStageVolume(stageReq(volumeId, k.blockStaging, cap), ctx('NodeStageVolume'));
  for (const [pod, readonly] of [[writer, false], [reader, true]] as const) {
    await restarted.NodePublishVolume(publishReq(volumeId, k.blockStaging, k.blockPublish(pod), cap, readonly), ctx('NodePublishVolume'));
  }
  for (const m of maps.values()) assert.ok(await loopAttached(m.lock), `kubelet's lock ${m.lock} is still attached`);

  // The read-only pod goes first; the writer's publish and kubelet's lock on it stay.
  await kubeletUnmap(maps.get(reader)!, locks);
  await restarted.NodeUnpublishVolume({ volume_id: volumeId, target_path: k.blockPublish(reader) }, ctx('NodeUnpublishVolume'));
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'the read-only view went with its publish');
  assert.ok(await loopAttached(maps.get(writer)!.lock), 'the writer\'s lock is kubelet\'s, and stays');
  await kubeletUnmap(maps.get(writer)!, locks);
  await restarted.NodeUnpublishVolume({ volume_id: volumeId, target_path: k.blockPublish(writer) }, ctx('NodeUnpublishVolume'));
  await restarted.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.blockStaging }, ctx('NodeUnstageVolume'));
  await rejectsWithCode(
    restarted.NodePublishVolume(publishReq(volumeId, k.blockStaging, k.blockPublish(writer), cap), ctx('NodePublishVolume')),
    status.FAILED_PRECONDITION,
    /not staged/,
  );
});

test('raw block after a node reboot: the staging record outlives it, the disk comes back under another name, and the leftover publish file is bound again', { skip }, async (t) => {
  // After a reboot kubelet's volumeDevices/staging/<pv> directory and publish/<pv>/<podUID> file survive on disk (the
  // plugin's records too: deploy/node.yaml keeps /var/lib/cinder-csi on the host), nothing is bound, and the disk may
  // have another name. operation_generator.go GenerateMapVolumeFunc runs csi_block.go SetUpDevice (NodeStageVolume)
  // and MapPodDevice (NodePublishVolume) again for the pod, on those paths.
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const pv = 'pvc-block-rebooted';
  const k = kubeletLayout(box.kubeletDir, pv, volumeId);
  const pod = randomUUID();
  const cap = blockCap();
  await mkdir(k.blockStaging, { recursive: true });
  await mkdir(path.dirname(k.blockPublish(pod)), { recursive: true });
  await node.NodeStageVolume(stageReq(volumeId, k.blockStaging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, k.blockStaging, k.blockPublish(pod), cap), ctx('NodePublishVolume'));

  await run('umount', [k.blockPublish(pod)]);
  const renamed = await box.reattach(loop);
  await box.detach(loop);
  await unlink(path.join(box.byIdDir, `virtio-${volumeId.slice(0, 20)}`));
  await box.linkVirtio(volumeId, renamed);
  assert.ok((await stat(k.blockPublish(pod))).isFile(), 'the empty publish file survived');
  const afterReboot = nodeServiceOn(box);

  await afterReboot.NodeStageVolume(stageReq(volumeId, k.blockStaging, cap), ctx('NodeStageVolume'));
  await afterReboot.NodePublishVolume(publishReq(volumeId, k.blockStaging, k.blockPublish(pod), cap), ctx('NodePublishVolume'));
  assert.equal((await stat(k.blockPublish(pod))).rdev, (await stat(renamed.path)).rdev, 'the publish is the disk under its new name');
  await afterReboot.NodeUnpublishVolume({ volume_id: volumeId, target_path: k.blockPublish(pod) }, ctx('NodeUnpublishVolume'));
  await afterReboot.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.blockStaging }, ctx('NodeUnstageVolume'));
});

test('a pod deleted while its NodePublishVolume outlives kubelet\'s deadline: NodeUnpublishVolume is ABORTED while the publish runs, then OK, and nothing stays mounted', { skip }, async (t) => {
  // pkg/volume/csi/csi_mounter.go SetUpAt calls NodePublishVolume with a csiTimeout deadline; a DeadlineExceeded is not
  // final (volumetypes.IsOperationFinishedError), so operation_generator.go markVolumeErrorState marks the volume
  // uncertain, and once the pod is deleted GenerateUnmountVolumeFunc -> TearDownAt calls NodeUnpublishVolume, retried
  // with backoff on error.
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box);
  const k = kubeletLayout(box.kubeletDir, 'pvc-slow-publish', volumeId);
  const target = k.fsTarget(randomUUID());
  const cap = mountCap('ext4');
  await kubeletStages(node, k, volumeId, cap);
  await kubeletMakes(path.dirname(target), path.dirname(target), volumeId);
  // A mount that binds, then hangs until it is killed.
  const realMount = (await run('sh', ['-c', 'command -v mount'])).stdout.trim();
  const slowMount = await fakeCommand(box, 'mount', `${realMount} "$@" || exit $?\nexec sleep 30`);
  await slowMount(async () => {
    const publish = node.NodePublishVolume(publishReq(volumeId, k.fsStaging, target, cap), testContext('NodePublishVolume', 500));
    await rejectsWithCode(publish, status.DEADLINE_EXCEEDED);
  });
  const errors = await untilOk(() => node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume')), 25);
  assert.ok(errors.every((e) => e.startsWith('ABORTED')), errors.join(' | '));
  assert.equal(await findMountAt(target), undefined);
  await assert.rejects(stat(target), { code: 'ENOENT' });
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
});

test(
  'a filesystem NodePublishVolume whose mount command fails after binding leaves nothing bound, so kubelet\'s identical retry answers OK (read-only too)',
  { skip },
  async (t) => {
    // operation_generator.go GenerateMountVolumeFunc retries SetUp (csi_mounter.go SetUpAt -> NodePublishVolume) with the
    // same arguments after an error. After a final error (INTERNAL) for a volume not yet uncertain, markVolumeErrorState
    // leaves it unmounted in the actual state, so a deleted pod gets no NodeUnpublishVolume (GenerateUnmountVolumeFunc
    // only runs for mounted or uncertain volumes), and GenerateUnmountDeviceFunc refuses to unstage while
    // GetDeviceMountRefs finds the leftover bind. The raw block publish already undoes such a bind (service.test.ts).
    const { box, node } = await fixture(t);
    const { volumeId } = await attach(box);
    const k = kubeletLayout(box.kubeletDir, 'pvc-late-mount-failure', volumeId);
    const cap = mountCap('ext4');
    await kubeletStages(node, k, volumeId, cap);
    // A mount that binds, then fails (as one that timed out after mount(2) had succeeded).
    const realMount = (await run('sh', ['-c', 'command -v mount'])).stdout.trim();
    const lateFailure = await fakeCommand(box, 'mount', `${realMount} "$@" || exit $?\necho "mount: simulated timeout" >&2\nexit 1`);
    for (const readonly of [false, true]) {
      const target = k.fsTarget(randomUUID());
      await kubeletMakes(path.dirname(target), path.dirname(target), volumeId);
      const req = publishReq(volumeId, k.fsStaging, target, cap, readonly);
      await lateFailure(() => assert.rejects(node.NodePublishVolume(req, ctx('NodePublishVolume')), /simulated timeout/));
      try {
        assert.equal(await findMountAt(target), undefined, `readonly=${readonly}: the bind was undone`);
        await node.NodePublishVolume(req, ctx('NodePublishVolume'));
        assert.equal((await findMountAt(target))?.vfsOptions.includes('ro'), readonly);
      } finally {
        await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
      }
    }
    await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
  },
);

/**
 * The disk is detached under a staged volume whose pod wrote data not yet written back: the attach-detach
 * controller detaches after maxWaitForUnmountDuration on an unhealthy node (pkg/controller/volume/attachdetach/
 * reconciler/reconciler.go), or someone detaches it in Nova. Its I/O then fails; a loop device shrunk to nothing
 * does the same. kubelet then sends NodeUnpublishVolume and NodeUnstageVolume (operation_generator.go
 * GenerateUnmountVolumeFunc, GenerateUnmountDeviceFunc -> csi_attacher.go UnmountDevice) and retries each with
 * backoff until it answers OK: the staging mount must go, since nothing it holds can reach the disk any more.
 */
async function unstageAfterDiskVanished(t: Parameters<typeof fixture>[0], fsType: 'ext4' | 'xfs', sizeBytes: number): Promise<void> {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, sizeBytes);
  const k = kubeletLayout(box.kubeletDir, `pvc-vanished-${fsType}`, volumeId);
  const target = k.fsTarget(randomUUID());
  const cap = mountCap(fsType);
  await kubeletStages(node, k, volumeId, cap);
  await kubeletPublishes(node, k, volumeId, target, cap);
  await writeFile(path.join(target, 'unsynced.bin'), Buffer.alloc(4 * MiB, 7)); // dirty in the page cache

  await box.grow(loop, 0); // the disk is gone: every read and write fails
  await unlink(path.join(box.byIdDir, `virtio-${volumeId.slice(0, 20)}`));

  await untilOk(() => node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume')), 5);
  await untilOk(() => node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume')), 5);
  assert.equal(await findMountAt(k.fsStaging), undefined, 'the staging mount is gone');
}

test('ext4: NodeUnstageVolume after the disk was detached underneath succeeds within kubelet\'s retries', { skip }, async (t) => {
  await unstageAfterDiskVanished(t, 'ext4', 64 * MiB);
});

test(
  'xfs: NodeUnstageVolume after the disk was detached underneath succeeds within kubelet\'s retries',
  { skip: XFS_SKIP },
  async (t) => {
    await unstageAfterDiskVanished(t, 'xfs', 320 * MiB);
  },
);

test(
  'NodeGetVolumeStats as kubelet asks it (volume_id and volume_path only) reports a publish whose mount has gone as an abnormal volume',
  { skip },
  async (t) => {
    // pkg/volume/csi/csi_client.go NodeGetVolumeStats builds NodeGetVolumeStatsRequest{VolumeId, VolumePath} and nothing
    // else; pkg/volume/csi/csi_metrics.go calls it with the pod's target path. The driver offers VOLUME_CONDITION.
    const { box, node } = await fixture(t);
    const { volumeId } = await attach(box);
    const k = kubeletLayout(box.kubeletDir, 'pvc-stats', volumeId);
    const target = k.fsTarget(randomUUID());
    const cap = mountCap('ext4');
    await kubeletStages(node, k, volumeId, cap);
    await kubeletPublishes(node, k, volumeId, target, cap);
    const kubeletAsks = () => node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: target, staging_target_path: '' }, ctx('NodeGetVolumeStats'));
    const s = await statfs(target);
    assert.equal((await kubeletAsks()).usage?.[0]?.total, s.blocks * s.bsize);
    await run('umount', [target]); // someone unmounted the pod's mount behind kubelet's back
    try {
      const gone = await kubeletAsks();
      assert.equal(gone.volume_condition?.abnormal, true);
      // kubelet drops the condition of a response without usage (csi_client.go: "usage is nil").
      assert.equal(gone.usage?.[0]?.total, s.blocks * s.bsize, 'usage of the staged filesystem');
    } finally {
      await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
      await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
    }
  },
);

/** Stage an xfs volume, grow its disk, then NodeExpandVolume at `volumePathOf(staging, target)`, as the kubelet version in question does. */
async function expandDuringMount(t: Parameters<typeof fixture>[0], pv: string, volumePathOf: (staging: string, target: string) => string, publishFirst: boolean): Promise<void> {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 320 * MiB); // mkfs.xfs wants at least 300 MiB
  const k = kubeletLayout(box.kubeletDir, pv, volumeId);
  const target = k.fsTarget(randomUUID());
  const cap = mountCap('xfs');
  await kubeletStages(node, k, volumeId, cap);
  await kubeletMakes(path.dirname(target), path.dirname(target), volumeId);
  const publish = (service: NodeService) => service.NodePublishVolume(publishReq(volumeId, k.fsStaging, target, cap), ctx('NodePublishVolume'));
  if (publishFirst) await publish(node);
  await box.grow(loop, 640 * MiB);
  const res = await node.NodeExpandVolume(
    { volume_id: volumeId, volume_path: volumePathOf(k.fsStaging, target), staging_target_path: k.fsStaging, capacity_range: { required_bytes: 640 * MiB, limit_bytes: 0 }, volume_capability: cap, secrets: {} },
    ctx('NodeExpandVolume'),
  );
  assert.equal(res.capacity_bytes, 640 * MiB);
  if (!publishFirst) await publish(node);
  const s = await statfs(target);
  assert.ok(s.blocks * s.bsize > 500 * MiB, `the pod sees ${s.blocks * s.bsize} bytes`);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: k.fsStaging }, ctx('NodeUnstageVolume'));
}

test('expansion during mount, as current kubelet does it: after NodePublishVolume, volume_path is the pod\'s target and staging_target_path the globalmount', { skip: XFS_SKIP }, async (t) => {
  // operation_generator.go GenerateMountVolumeFunc: after SetUp, resizeOptions.DeviceMountPath = volumeMounter.GetPath()
  // and DeviceStagePath = the device mount path, then expandVolumeDuringMount; pkg/volume/csi/expander.go passes them as
  // volume_path and staging_target_path.
  await expandDuringMount(t, 'pvc-expand-after-publish', (_staging, target) => target, true);
});

test('expansion during mount, as older kubelets did it: after NodeStageVolume and before NodePublishVolume, volume_path is the globalmount', { skip: XFS_SKIP }, async (t) => {
  // Older operation_generator.go GenerateMountVolumeFunc (CSIVolumePhase: volume.CSIVolumeStaged) called
  // NodeExpandVolume right after MountDevice with DeviceMountPath = DeviceStagePath = the staging path.
  await expandDuringMount(t, 'pvc-expand-after-stage', (staging) => staging, false);
});

test('with confine_paths (deploy/ turns it on), kubelet\'s own paths stage and publish filesystem and raw block volumes, and any other path is INVALID_ARGUMENT', { skip }, async (t) => {
  const { box } = await fixture(t);
  const node = nodeServiceOn(box, { confinePaths: true });
  const fs = await attach(box);
  const block = await attach(box, 16 * MiB);
  const kf = kubeletLayout(box.kubeletDir, 'pvc-confined-fs', fs.volumeId);
  const kb = kubeletLayout(box.kubeletDir, 'pvc-confined-block', block.volumeId);
  const pod = randomUUID();
  const cap = mountCap('ext4');

  await kubeletStages(node, kf, fs.volumeId, cap);
  await kubeletPublishes(node, kf, fs.volumeId, kf.fsTarget(pod), cap);
  await mkdir(kb.blockStaging, { recursive: true });
  await mkdir(path.dirname(kb.blockPublish(pod)), { recursive: true });
  await node.NodeStageVolume(stageReq(block.volumeId, kb.blockStaging, blockCap()), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(block.volumeId, kb.blockStaging, kb.blockPublish(pod), blockCap()), ctx('NodePublishVolume'));

  // Paths of the driver's choosing below kubelet's root, and kubelet's own paths in each other's places.
  const elsewhere = await box.volumePaths('not-kubelets');
  const refused = async (call: Promise<unknown>, field: string) => rejectsWithCode(call, status.INVALID_ARGUMENT, new RegExp(`${field} .* not in kubelet's directories`));
  const other = await attach(box);
  await refused(node.NodeStageVolume(stageReq(other.volumeId, elsewhere.staging, cap), ctx('NodeStageVolume')), 'staging_target_path');
  await refused(node.NodeStageVolume(stageReq(other.volumeId, path.dirname(kf.fsTarget(pod)), cap), ctx('NodeStageVolume')), 'staging_target_path');
  await refused(node.NodePublishVolume(publishReq(fs.volumeId, kf.fsStaging, elsewhere.target, cap), ctx('NodePublishVolume')), 'target_path');
  await refused(node.NodePublishVolume(publishReq(fs.volumeId, elsewhere.staging, kf.fsTarget(randomUUID()), cap), ctx('NodePublishVolume')), 'staging_target_path');
  await refused(node.NodePublishVolume(publishReq(fs.volumeId, kf.fsStaging, path.join(path.dirname(kf.fsStaging), 'mount'), cap), ctx('NodePublishVolume')), 'target_path');
  await refused(node.NodeUnpublishVolume({ volume_id: fs.volumeId, target_path: kf.fsStaging }, ctx('NodeUnpublishVolume')), 'target_path');
  await refused(node.NodeUnstageVolume({ volume_id: fs.volumeId, staging_target_path: kf.fsTarget(pod) }, ctx('NodeUnstageVolume')), 'staging_target_path');
  assert.ok(await findMountAt(kf.fsStaging), 'the staging mount is still there');
  assert.ok(await findMountAt(kf.fsTarget(pod)), 'and so is the publish');

  await node.NodeUnpublishVolume({ volume_id: fs.volumeId, target_path: kf.fsTarget(pod) }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: fs.volumeId, staging_target_path: kf.fsStaging }, ctx('NodeUnstageVolume'));
  await node.NodeUnpublishVolume({ volume_id: block.volumeId, target_path: kb.blockPublish(pod) }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: block.volumeId, staging_target_path: kb.blockStaging }, ctx('NodeUnstageVolume'));
  assert.deepEqual(await box.mountsUnder(), []);
});
