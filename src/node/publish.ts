// NodePublishVolume: bind the staged filesystem at the target directory, or
// the volume's disk (read-only: a read-only view of it) onto the target file.
import { mkdir, open, rmdir, unlink } from 'node:fs/promises';
import type { CallContext } from '../csi/context';
import { alreadyExists, failedPrecondition } from '../csi/errors';
import type { NodePublishVolumeRequest__Output } from '../gen/csi/v1/NodePublishVolumeRequest';
import { allowsOneTargetOnly, type ParsedCapability } from './capability';
import { bindMount, deviceNumber, findMountAt, isReadOnlyMount, listMounts, unmount, unmountAll } from './mount';
import { sysfsAttribute } from './stats';
import type { BlockStaging, PublishedTarget } from './staging-store';
import { createReadOnlyView, readOnlyViewOf, removeReadOnlyView } from './readonly-view';
import { mountedDisk } from './ownership';
import { discover, requestPath, type NodeEnv } from './env';
import { bigStatOrNull, lstatOrNull, statOrNull } from './fs-helpers';
import { refuseIfInUse, refuseInsideVolume } from './guards';
import { detachUnusedViews, mountedTargets, targetPaths } from './block-publishes';

/** A publish, in the volume's in-flight slot; the filesystem and the raw block one take the same arguments. */
type Publish = (
  env: NodeEnv,
  req: NodePublishVolumeRequest__Output,
  cap: ParsedCapability,
  stagingPath: string,
  targetPath: string,
  readOnly: boolean,
  signal: AbortSignal,
  ctx: CallContext,
) => Promise<void>;

/** The work of a NodePublishVolume, in its in-flight slot (service.ts checked the request). */
export const publishVolume: Publish = async (env, req, cap, stagingPath, targetPath, readOnly, signal, ctx) => {
  const [staging, target] = await Promise.all([
    requestPath(env, stagingPath, 'staging_target_path', 'staging'),
    requestPath(env, targetPath, 'target_path', 'target'),
  ]);
  await refuseInsideVolume(env, target, 'target_path');
  if (cap.access === 'mount') await publishFilesystem(env, req, cap, staging, target, readOnly, signal, ctx);
  else await publishBlock(env, req, cap, staging, target, readOnly, signal, ctx);
};

const publishFilesystem: Publish = async (env, req, cap, stagingPath, targetPath, readOnly, signal, ctx) => {
  const mounts = await listMounts(signal);
  const staged = mounts.at(stagingPath);
  if (!staged) throw failedPrecondition(`volume ${req.volume_id} is not staged at ${stagingPath}; call NodeStageVolume first`);
  // What is mounted there must be the volume's disk, as a stage mounts it (whole), not just anything: a bind of it
  // would hand the pod whatever that is. The disk is looked for once, as for a raw block publish.
  const device = await discover(env, req.volume_id, req.publish_context, signal, ctx, 0);
  const disk = await mountedDisk(stagingPath, staged);
  if (typeof disk === 'string' || disk.block || disk.majMin !== (await deviceNumber(device.path))) {
    const what = typeof disk === 'string' ? disk : `${staged.source} (${disk.majMin})`;
    throw failedPrecondition(`volume ${req.volume_id} is not staged at ${stagingPath}: it holds ${what}, not the volume's disk ${device.path}; call NodeStageVolume first`);
  }
  // A bind mount of a read-only mount is read-only: a read-write publish would quietly not be one.
  if (!readOnly && isReadOnlyMount(staged)) {
    throw failedPrecondition(
      `volume ${req.volume_id} is staged read-only at ${stagingPath} (its disk is attached read-only, or the mount options say 'ro'); ` +
        'it can be published only read-only',
    );
  }
  const existing = mounts.at(targetPath);
  if (existing) {
    if (existing.majMin !== staged.majMin || existing.fsroot !== staged.fsroot) {
      throw alreadyExists(`${targetPath} is already a mount of ${existing.source}, not of volume ${req.volume_id}`);
    }
    if (isReadOnlyMount(existing) !== readOnly) {
      throw alreadyExists(`volume ${req.volume_id} is already published at ${targetPath} with readonly=${!readOnly}`);
    }
    ctx.log.info({ targetPath }, 'volume already published');
    return;
  }
  if (allowsOneTargetOnly(cap.mode)) {
    const others = mounts.ofDevice(staged.majMin).filter((m) => m.target !== stagingPath);
    if (others.length > 0) {
      throw failedPrecondition(`volume ${req.volume_id} (${cap.mode}) is already published at ${others.map((m) => m.target).join(', ')}`);
    }
  }
  const created = await ensureDirectory(targetPath);
  try {
    await bindMount(stagingPath, targetPath, readOnly, signal);
  } catch (err) {
    // mount(8) can fail after mount(2) bound the target (killed at its timeout, or the caller gone). Nothing
    // was mounted there before, so a bind of the staged filesystem there now is ours: left, it would answer
    // a read-only retry ALREADY_EXISTS, and kubelet, told the publish failed, would never unpublish it.
    const left = await findMountAt(targetPath).catch(() => undefined);
    if (left && left.majMin === staged.majMin && left.fsroot === staged.fsroot) {
      await unmountAll(targetPath).catch((e: Error) => ctx.log.warn({ targetPath, err: e.message }, 'could not undo the bind of a failed publish'));
    }
    if (created) await rmdir(targetPath).catch(() => undefined);
    throw err;
  }
  ctx.log.info({ stagingPath, targetPath, readOnly }, 'published volume');
};

const publishBlock: Publish = async (env, req, cap, stagingPath, targetPath, readOnly, signal, ctx) => {
  const volumeId = req.volume_id;
  const record = await env.store.get(volumeId);
  if (!record || record.stagingPath !== stagingPath) {
    throw failedPrecondition(`volume ${volumeId} is not staged at ${stagingPath}; call NodeStageVolume first`);
  }
  // The device was remembered at stage time (which refused a disk in use elsewhere); make sure
  // the disk that carries this volume's serial now still is that device. Whether anything else
  // uses it is asked only of a first publish to a target (below): a repeat is answered first.
  const device = await discover(env, volumeId, req.publish_context, signal, ctx, 0);
  if ((await deviceNumber(device.path)) !== record.majMin) {
    throw failedPrecondition(`the device of volume ${volumeId} changed since it was staged; unstage and stage it again`);
  }
  // A read-only disk (a read-only attachment, see stage.ts stageFilesystem) would take no writes.
  if (!readOnly && sysfsAttribute(env.settings.sysfsRoot, record.majMin, 'ro') === '1') {
    throw failedPrecondition(`volume ${volumeId} is attached read-only (${device.path}); it can be published only read-only`);
  }
  const existing = await findMountAt(targetPath, signal);
  if (existing) {
    const target = await statOrNull(targetPath);
    let published = record.targets.find((t) => t.path === targetPath);
    if (!published && target?.isBlockDevice()) {
      published = await unrecordedPublish(env, targetPath, record, signal);
      if (published) {
        // Recorded before anything else is checked, so that NodeUnpublishVolume detaches its view.
        record.targets = [...record.targets, published];
        await env.store.put(record);
        ctx.log.warn({ targetPath, view: published.readOnlyView }, 'found a publish of this volume that was never recorded; recorded it');
      }
    }
    const expected = published?.readOnlyView ?? device.path;
    if (!published || !target?.isBlockDevice() || (await deviceNumber(targetPath)) !== (await deviceNumber(expected))) {
      throw alreadyExists(`${targetPath} is already a mount of ${existing.source}, not of volume ${volumeId}`);
    }
    if ((published.readOnlyView !== null) !== readOnly) {
      throw alreadyExists(`volume ${volumeId} is already published at ${targetPath} with readonly=${!readOnly}`);
    }
    ctx.log.info({ targetPath }, 'volume already published');
    return;
  }
  if (allowsOneTargetOnly(cap.mode)) {
    const others = (await mountedTargets(record, signal)).filter((t) => t !== targetPath);
    if (others.length > 0) throw failedPrecondition(`volume ${volumeId} (${cap.mode}) is already published at ${others.join(', ')}`);
  }
  // Since staging, something else may have mounted or taken the disk. Its own publishes, and
  // kubelet's maps of them (refuseForeignUse), are not a use by anything else.
  await refuseIfInUse(env, device, volumeId, [stagingPath, targetPath, ...targetPaths(record)], signal);
  // A recorded publish here whose bind has gone (unmounted by someone else), or one that died before binding:
  // its view goes before a read-only publish makes another. (A read-write publish makes none and forks no
  // losetup for them: unpublish and unstage sweep as well.)
  if (readOnly) await detachUnusedViews(env, record, signal, ctx);
  const created = await ensureFile(targetPath);
  let view: string | null = null;
  let bound = false;
  try {
    if (readOnly) view = await createReadOnlyView(device.path, signal);
    await bindMount(view ?? device.path, targetPath, readOnly, signal);
    bound = true;
    record.targets = [...record.targets.filter((t) => t.path !== targetPath), { path: targetPath, readOnlyView: view }];
    await env.store.put(record);
  } catch (err) {
    // Unrecorded, a bind and a view would outlive NodeUnpublishVolume, which knows a view only from the record.
    // mount can fail (a timeout, an abort) after the bind was made: a bind of what we bound is undone too, or
    // the busy view would not detach nor the target unlink, and every retry would find the target taken.
    if (!bound) bound = await isBoundAt(targetPath, view ?? device.path).catch(() => false);
    if (bound) await unmount(targetPath).catch(() => undefined);
    if (view) await removeReadOnlyView(view, device.path).catch(() => undefined);
    if (created) await unlink(targetPath).catch(() => undefined);
    throw err;
  }
  ctx.log.info({ device: device.path, targetPath, readOnly, view }, 'published raw block volume');
};

/**
 * What a publish that died after binding and before saving its record left
 * at `targetPath`: the staged disk itself, or a read-only view of it.
 * Nothing when the device bound there is neither.
 */
async function unrecordedPublish(env: NodeEnv, targetPath: string, record: BlockStaging, signal: AbortSignal): Promise<PublishedTarget | undefined> {
  const bound = await deviceNumber(targetPath);
  if (bound === record.majMin) return { path: targetPath, readOnlyView: null };
  const view = await readOnlyViewOf(bound, record.device, env.settings.sysfsRoot, signal);
  return view ? { path: targetPath, readOnlyView: view } : undefined;
}

/** Whether device node `source` is what is mounted at `target`. */
async function isBoundAt(target: string, source: string): Promise<boolean> {
  if (!(await findMountAt(target))) return false;
  const [here, wanted] = await Promise.all([bigStatOrNull(target), bigStatOrNull(source)]);
  return !!here?.isBlockDevice() && !!wanted?.isBlockDevice() && here.rdev === wanted.rdev;
}

/** mkdir the publish target; true when we created it (so a failed publish removes only what it made). */
async function ensureDirectory(p: string): Promise<boolean> {
  const existing = await statOrNull(p);
  if (existing) {
    if (!existing.isDirectory()) throw alreadyExists(`target_path ${p} exists and is not a directory`);
    return false;
  }
  await mkdir(p);
  return true;
}

/** Create the empty file a raw block device is bound onto; true when we created it. */
async function ensureFile(p: string): Promise<boolean> {
  const existing = await lstatOrNull(p);
  if (existing) {
    if (!existing.isFile() && !existing.isBlockDevice()) throw alreadyExists(`target_path ${p} exists and is not a file`);
    return false;
  }
  const handle = await open(p, 'wx', 0o600);
  await handle.close();
  return true;
}
