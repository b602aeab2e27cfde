// The node service's handlers, called directly, on real loop devices, mkfs and
// mounts: the whole stage/publish/unpublish/unstage cycle for filesystems and
// raw block, the refusals that protect data, stats, expansion, idempotency and
// concurrency. Each test's Sandbox unmounts and detaches what it made and
// fails if anything was left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, open, readdir, readFile, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { run } from '../../src/util/exec';
import { createNodeService } from '../../src/node/service';
import { resolveNodeSettings } from '../../src/node/settings';
import { findMountAt } from '../../src/node/mount';
import { TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { EXT4_ONLINE_RESIZE_SKIP, isRoot, ROOT_SKIP_REASON, Sandbox, toolsSkip, writeMbr, XFS_SKIP } from './loop';
import { rejectsWithCode } from './context';
import { attach, blockCap, ctx, fakeCommand, fixture, kubeletMapBlock, MiB, mountCap, nodeServiceOn, publishReq, stageReq } from './harness';

const skip = isRoot() ? false : ROOT_SKIP_REASON;

async function blkidValue(device: string, tag: string): Promise<string> {
  const { stdout } = await run('blkid', ['-p', '-o', 'value', '-s', tag, device], { okCodes: [2] });
  return stdout.trim();
}

test('filesystem lifecycle: blank device formatted as ext4, published rw and ro, data survives unpublish, unstage and restage; every call idempotent', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box);
  const { staging, target } = await box.volumePaths('pv-fs');
  const roTarget = `${target}-ro`;
  const cap = mountCap();

  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  assert.equal(await blkidValue(loop.path, 'TYPE'), 'ext4');
  const uuid = await blkidValue(loop.path, 'UUID');
  const staged = await findMountAt(staging);
  assert.equal(staged?.source, loop.path);
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));

  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await writeFile(path.join(target, 'data.txt'), 'precious');

  await node.NodePublishVolume(publishReq(volumeId, staging, roTarget, cap, true), ctx('NodePublishVolume'));
  assert.equal(await readFile(path.join(roTarget, 'data.txt'), 'utf8'), 'precious');
  await assert.rejects(writeFile(path.join(roTarget, 'other.txt'), 'x'), { code: 'EROFS' });
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, target, cap, true), ctx('NodePublishVolume')), status.ALREADY_EXISTS);

  await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume')), status.FAILED_PRECONDITION, /still mounted/);

  for (const p of [target, roTarget]) {
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
    await assert.rejects(stat(p), { code: 'ENOENT' }, 'the target we created is removed');
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
  }
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
  assert.equal(await findMountAt(staging), undefined);
  assert.ok((await stat(staging)).isDirectory(), 'the staging directory belongs to the CO and stays');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));

  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  assert.equal(await blkidValue(loop.path, 'UUID'), uuid, 'restaging did not reformat');
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  assert.equal(await readFile(path.join(target, 'data.txt'), 'utf8'), 'precious');
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('a device holding another filesystem is FAILED_PRECONDITION and its data stays intact', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box);
  await run('mkfs.ext3', ['-q', loop.path]);
  const uuid = await blkidValue(loop.path, 'UUID');
  const scratch = path.join(box.root, 'scratch');
  await mkdir(scratch);
  await run('mount', [loop.path, scratch]);
  await writeFile(path.join(scratch, 'keep.txt'), 'old data');
  await run('umount', [scratch]);

  const { staging } = await box.volumePaths('pv-other-fs');
  await rejectsWithCode(node.NodeStageVolume(stageReq(volumeId, staging, mountCap('ext4')), ctx('NodeStageVolume')), status.FAILED_PRECONDITION,
    /holds an ext3 filesystem, not the requested ext4; it is never reformatted: set the StorageClass's csi\.storage\.k8s\.io\/fstype \(or the PV's fsType\) to ext3/);
  assert.equal(await findMountAt(staging), undefined);
  assert.equal(await blkidValue(loop.path, 'UUID'), uuid);
  await run('mount', ['-o', 'ro', loop.path, scratch]);
  try {
    assert.equal(await readFile(path.join(scratch, 'keep.txt'), 'utf8'), 'old data');
  } finally {
    await run('umount', [scratch]);
  }
  // Asked for what it holds (or for nothing in particular), the same device stages fine.
  await node.NodeStageVolume(stageReq(volumeId, staging, mountCap('')), ctx('NodeStageVolume'));
  assert.equal((await findMountAt(staging))?.fstype, 'ext3');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

// A read-only publish on a cloud that honours Cinder's readonly flag attaches a read-only disk
// (the simulator does it with a read-only loop device, as here).
test('a read-only disk: blank is FAILED_PRECONDITION and nothing is written; with a filesystem it stages read-only and is published only read-only', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const writable = await box.loopDevice(64 * MiB);
  const cap = mountCap('', 'SINGLE_NODE_READER_ONLY');

  const blank = await box.readOnlyLoopDevice(writable);
  const blankId = randomUUID();
  await box.linkVirtio(blankId, blank);
  assert.equal((await readFile(`/sys/block/${blank.name}/ro`, 'utf8')).trim(), '1');
  const first = await box.volumePaths('pv-ro-blank');
  await rejectsWithCode(node.NodeStageVolume(stageReq(blankId, first.staging, cap), ctx('NodeStageVolume')), status.FAILED_PRECONDITION, /attached read-only .* holds no filesystem/);
  assert.equal(await findMountAt(first.staging), undefined);
  assert.equal(await blkidValue(writable.path, 'TYPE'), '', 'nothing was made on it');

  // The volume with data (made while it was writable), attached read-only again.
  await run('mkfs.ext4', ['-q', writable.path]);
  const withData = await box.readOnlyLoopDevice(writable);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, withData);
  const { staging, target } = await box.volumePaths('pv-ro-data');
  await node.NodeStageVolume(stageReq(volumeId, staging, cap, { resizeRequired: 'true' }), ctx('NodeStageVolume'));
  const staged = await findMountAt(staging);
  assert.equal(staged?.source, withData.path);
  assert.ok(staged?.vfsOptions.includes('ro'), `staging mount options ${staged?.vfsOptions.join(',')}`);
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap, true), ctx('NodePublishVolume'));
  await assert.rejects(writeFile(path.join(target, 'x.txt'), 'x'), { code: 'EROFS' });
  const rwTarget = `${target}-rw`;
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, rwTarget, mountCap()), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /staged read-only .* only read-only/);
  assert.equal(await findMountAt(rwTarget), undefined);
  const stats = await node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: target, staging_target_path: staging }, ctx('NodeGetVolumeStats'));
  assert.equal(stats.volume_condition?.abnormal, false, stats.volume_condition?.message);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

/**
 * A volume cloned from a snapshot of a volume in use: its journal holds transactions never
 * replayed. On a read-only disk they cannot be, and ext4 and xfs then refuse a plain read-only
 * mount; staged without replay, the volume shows its filesystem as of the last checkpoint.
 */
async function stageUnreplayedJournal(t: Parameters<typeof Sandbox.create>[0], fsType: 'ext4' | 'xfs'): Promise<void> {
  const { box, node } = await fixture(t);
  const writable = await box.loopDevice(320 * MiB); // mkfs.xfs wants at least 300 MiB
  await run(`mkfs.${fsType}`, ['-q', writable.path]);
  const scratch = path.join(box.root, 'scratch');
  await mkdir(scratch);
  await run('mount', [writable.path, scratch]);
  await writeFile(path.join(scratch, 'checkpointed.txt'), 'before the snapshot');
  await run('umount', [scratch]);
  if (fsType === 'ext4') {
    await run('debugfs', ['-w', '-R', 'feature needs_recovery', writable.path]);
  } else {
    // Transactions forced to the log, then a shutdown before they are written in place.
    await run('mount', [writable.path, scratch]);
    await writeFile(path.join(scratch, 'in-the-log.txt'), 'during the snapshot');
    await run('xfs_io', ['-c', 'fsync', path.join(scratch, 'in-the-log.txt')]);
    await run('xfs_io', ['-x', '-c', 'shutdown', scratch]);
    await run('umount', [scratch]);
  }
  const readOnly = await box.readOnlyLoopDevice(writable);
  const refused = await run('mount', ['-o', 'ro', '-t', fsType, readOnly.path, scratch], { okCodes: [32] });
  assert.equal(refused.code, 32, 'a plain read-only mount refuses the unreplayed journal');
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, readOnly);
  const { staging } = await box.volumePaths(`pv-unreplayed-${fsType}`);
  await node.NodeStageVolume(stageReq(volumeId, staging, mountCap(fsType, 'SINGLE_NODE_READER_ONLY')), ctx('NodeStageVolume'));
  assert.equal(await readFile(path.join(staging, 'checkpointed.txt'), 'utf8'), 'before the snapshot');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
}

test('a read-only disk whose ext4 journal needs recovery stages without replaying it', { skip }, async (t) => {
  await stageUnreplayedJournal(t, 'ext4');
});

test('a read-only disk whose xfs log needs recovery stages without replaying it', { skip: XFS_SKIP || toolsSkip('xfs_io') }, async (t) => {
  await stageUnreplayedJournal(t, 'xfs');
});

test('a read-only disk as raw block: published read-only it reads; a read-write publish is FAILED_PRECONDITION', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const writable = await box.loopDevice(64 * MiB);
  const handle = await open(writable.path, 'r+');
  try {
    await handle.write(Buffer.from('block data'), 0, 10, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const readOnly = await box.readOnlyLoopDevice(writable);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, readOnly);
  const { staging, target } = await box.volumePaths('pv-ro-block');
  const cap = blockCap('SINGLE_NODE_READER_ONLY');
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));

  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, target, blockCap()), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /attached read-only .* only read-only/);
  assert.equal(await findMountAt(target), undefined);

  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap, true), ctx('NodePublishVolume'));
  const fh = await open(target, 'r');
  try {
    const { buffer } = await fh.read(Buffer.alloc(10), 0, 10, 0);
    assert.equal(buffer.toString(), 'block data');
  } finally {
    await fh.close();
  }
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('a device with a partition table is FAILED_PRECONDITION and is not written', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box);
  const mbr = await writeMbr(loop.path);
  const { staging } = await box.volumePaths('pv-partitioned');
  await rejectsWithCode(node.NodeStageVolume(stageReq(volumeId, staging, mountCap()), ctx('NodeStageVolume')), status.FAILED_PRECONDITION, /dos partition table/);
  const fh = await open(loop.path, 'r');
  try {
    const { buffer } = await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    assert.deepEqual(buffer.subarray(0, 512), mbr);
    assert.ok(buffer.subarray(512).every((b) => b === 0), 'nothing was written after the MBR');
  } finally {
    await fh.close();
  }
  assert.equal(await findMountAt(staging), undefined);
});

test('xfs: formatted and mounted with nouuid', { skip: XFS_SKIP }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 320 * MiB); // mkfs.xfs wants at least 300 MiB
  const { staging } = await box.volumePaths('pv-xfs');
  await node.NodeStageVolume(stageReq(volumeId, staging, mountCap('xfs', 'SINGLE_NODE_WRITER', ['noatime'])), ctx('NodeStageVolume'));
  assert.equal(await blkidValue(loop.path, 'TYPE'), 'xfs');
  const m = await findMountAt(staging);
  assert.equal(m?.fstype, 'xfs');
  assert.ok(m?.fsOptions.includes('nouuid'), `fs options ${m?.fsOptions.join(',')}`);
  assert.ok(m?.vfsOptions.includes('noatime'), `vfs options ${m?.vfsOptions.join(',')}`);
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('raw block: publish binds the device, reads and writes reach it; a read-only publish cannot write', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-block');
  const roTarget = `${target}-ro`;
  const cap = blockCap();

  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  assert.equal(await findMountAt(staging), undefined, 'nothing is mounted for a raw block stage');
  assert.equal(await blkidValue(loop.path, 'TYPE'), '', 'raw block is never formatted');

  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  const pattern = Buffer.from('raw block payload');
  const out = await open(target, 'r+');
  try {
    await out.write(pattern, 0, pattern.length, 4096);
    await out.sync();
  } finally {
    await out.close();
  }
  const back = await open(loop.path, 'r');
  try {
    const { buffer } = await back.read(Buffer.alloc(pattern.length), 0, pattern.length, 4096);
    assert.deepEqual(buffer, pattern, 'written through the target, read from the device');
  } finally {
    await back.close();
  }

  await node.NodePublishVolume(publishReq(volumeId, staging, roTarget, cap, true), ctx('NodePublishVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, roTarget, cap, true), ctx('NodePublishVolume'));
  const ro = await open(roTarget, 'r+').catch((e: NodeJS.ErrnoException) => e);
  if (!(ro instanceof Error)) {
    try {
      const { buffer } = await ro.read(Buffer.alloc(pattern.length), 0, pattern.length, 4096);
      assert.deepEqual(buffer, pattern, 'the read-only target reads the volume');
      await assert.rejects(ro.write(Buffer.from('overwrite'), 0, 9, 4096), (e: NodeJS.ErrnoException) => e.code === 'EPERM' || e.code === 'EROFS');
    } finally {
      await ro.close();
    }
  } else {
    assert.ok(['EPERM', 'EROFS', 'EACCES'].includes(ro.code ?? ''), String(ro));
  }
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, roTarget, cap, false), ctx('NodePublishVolume')), status.ALREADY_EXISTS);

  const stats = await node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: target, staging_target_path: staging }, ctx('NodeGetVolumeStats'));
  assert.deepEqual(stats.usage, [{ unit: 'BYTES', total: 16 * MiB }]);
  assert.equal(stats.volume_condition?.abnormal, false);

  await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume')), status.FAILED_PRECONDITION, /still published/);
  for (const p of [target, roTarget]) {
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
    await assert.rejects(stat(p), { code: 'ENOENT' });
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
  }
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'the read-only view was detached');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /not staged/);
});

test('raw block mapped by kubelet: a repeat NodeStage and NodePublish with the same arguments are OK, and a multi-writer volume publishes to a second target', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-mapped');
  const second = `${target}-2`;
  const cap = blockCap('SINGLE_NODE_MULTI_WRITER');
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  const mapPath = await kubeletMapBlock(box.kubeletDir, 'pv-mapped', target);

  // kubelet retries, and reconstructs after a restart (of itself or of this plugin: a new service, the same state).
  const restarted = createNodeService(resolveNodeSettings({ nodeId: 'instance-1', deviceRoot: box.deviceRoot, stateDir: box.stateDir, kubeletRoot: box.kubeletDir, discoveryTimeoutMs: 1_000 }));
  for (const service of [node, restarted]) {
    await service.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
    await service.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  }
  // A second pod on this node.
  await node.NodePublishVolume(publishReq(volumeId, staging, second, cap), ctx('NodePublishVolume'));
  assert.equal((await stat(second)).rdev, (await stat(target)).rdev, 'the second target is the same disk');

  await run('umount', [mapPath]); // kubelet unmaps before it asks to unpublish
  for (const p of [target, second]) {
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
    await assert.rejects(stat(p), { code: 'ENOENT' });
  }
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /not staged/);
});

test('raw block publish: a record that cannot be saved undoes the bind and the view; a bind made before a crash is recognised and recorded on retry', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-unsaved');
  const roTarget = `${target}-ro`;
  const cap = blockCap();
  // The state directory's filesystem has room for the staging record and no more.
  const records = path.join(box.stateDir, 'block-staging');
  await mkdir(records);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', records]);
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));

  for (const [p, readonly] of [[target, false], [roTarget, true]] as const) {
    await assert.rejects(node.NodePublishVolume(publishReq(volumeId, staging, p, cap, readonly), ctx('NodePublishVolume')), { code: 'ENOSPC' });
    assert.equal(await findMountAt(p), undefined, 'the bind was undone');
    await assert.rejects(stat(p), { code: 'ENOENT' }, 'the target file we made was removed');
    assert.deepEqual(await box.viewsOfOurLoops(), [], 'no read-only view was left behind');
    assert.deepEqual((await readdir(records)).filter((f) => f.endsWith('.tmp')), [], 'no half-written record was left behind');
  }
  await run('mount', ['-o', 'remount,size=1m', records]);

  // The plugin died after binding and before saving the record: the binds are there, unrecorded.
  await writeFile(target, '');
  await run('mount', ['--bind', loop.path, target]);
  const view = (await run('losetup', ['--read-only', '--find', '--show', loop.path])).stdout.trim();
  await writeFile(roTarget, '');
  await run('mount', ['--bind', view, roTarget]);
  await run('mount', ['-o', 'remount,bind,ro', roTarget]);
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, roTarget, cap, true), ctx('NodePublishVolume'));
  await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume')), status.FAILED_PRECONDITION, /still published at .*pod\/mount, .*pod\/mount-ro/);
  for (const p of [target, roTarget]) await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'the recorded view was detached at unpublish');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('raw block publish whose mount command fails after binding undoes the bind, the view and the target file', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-late-mount-failure');
  const cap = blockCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  // A mount that binds, then fails (as one that timed out after mount(2) had succeeded).
  const realMount = (await run('sh', ['-c', 'command -v mount'])).stdout.trim();
  const lateFailure = await fakeCommand(box, 'mount', `${realMount} "$@" || exit $?\necho "mount: simulated timeout" >&2\nexit 1`);
  for (const readonly of [false, true]) {
    await lateFailure(() => assert.rejects(node.NodePublishVolume(publishReq(volumeId, staging, target, cap, readonly), ctx('NodePublishVolume')), /simulated timeout/));
    assert.equal(await findMountAt(target), undefined, 'the bind was undone');
    await assert.rejects(stat(target), { code: 'ENOENT' }, 'the target file we made was removed');
    assert.deepEqual(await box.viewsOfOurLoops(), [], 'no read-only view was left behind');
    await node.NodePublishVolume(publishReq(volumeId, staging, target, cap, readonly), ctx('NodePublishVolume'));
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  }
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('raw block unpublish detaches a read-only view a crashed publish bound and never recorded', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-stray-view');
  const cap = blockCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  // The plugin died after binding a view and before saving the record; kubelet then unpublishes instead of retrying.
  const view = (await run('losetup', ['--read-only', '--find', '--show', loop.path])).stdout.trim();
  await writeFile(target, '');
  await run('mount', ['--bind', view, target]);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await assert.rejects(stat(target), { code: 'ENOENT' });
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'the unrecorded view was detached');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('raw block publish again at a target whose bind someone removed replaces its read-only view, leaking none', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-republish');
  const cap = blockCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap, true), ctx('NodePublishVolume'));
  const [first] = await box.viewsOfOurLoops();
  assert.ok(first);
  await run('umount', [target]); // not through the driver
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap, true), ctx('NodePublishVolume'));
  const views = await box.viewsOfOurLoops();
  assert.equal(views.length, 1, `one view, not ${JSON.stringify(views)}`);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  assert.deepEqual(await box.viewsOfOurLoops(), []);
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('raw block: a first publish to a new target is FAILED_PRECONDITION while the disk is mounted elsewhere', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  await run('mkfs.ext4', ['-q', loop.path]);
  const { staging, target } = await box.volumePaths('pv-used-after-stage');
  const cap = blockCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  const scratch = path.join(box.root, 'scratch');
  await mkdir(scratch);
  await run('mount', [loop.path, scratch]);
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /in use elsewhere: mounted at .*scratch/);
  assert.equal(await findMountAt(target), undefined, 'nothing was bound');
  await assert.rejects(stat(target), { code: 'ENOENT' });
  await run('umount', [scratch]);
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

/** Point the recorded view of `target` at `view`, as a record written before a reboot renumbered the loop devices would. */
async function recordViewName(stateDir: string, target: string, view: string): Promise<void> {
  const dir = path.join(stateDir, 'block-staging');
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  const record = JSON.parse(await readFile(path.join(dir, file!), 'utf8')) as { targets: { path: string; readOnlyView: string | null }[] };
  const entry = record.targets.find((t) => t.path === target);
  assert.ok(entry, `no record of ${target}`);
  entry.readOnlyView = view;
  await writeFile(path.join(dir, file!), JSON.stringify(record));
}

async function readsBlock(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    const { bytesRead } = await fh.read(Buffer.alloc(4096), 0, 4096, 0);
    assert.equal(bytesRead, 4096, `${p} reads`);
  } finally {
    await fh.close();
  }
}

test('raw block: a recorded view name that is now another target\'s view (loop numbers restart at reboot) is never detached', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box, 16 * MiB);
  const { staging, target: a } = await box.volumePaths('pv-renumbered');
  const b = `${a}-b`;
  const cap = blockCap('MULTI_NODE_READER_ONLY');
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, a, cap, true), ctx('NodePublishVolume'));
  const [viewA] = await box.viewsOfOurLoops();
  await node.NodePublishVolume(publishReq(volumeId, staging, b, cap, true), ctx('NodePublishVolume'));
  const viewB = (await box.viewsOfOurLoops()).find((v) => v !== viewA);
  assert.ok(viewA && viewB);

  // A's bind and view are gone (a reboot), and A's record names the number B's view has now.
  await run('umount', [a]);
  await run('losetup', ['--detach', viewA]);
  await recordViewName(box.stateDir, a, viewB);
  await node.NodePublishVolume(publishReq(volumeId, staging, a, cap, true), ctx('NodePublishVolume'));
  await readsBlock(b);
  assert.ok((await box.viewsOfOurLoops()).includes(viewB), 'republishing A left B\'s view attached');

  // A is bound to its own view again, and its record names B's.
  await recordViewName(box.stateDir, a, viewB);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: a }, ctx('NodeUnpublishVolume'));
  await readsBlock(b);
  assert.deepEqual(await box.viewsOfOurLoops(), [viewB], 'unpublishing A detached its own view and not B\'s');

  // After a reboot kubelet stages again: a publish whose bind has gone is forgotten, its view name with it.
  await node.NodePublishVolume(publishReq(volumeId, staging, a, cap, true), ctx('NodePublishVolume'));
  const viewA2 = (await box.viewsOfOurLoops()).find((v) => v !== viewB)!;
  await run('umount', [a]);
  await run('losetup', ['--detach', viewA2]);
  await recordViewName(box.stateDir, a, viewB);
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await readsBlock(b);
  const dir = path.join(box.stateDir, 'block-staging');
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  const record = JSON.parse(await readFile(path.join(dir, file!), 'utf8')) as { targets: { path: string; readOnlyView: string | null }[] };
  assert.deepEqual(record.targets, [{ path: b, readOnlyView: viewB }], 'A was forgotten, B kept');
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: a }, ctx('NodeUnpublishVolume'));
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: b }, ctx('NodeUnpublishVolume'));
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'B\'s view was detached with B');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('kubelet\'s root directory may be a symlink (a data disk\'s directory): raw block paths through it are staged, published and recorded by the path the mount table shows', { skip }, async (t) => {
  const { box } = await fixture(t);
  const { volumeId } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-linked');
  const linkedRoot = path.join(box.root, 'var-lib-kubelet');
  await symlink(box.kubeletDir, linkedRoot);
  const node = nodeServiceOn(box, { kubeletRoot: linkedRoot });
  const [linkedStaging, linkedTarget] = [staging, target].map((p) => path.join(linkedRoot, path.relative(box.kubeletDir, p)));
  const cap = blockCap();
  await node.NodeStageVolume(stageReq(volumeId, linkedStaging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, linkedStaging, linkedTarget, cap, true), ctx('NodePublishVolume'));
  assert.ok(await findMountAt(target), 'the kernel mounted at the resolved path');
  await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: linkedStaging }, ctx('NodeUnstageVolume')), status.FAILED_PRECONDITION, /still published/);
  await node.NodePublishVolume(publishReq(volumeId, linkedStaging, linkedTarget, cap, true), ctx('NodePublishVolume'));
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: linkedTarget }, ctx('NodeUnpublishVolume'));
  assert.deepEqual(await box.viewsOfOurLoops(), [], 'the read-only view was detached');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: linkedStaging }, ctx('NodeUnstageVolume'));
});

test('a path through a symlink below kubelet\'s root is INVALID_ARGUMENT: a link a pod made inside its volume never moves a publish, an unpublish or a stage elsewhere', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box);
  const { staging, target } = await box.volumePaths('pv-links');
  const cap = mountCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  // What the link leads to: an empty directory of the node's, which a publish would cover and an unpublish remove.
  const victim = path.join(box.root, 'victim');
  await mkdir(victim);
  // A pod that can write to the volume makes a link in it; so can anyone with a directory on kubelet's way.
  const inVolume = path.join(staging, 'evil');
  await symlink(victim, inVolume);
  const linkedDir = path.join(box.kubeletDir, 'pv-links', 'linked-pod');
  await symlink(victim, linkedDir);
  const dangling = path.join(box.kubeletDir, 'pv-links', 'dangling');
  await symlink(path.join(box.root, 'nowhere'), dangling);

  for (const p of [inVolume, path.join(linkedDir, 'mount'), path.join(dangling, 'mount')]) {
    await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, p, cap), ctx('NodePublishVolume')), status.INVALID_ARGUMENT, /target_path .* symlink/);
    await rejectsWithCode(node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume')), status.INVALID_ARGUMENT, /target_path .* symlink/);
  }
  const other = await attach(box);
  await rejectsWithCode(node.NodeStageVolume(stageReq(other.volumeId, path.join(linkedDir, 'globalmount'), cap), ctx('NodeStageVolume')), status.INVALID_ARGUMENT, /staging_target_path .* symlink/);
  const stagingLink = path.join(box.kubeletDir, 'staging-link');
  await symlink(path.dirname(staging), stagingLink);
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, path.join(stagingLink, 'globalmount'), target, cap), ctx('NodePublishVolume')), status.INVALID_ARGUMENT, /staging_target_path .* symlink/);
  await assert.rejects(stat(target), { code: 'ENOENT' }, 'a refused publish makes no target');
  assert.equal(await findMountAt(victim), undefined, 'nothing was mounted over the link\'s destination');
  assert.ok((await stat(victim)).isDirectory(), 'nor was it removed');
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('a path inside a volume\'s filesystem is INVALID_ARGUMENT: no volume is staged or published inside one staged here', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const a = await attach(box);
  const b = await attach(box);
  const { staging, target } = await box.volumePaths('pv-outer');
  const cap = mountCap();
  await node.NodeStageVolume(stageReq(a.volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(a.volumeId, staging, target, cap), ctx('NodePublishVolume'));
  // Directories the pods of volume A can write to: in its staging mount, and in its publish.
  for (const dir of [path.join(staging, 'sub'), path.join(target, 'sub')]) {
    await mkdir(path.join(dir, 'globalmount'), { recursive: true });
    await rejectsWithCode(node.NodePublishVolume(publishReq(a.volumeId, staging, path.join(dir, 'mount'), cap), ctx('NodePublishVolume')), status.INVALID_ARGUMENT, /target_path .* inside the filesystem of a volume/);
    await rejectsWithCode(node.NodeStageVolume(stageReq(b.volumeId, path.join(dir, 'globalmount'), cap), ctx('NodeStageVolume')), status.INVALID_ARGUMENT, /staging_target_path .* inside the filesystem of a volume/);
  }
  assert.deepEqual((await box.mountsUnder()).sort(), [staging, target].sort(), 'nothing was mounted inside the volume');
  await node.NodeUnpublishVolume({ volume_id: a.volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: a.volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('stats match statfs; NOT_FOUND for paths that are not mounted volumes; abnormal when the filesystem goes read-only or the mount goes away', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box);
  const { staging, target } = await box.volumePaths('pv-stats');
  const cap = mountCap();
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await writeFile(path.join(target, 'blob'), Buffer.alloc(3 * MiB, 1));

  const req = { volume_id: volumeId, volume_path: target, staging_target_path: staging };
  const res = await node.NodeGetVolumeStats(req, ctx('NodeGetVolumeStats'));
  const s = await statfs(target);
  assert.deepEqual(res.usage, [
    { unit: 'BYTES', total: s.blocks * s.bsize, available: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize },
    { unit: 'INODES', total: s.files, available: s.ffree, used: s.files - s.ffree },
  ]);
  assert.ok((res.usage?.[0].used as number) >= 3 * MiB);
  assert.equal(res.volume_condition?.abnormal, false);

  await rejectsWithCode(node.NodeGetVolumeStats({ ...req, volume_path: path.join(box.root, 'nope') }, ctx('NodeGetVolumeStats')), status.NOT_FOUND);
  await rejectsWithCode(node.NodeGetVolumeStats({ ...req, volume_path: box.stateDir, staging_target_path: '' }, ctx('NodeGetVolumeStats')), status.NOT_FOUND, /not a mounted volume/);

  // The filesystem itself goes read-only (as ext4 does after errors) while the pod's mount is read-write.
  await run('mount', ['-o', 'remount,ro', staging]);
  const ro = await node.NodeGetVolumeStats(req, ctx('NodeGetVolumeStats'));
  assert.equal(ro.volume_condition?.abnormal, true);
  assert.match(ro.volume_condition?.message ?? '', /read-only/);
  await run('mount', ['-o', 'remount,rw', staging]);

  // Someone unmounted the pod's mount behind our back.
  await run('umount', [target]);
  const gone = await node.NodeGetVolumeStats(req, ctx('NodeGetVolumeStats'));
  assert.equal(gone.volume_condition?.abnormal, true);
  assert.match(gone.volume_condition?.message ?? '', /nothing is mounted/);

  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

/** Stage and publish a filesystem volume, grow its disk, NodeExpandVolume, and check the filesystem grew. */
async function expandFilesystem(t: Parameters<typeof Sandbox.create>[0], fsType: string, fromBytes: number, toBytes: number): Promise<void> {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, fromBytes);
  const { staging, target } = await box.volumePaths(`pv-expand-${fsType}`);
  const cap = mountCap(fsType);
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  const before = await statfs(target);

  await box.grow(loop, toBytes);
  const expandReq = { volume_id: volumeId, volume_path: target, staging_target_path: staging, capacity_range: { required_bytes: toBytes, limit_bytes: 0 }, volume_capability: cap, secrets: {} };
  const res = await node.NodeExpandVolume(expandReq, ctx('NodeExpandVolume'));
  assert.equal(res.capacity_bytes, toBytes);
  const after = await statfs(target);
  const grown = (after.blocks * after.bsize) / (before.blocks * before.bsize);
  assert.ok(grown > (toBytes / fromBytes) * 0.9, `grew by ${grown}x, from ${before.blocks * before.bsize} to ${after.blocks * after.bsize} bytes`);
  assert.equal((await node.NodeExpandVolume(expandReq, ctx('NodeExpandVolume'))).capacity_bytes, toBytes, 'idempotent');

  await rejectsWithCode(node.NodeExpandVolume({ ...expandReq, capacity_range: { required_bytes: 2 * toBytes, limit_bytes: 0 } }, ctx('NodeExpandVolume')), status.UNAVAILABLE);
  await rejectsWithCode(node.NodeExpandVolume({ ...expandReq, volume_path: path.join(box.root, 'nope') }, ctx('NodeExpandVolume')), status.NOT_FOUND);
  await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
}

test('online expand grows a mounted xfs filesystem', { skip: XFS_SKIP }, async (t) => {
  await expandFilesystem(t, 'xfs', 320 * MiB, 640 * MiB);
});

test('online expand grows a mounted ext4 filesystem', { skip: EXT4_ONLINE_RESIZE_SKIP }, async (t) => {
  await expandFilesystem(t, 'ext4', 256 * MiB, 512 * MiB);
});

test('NodeExpandVolume grows only the volume\'s own filesystem: another volume\'s publish at volume_path is NOT_FOUND and is not grown', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const a = await attach(box);
  const b = await attach(box);
  const { staging, target } = await box.volumePaths('pv-b');
  const cap = mountCap('ext4');
  await node.NodeStageVolume(stageReq(b.volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(b.volumeId, staging, target, cap), ctx('NodePublishVolume'));
  await box.grow(b.loop, 128 * MiB);
  const before = await statfs(target);
  await rejectsWithCode(
    node.NodeExpandVolume({ volume_id: a.volumeId, volume_path: target, staging_target_path: '', capacity_range: null, volume_capability: cap, secrets: {} }, ctx('NodeExpandVolume')),
    status.NOT_FOUND,
    new RegExp(`volume ${a.volumeId} is not published at volume_path .*: it holds a filesystem on ${path.basename(b.loop.path)}`),
  );
  assert.equal((await statfs(target)).blocks, before.blocks, 'volume B\'s filesystem was not grown');
  await node.NodeUnpublishVolume({ volume_id: b.volumeId, target_path: target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: b.volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('expand of a raw block volume reports the new size, through a read-only view too', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const block = await attach(box, 16 * MiB);
  const paths = await box.volumePaths('pv-expand-block');
  await node.NodeStageVolume(stageReq(block.volumeId, paths.staging, blockCap()), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(block.volumeId, paths.staging, paths.target, blockCap(), true), ctx('NodePublishVolume'));
  await box.grow(block.loop, 32 * MiB);
  const blockRes = await node.NodeExpandVolume(
    { volume_id: block.volumeId, volume_path: paths.target, staging_target_path: paths.staging, capacity_range: null, volume_capability: blockCap(), secrets: {} },
    ctx('NodeExpandVolume'),
  );
  assert.equal(blockRes.capacity_bytes, 32 * MiB, 'the read-only view follows the device');
  await node.NodeUnpublishVolume({ volume_id: block.volumeId, target_path: paths.target }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: block.volumeId, staging_target_path: paths.staging }, ctx('NodeUnstageVolume'));
});

test('expand of a raw block volume through one target grows every read-only view of it', { skip }, async (t) => {
  // kubelet expands a volume once, through one of its targets; the pods reading it elsewhere see the new size too.
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 16 * MiB);
  const { staging, target } = await box.volumePaths('pv-expand-views');
  const roTargets = [`${target}-ro-1`, `${target}-ro-2`];
  const cap = blockCap('SINGLE_NODE_MULTI_WRITER');
  await node.NodeStageVolume(stageReq(volumeId, staging, cap), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, cap), ctx('NodePublishVolume'));
  for (const p of roTargets) await node.NodePublishVolume(publishReq(volumeId, staging, p, cap, true), ctx('NodePublishVolume'));
  await box.grow(loop, 32 * MiB);
  const res = await node.NodeExpandVolume(
    { volume_id: volumeId, volume_path: target, staging_target_path: staging, capacity_range: null, volume_capability: cap, secrets: {} },
    ctx('NodeExpandVolume'),
  );
  assert.equal(res.capacity_bytes, 32 * MiB);
  for (const p of roTargets) {
    const stats = await node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: p, staging_target_path: staging }, ctx('NodeGetVolumeStats'));
    assert.deepEqual(stats.usage, [{ unit: 'BYTES', total: 32 * MiB }], p);
  }
  for (const p of [target, ...roTargets]) await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

/**
 * A volume restored from a smaller snapshot: its filesystem is smaller than its disk until stage grows it.
 * `firstAttemptMounted`: a stage before this one mounted it and then failed (its mount command timed
 * out after mount(2) had succeeded) or died before growing, so this stage finds it already staged.
 */
async function stageRestoredLarger(
  t: Parameters<typeof Sandbox.create>[0],
  fsType: 'ext4' | 'xfs',
  fromBytes: number,
  toBytes: number,
  firstAttemptMounted = false,
): Promise<void> {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, fromBytes);
  await run(`mkfs.${fsType}`, ['-q', loop.path]);
  await box.grow(loop, toBytes);
  const { staging } = await box.volumePaths('pv-restored');
  if (firstAttemptMounted) {
    await run('mount', ['-t', fsType, ...(fsType === 'xfs' ? ['-o', 'nouuid'] : []), loop.path, staging]);
    const before = await statfs(staging);
    assert.ok(before.blocks * before.bsize <= fromBytes, 'the first attempt did not grow it');
  }
  const req = stageReq(volumeId, staging, mountCap(fsType), { resizeRequired: 'true' });
  await node.NodeStageVolume(req, ctx('NodeStageVolume'));
  const s = await statfs(staging);
  assert.ok(s.blocks * s.bsize > fromBytes * 1.5, `filesystem is ${s.blocks * s.bsize} bytes on a ${toBytes}-byte disk`);
  await node.NodeStageVolume(req, ctx('NodeStageVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
}

test('stage grows an xfs filesystem when the volume context says it was restored larger', { skip: XFS_SKIP }, async (t) => {
  await stageRestoredLarger(t, 'xfs', 320 * MiB, 640 * MiB);
});

test('stage grows an ext4 filesystem when the volume context says it was restored larger', { skip: EXT4_ONLINE_RESIZE_SKIP }, async (t) => {
  await stageRestoredLarger(t, 'ext4', 256 * MiB, 512 * MiB);
});

test('a retried stage grows an xfs filesystem that the first attempt mounted but did not grow', { skip: XFS_SKIP }, async (t) => {
  await stageRestoredLarger(t, 'xfs', 320 * MiB, 640 * MiB, true);
});

test('a retried stage grows an ext4 filesystem that the first attempt mounted but did not grow', { skip: EXT4_ONLINE_RESIZE_SKIP }, async (t) => {
  await stageRestoredLarger(t, 'ext4', 256 * MiB, 512 * MiB, true);
});

/**
 * The controller marks every volume made from a source for growth (it cannot tell which are larger than
 * their source): one whose filesystem fills its disk already stages as it is, the growth doing nothing.
 * (Needs no CAP_SYS_RESOURCE: resize2fs stops before the online resize when the size is the same.)
 */
async function stageCopyOfSameSize(t: Parameters<typeof Sandbox.create>[0], fsType: 'ext4' | 'xfs'): Promise<void> {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 320 * MiB);
  await run(`mkfs.${fsType}`, ['-q', loop.path]);
  const { staging } = await box.volumePaths('pv-copy');
  const req = stageReq(volumeId, staging, mountCap(fsType), { resizeRequired: 'true' });
  await node.NodeStageVolume(req, ctx('NodeStageVolume'));
  const staged = await statfs(staging);
  await node.NodeStageVolume(req, ctx('NodeStageVolume'));
  assert.equal((await statfs(staging)).blocks, staged.blocks);
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
}

test('stage of an ext4 volume the volume context marks for growth, whose filesystem fills its disk, leaves it as it is', { skip }, async (t) => {
  await stageCopyOfSameSize(t, 'ext4');
});

test('stage of an xfs volume the volume context marks for growth, whose filesystem fills its disk, leaves it as it is', { skip: XFS_SKIP }, async (t) => {
  await stageCopyOfSameSize(t, 'xfs');
});

test('a first stage whose filesystem growth fails leaves the volume unstaged', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId, loop } = await attach(box, 64 * MiB);
  await run('mkfs.ext4', ['-q', loop.path]);
  const { staging } = await box.volumePaths('pv-grow-fails');
  const failing = await fakeCommand(box, 'resize2fs', 'echo "resize2fs: simulated failure" >&2\nexit 1');
  await failing(() =>
    assert.rejects(node.NodeStageVolume(stageReq(volumeId, staging, mountCap('ext4'), { resizeRequired: 'true' }), ctx('NodeStageVolume')), /simulated failure/),
  );
  assert.equal(await findMountAt(staging), undefined, 'the staging mount was undone');
});

test('a different operation on a volume in flight is ABORTED; an identical retry joins it', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const loop = await box.loopDevice(64 * MiB);
  const volumeId = randomUUID();
  const { staging } = await box.volumePaths('pv-concurrent');
  const req = stageReq(volumeId, staging, mountCap());
  // The disk is not there yet, so the first stage is still polling for it.
  const first = node.NodeStageVolume(req, ctx('NodeStageVolume'));
  const retry = node.NodeStageVolume(req, ctx('NodeStageVolume'));
  await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume')), status.ABORTED, /NodeStageVolume/);
  await box.linkVirtio(volumeId, loop);
  await Promise.all([first, retry]);
  assert.equal((await findMountAt(staging))?.source, loop.path);
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('staging path already staged from another device is ALREADY_EXISTS; a missing disk is NOT_FOUND; publish before stage is FAILED_PRECONDITION', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const a = await attach(box);
  const b = await attach(box);
  const { staging, target } = await box.volumePaths('pv-shared-staging');
  await node.NodeStageVolume(stageReq(a.volumeId, staging, mountCap()), ctx('NodeStageVolume'));
  await rejectsWithCode(node.NodeStageVolume(stageReq(b.volumeId, staging, mountCap()), ctx('NodeStageVolume')), status.ALREADY_EXISTS, /already staged from/);
  await rejectsWithCode(node.NodeStageVolume(stageReq(a.volumeId, staging, mountCap('xfs')), ctx('NodeStageVolume')), status.ALREADY_EXISTS);
  assert.equal(await blkidValue(b.loop.path, 'TYPE'), '', 'the other disk was not touched');
  await node.NodeUnstageVolume({ volume_id: a.volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));

  await rejectsWithCode(node.NodeStageVolume(stageReq(randomUUID(), staging, mountCap()), ctx('NodeStageVolume')), status.NOT_FOUND, /is it attached/);
  await rejectsWithCode(node.NodePublishVolume(publishReq(a.volumeId, staging, target, mountCap()), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /not staged/);
  await assert.rejects(stat(target), { code: 'ENOENT' }, 'a refused publish creates nothing');
});

test('NodeUnpublishVolume removes only what a publish makes: a device node, a socket or a FIFO at target_path is FAILED_PRECONDITION and stays; an empty file or directory it cannot tell is its own stays, and the answer is OK', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const volumeId = randomUUID(); // not attached here, never published
  const dir = path.join(box.kubeletDir, 'not-targets');
  await mkdir(dir);
  const nullDevice = path.join(dir, 'fake-null');
  await run('mknod', [nullDevice, 'c', '1', '3']);
  const fifo = path.join(dir, 'fifo');
  await run('mkfifo', [fifo]);
  const socket = path.join(dir, 'socket');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  for (const [p, kind] of [[nullDevice, 'character device'], [fifo, 'FIFO'], [socket, 'socket']]) {
    await rejectsWithCode(node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume')), status.FAILED_PRECONDITION, new RegExp(`is a ${kind}, which a publish never makes`));
    assert.ok(await lstat(p), `${p} is still there`);
  }
  const emptyFile = path.join(dir, 'xtables.lock');
  await writeFile(emptyFile, '');
  const emptyDir = path.join(dir, 'empty');
  await mkdir(emptyDir);
  for (const p of [emptyFile, emptyDir]) {
    await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
    assert.ok(await lstat(p), `${p} is still there`);
  }
});

test('NodeUnpublishVolume and NodeUnstageVolume unmount only the volume\'s own mounts: a tmpfs, another volume\'s disk or a bind of part of a filesystem is FAILED_PRECONDITION and stays mounted', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const a = await attach(box);
  const b = await attach(box);
  const pathsA = await box.volumePaths('pv-a');
  const pathsB = await box.volumePaths('pv-b');
  const cap = mountCap();
  for (const [v, p] of [[a, pathsA], [b, pathsB]] as const) {
    await node.NodeStageVolume(stageReq(v.volumeId, p.staging, cap), ctx('NodeStageVolume'));
    await node.NodePublishVolume(publishReq(v.volumeId, p.staging, p.target, cap), ctx('NodePublishVolume'));
  }
  // Someone's secrets on a tmpfs, and a bind of a subdirectory of volume A (not a publish: a publish binds the whole filesystem).
  const secrets = path.join(box.kubeletDir, 'secrets');
  await mkdir(secrets);
  await run('mount', ['-t', 'tmpfs', 'tmpfs', secrets]);
  await writeFile(path.join(secrets, 'token'), 'secret');
  await mkdir(path.join(pathsA.target, 'sub'));
  const subBind = path.join(box.kubeletDir, 'sub-bind');
  await mkdir(subBind);
  await run('mount', ['--bind', path.join(pathsA.target, 'sub'), subBind]);
  const unknown = randomUUID(); // a volume not attached here

  const refusals: [string, string, RegExp][] = [
    [a.volumeId, secrets, /holds a tmpfs filesystem/],
    [unknown, secrets, /holds a tmpfs filesystem/],
    [a.volumeId, pathsB.target, new RegExp(`holds a filesystem on ${path.basename(b.loop.path)} \\(by-id link virtio-${b.volumeId.slice(0, 20)}\\), not the disk of volume ${a.volumeId} \\(${a.loop.path}\\)`)],
    [unknown, pathsB.target, /, which is not attached here/],
    [a.volumeId, subBind, /a bind of \/sub .* not a whole filesystem/],
  ];
  for (const [volumeId, target, message] of refusals) {
    await rejectsWithCode(node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, ctx('NodeUnpublishVolume')), status.FAILED_PRECONDITION, message);
  }
  for (const [volumeId, staging, message] of [[a.volumeId, pathsB.staging, /holds a filesystem on/], [unknown, secrets, /holds a tmpfs filesystem/]] as const) {
    await rejectsWithCode(node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume')), status.FAILED_PRECONDITION, message);
  }
  assert.equal(await readFile(path.join(secrets, 'token'), 'utf8'), 'secret', 'the tmpfs is still mounted');
  for (const p of [pathsB.target, pathsB.staging, subBind]) assert.ok(await findMountAt(p), `${p} is still mounted`);

  await run('umount', [subBind]);
  await run('umount', [secrets]);
  for (const [v, p] of [[a, pathsA], [b, pathsB]] as const) {
    await node.NodeUnpublishVolume({ volume_id: v.volumeId, target_path: p.target }, ctx('NodeUnpublishVolume'));
    await node.NodeUnstageVolume({ volume_id: v.volumeId, staging_target_path: p.staging }, ctx('NodeUnstageVolume'));
  }
});

test('NodePublishVolume binds only the volume\'s own staging mount: a tmpfs or another volume\'s staging mount at staging_target_path is FAILED_PRECONDITION, a volume not attached here NOT_FOUND, and nothing is bound', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const a = await attach(box);
  const b = await attach(box);
  const pathsB = await box.volumePaths('pv-b');
  const cap = mountCap();
  await node.NodeStageVolume(stageReq(b.volumeId, pathsB.staging, cap), ctx('NodeStageVolume'));
  const secrets = path.join(box.kubeletDir, 'secrets');
  await mkdir(secrets);
  await run('mount', ['-t', 'tmpfs', 'tmpfs', secrets]);
  await writeFile(path.join(secrets, 'token'), 'secret');
  const { target } = await box.volumePaths('pv-a');

  await rejectsWithCode(node.NodePublishVolume(publishReq(a.volumeId, secrets, target, cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /not staged at .*: it holds a tmpfs filesystem/);
  await rejectsWithCode(node.NodePublishVolume(publishReq(a.volumeId, pathsB.staging, target, cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, new RegExp(`not staged at .*: it holds ${b.loop.path} .*, not the volume's disk ${a.loop.path}`));
  await rejectsWithCode(node.NodePublishVolume(publishReq(randomUUID(), secrets, target, cap), ctx('NodePublishVolume')), status.NOT_FOUND, /is it attached/);
  assert.equal(await findMountAt(target), undefined, 'nothing was bound');
  await assert.rejects(stat(target), { code: 'ENOENT' }, 'a refused publish makes no target');

  await run('umount', [secrets]);
  await node.NodeUnstageVolume({ volume_id: b.volumeId, staging_target_path: pathsB.staging }, ctx('NodeUnstageVolume'));
});

test('SINGLE_NODE_SINGLE_WRITER allows one target; SINGLE_NODE_MULTI_WRITER allows several', { skip }, async (t) => {
  const { box, node } = await fixture(t);
  const { volumeId } = await attach(box);
  const { staging, target } = await box.volumePaths('pv-rwop');
  const single = mountCap('', 'SINGLE_NODE_SINGLE_WRITER');
  await node.NodeStageVolume(stageReq(volumeId, staging, single), ctx('NodeStageVolume'));
  await node.NodePublishVolume(publishReq(volumeId, staging, target, single), ctx('NodePublishVolume'));
  await rejectsWithCode(node.NodePublishVolume(publishReq(volumeId, staging, `${target}-2`, single), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /already published/);
  const multi = mountCap('', 'SINGLE_NODE_MULTI_WRITER');
  await node.NodePublishVolume(publishReq(volumeId, staging, `${target}-3`, multi), ctx('NodePublishVolume'));
  for (const p of [target, `${target}-3`]) await node.NodeUnpublishVolume({ volume_id: volumeId, target_path: p }, ctx('NodeUnpublishVolume'));
  await node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, ctx('NodeUnstageVolume'));
});

test('required fields are INVALID_ARGUMENT naming the field', async () => {
  const node = createNodeService(resolveNodeSettings({ nodeId: 'instance-1', stateDir: '/nonexistent/state' }));
  const cap = mountCap();
  const cases: [Promise<unknown>, RegExp][] = [
    [node.NodeStageVolume(stageReq('', '/s', cap), ctx('NodeStageVolume')), /volume_id/],
    [node.NodeStageVolume(stageReq('v', '', cap), ctx('NodeStageVolume')), /staging_target_path/],
    [node.NodeStageVolume(stageReq('v', 'relative', cap), ctx('NodeStageVolume')), /staging_target_path/],
    [node.NodeStageVolume({ ...stageReq('v', '/s', cap), volume_capability: null }, ctx('NodeStageVolume')), /volume_capability/],
    [node.NodeStageVolume(stageReq('v', '/s', mountCap('zfs')), ctx('NodeStageVolume')), /fs_type/],
    [node.NodeUnstageVolume({ volume_id: '', staging_target_path: '/s' }, ctx('NodeUnstageVolume')), /volume_id/],
    [node.NodeUnstageVolume({ volume_id: 'v', staging_target_path: '' }, ctx('NodeUnstageVolume')), /staging_target_path/],
    [node.NodePublishVolume(publishReq('', '/s', '/t', cap), ctx('NodePublishVolume')), /volume_id/],
    [node.NodePublishVolume(publishReq('v', 'relative', '/t', cap), ctx('NodePublishVolume')), /staging_target_path/],
    [node.NodePublishVolume(publishReq('v', '/s', '', cap), ctx('NodePublishVolume')), /target_path/],
    [node.NodePublishVolume(publishReq('v', '/s', '/a/../t', cap), ctx('NodePublishVolume')), /target_path/],
    [node.NodePublishVolume({ ...publishReq('v', '/s', '/t', cap), volume_capability: null }, ctx('NodePublishVolume')), /volume_capability/],
    [node.NodeUnpublishVolume({ volume_id: '', target_path: '/t' }, ctx('NodeUnpublishVolume')), /volume_id/],
    [node.NodeUnpublishVolume({ volume_id: 'v', target_path: '' }, ctx('NodeUnpublishVolume')), /target_path/],
    [node.NodeGetVolumeStats({ volume_id: '', volume_path: '/t', staging_target_path: '' }, ctx('NodeGetVolumeStats')), /volume_id/],
    [node.NodeGetVolumeStats({ volume_id: 'v', volume_path: '', staging_target_path: '' }, ctx('NodeGetVolumeStats')), /volume_path/],
    [node.NodeExpandVolume({ volume_id: '', volume_path: '/t', staging_target_path: '', capacity_range: null, volume_capability: null, secrets: {} }, ctx('NodeExpandVolume')), /volume_id/],
    [node.NodeExpandVolume({ volume_id: 'v', volume_path: '', staging_target_path: '', capacity_range: null, volume_capability: null, secrets: {} }, ctx('NodeExpandVolume')), /volume_path/],
  ];
  for (const [call, field] of cases) await rejectsWithCode(call, status.INVALID_ARGUMENT, field);
});

test('NodePublishVolume without a staging path is FAILED_PRECONDITION (the spec, for a plugin that stages), after the required fields', async () => {
  const node = createNodeService(resolveNodeSettings({ nodeId: 'instance-1', stateDir: '/nonexistent/state' }));
  const cap = mountCap();
  await rejectsWithCode(node.NodePublishVolume(publishReq('v', '', '/t', cap), ctx('NodePublishVolume')), status.FAILED_PRECONDITION, /staging_target_path is missing/);
  await rejectsWithCode(node.NodePublishVolume(publishReq('v', '', '', cap), ctx('NodePublishVolume')), status.INVALID_ARGUMENT, /target_path/);
  await rejectsWithCode(node.NodePublishVolume({ ...publishReq('v', '', '/t', cap), volume_capability: null }, ctx('NodePublishVolume')), status.INVALID_ARGUMENT, /volume_capability/);
});

test('NodeGetInfo and NodeGetCapabilities', async () => {
  const node = createNodeService(resolveNodeSettings({ nodeId: 'instance-1', availabilityZone: 'az-1', maxVolumesPerNode: 12 }));
  assert.deepEqual(await node.NodeGetInfo({}, ctx('NodeGetInfo')), {
    node_id: 'instance-1',
    max_volumes_per_node: 12,
    accessible_topology: { segments: { [TOPOLOGY_ZONE_KEY]: 'az-1' } },
  });
  const noZone = createNodeService(resolveNodeSettings({ nodeId: 'instance-1' }));
  const info = await noZone.NodeGetInfo({}, ctx('NodeGetInfo'));
  assert.equal(info.accessible_topology, null);
  assert.ok((info.max_volumes_per_node as number) > 0);
  const caps = await node.NodeGetCapabilities({}, ctx('NodeGetCapabilities'));
  assert.deepEqual(
    caps.capabilities?.map((c) => c.rpc?.type),
    ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME', 'VOLUME_CONDITION', 'SINGLE_NODE_MULTI_WRITER'],
  );
});
