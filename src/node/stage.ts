// NodeStageVolume: a filesystem volume is formatted if blank and mounted at
// the staging path; a raw block volume only has its disk recorded (there is
// nothing to mount).
import type { CallContext } from '../csi/context';
import { alreadyExists, failedPrecondition } from '../csi/errors';
import type { NodeStageVolumeRequest__Output } from '../gen/csi/v1/NodeStageVolumeRequest';
import { readOnlyDeviceMountOptions, stagingMountOptions, type ParsedCapability } from './capability';
import { deviceNumber, findMountAt, isReadOnlyMount, listMounts, mountFilesystem, type MountEntry, unmount } from './mount';
import { describeContents, isBlank, isUnfinishedXfs, probeDevice, type DeviceContents } from './probe';
import { DEFAULT_FS_TYPE, isSupportedFs, makeFilesystem } from './format';
import { sysfsAttribute } from './stats';
import { growFilesystem } from './resize';
import type { BlockStaging } from './staging-store';
import { removeReadOnlyView } from './readonly-view';
import { discover, requestPath, type NodeEnv } from './env';
import { statOrNull } from './fs-helpers';
import { refuseIfInUse, refuseInsideVolume } from './guards';
import { mountedTargets, targetPaths, viewOnlyAt } from './block-publishes';

/** volume_context key the controller sets on every volume made from a source (a snapshot, backup or volume), which may be larger than it. */
export const VOLUME_CONTEXT_RESIZE_REQUIRED = 'resizeRequired';

/** The work of a NodeStageVolume, in its in-flight slot (service.ts checked the request). */
export async function stageVolume(
  env: NodeEnv,
  req: NodeStageVolumeRequest__Output,
  stagingPath: string,
  cap: ParsedCapability,
  signal: AbortSignal,
  ctx: CallContext,
): Promise<void> {
  const canonical = await requestPath(env, stagingPath, 'staging_target_path', 'staging');
  await refuseInsideVolume(env, canonical, 'staging_target_path');
  if (cap.access === 'mount') await stageFilesystem(env, req, cap, canonical, signal, ctx);
  else await stageBlock(env, req, canonical, signal, ctx);
}

async function stageFilesystem(
  env: NodeEnv,
  req: NodeStageVolumeRequest__Output,
  cap: Extract<ParsedCapability, { access: 'mount' }>,
  stagingPath: string,
  signal: AbortSignal,
  ctx: CallContext,
): Promise<void> {
  const volumeId = req.volume_id;
  const [dir, blockRecord] = await Promise.all([statOrNull(stagingPath), env.store.get(volumeId)]);
  if (!dir?.isDirectory()) {
    throw failedPrecondition(`staging_target_path ${stagingPath} is not an existing directory (the CO creates it)`);
  }
  if (blockRecord) throw alreadyExists(`volume ${volumeId} is staged for raw block access, not as a filesystem`);
  const device = await discover(env, volumeId, req.publish_context, signal, ctx);
  // The probe only reads the device, so its fork starts now, beside the in-process checks
  // (is it staged here already; if not, does anything else use it); its answer is used only once they have passed.
  const probe = probeDevice(device.path, env.settings.sysfsRoot, signal);
  probe.catch(() => undefined); // handled here so a failure while the checks run is not an unhandled rejection; awaited below
  let majMin: string;
  let existing: MountEntry | undefined;
  try {
    [majMin, existing] = await Promise.all([deviceNumber(device.path), findMountAt(stagingPath, signal)]);
    if (!existing) await refuseIfInUse(env, device, volumeId, [stagingPath], signal);
  } catch (err) {
    await probe.catch(() => undefined); // never leave the probe running behind the answer
    throw err;
  }
  // A read-only disk: the CO published the volume read-only, and the cloud honoured Cinder's
  // readonly flag (the controller sets it for such a publish). Nothing can be written to it.
  const readOnlyDevice = sysfsAttribute(env.settings.sysfsRoot, majMin, 'ro') === '1';
  // A volume restored larger than its source has a filesystem smaller than its disk; the controller
  // cannot tell, so it asks for the growth for every volume made from a source. It is grown on every
  // stage, not only the one that mounts: a stage whose mount command failed after mount(2) had
  // succeeded (a timeout), or that died before growing, is retried and finds the volume already staged.
  // resize2fs and xfs_growfs do nothing when the filesystem already fills the device.
  const resizeRequired = req.volume_context?.[VOLUME_CONTEXT_RESIZE_REQUIRED] === 'true';
  const growIfRequired = async (fsType: string, readOnly: boolean): Promise<void> => {
    if (!resizeRequired) return;
    if (readOnly) {
      // It grows the next time it is staged read-write. Most such volumes fill their disk already (a copy
      // no larger than its source), so this is no warning.
      ctx.log.info({ device: device.path, stagingPath }, 'filesystem not grown to the disk, if smaller, as it is mounted read-only; it grows when staged read-write');
      return;
    }
    await growFilesystem(device.path, fsType, stagingPath, signal, ctx.log);
  };
  if (existing) {
    await probe.catch(() => undefined); // not needed: the device is mounted here already
    if (existing.majMin !== majMin) {
      throw alreadyExists(`${stagingPath} is already staged from ${existing.source}, not from ${device.path} (volume ${volumeId})`);
    }
    if (cap.fsType && existing.fstype !== cap.fsType) {
      throw alreadyExists(`volume ${volumeId} is staged at ${stagingPath} as ${existing.fstype}, not ${cap.fsType}`);
    }
    ctx.log.info({ stagingPath, device: device.path }, 'volume already staged');
    await growIfRequired(existing.fstype, readOnlyDevice || isReadOnlyMount(existing));
    return;
  }

  const contents = await probe;
  let fsType: string;
  if (isBlank(contents)) {
    if (readOnlyDevice) {
      throw failedPrecondition(
        `volume ${volumeId} is attached read-only (${device.path}) and holds no filesystem, so none can be made on it: ` +
          'publish it read-write once to format it, or make read-only volumes from a snapshot or volume that holds data',
      );
    }
    fsType = cap.fsType ?? DEFAULT_FS_TYPE;
    ctx.log.info({ device: device.path, fsType }, 'device is blank; making a filesystem');
    await makeFilesystem(device.path, cap.fsType ?? DEFAULT_FS_TYPE);
  } else {
    fsType = existingFilesystem(contents, cap.fsType, device.path, volumeId);
  }
  const options = stagingMountOptions(fsType, cap.mountFlags);
  if (readOnlyDevice) options.push(...readOnlyDeviceMountOptions(fsType, options));
  try {
    await mountFilesystem(device.path, stagingPath, fsType, options, signal);
  } catch (err) {
    // An mkfs.xfs that was interrupted (this plugin killed while formatting the volume, say) leaves a superblock
    // that says so: the kernel will not mount it, and it is never formatted over. Say what it is, and the way out.
    if (fsType === 'xfs' && (await isUnfinishedXfs(device.path))) {
      throw failedPrecondition(
        `device ${device.path} of volume ${volumeId} holds an xfs filesystem whose mkfs never finished (its superblock says mkfs is in progress: ` +
          'an mkfs.xfs was interrupted, as by a crash of this plugin while it formatted the volume); the kernel will not mount it, and it is ' +
          `never formatted over. If the volume holds no data, wipe it on this node (wipefs --all ${device.path}) and the next stage formats it`,
      );
    }
    throw err;
  }
  ctx.log.info({ device: device.path, stagingPath, fsType, options, read_only_device: readOnlyDevice || undefined }, 'staged volume');
  if (readOnlyDevice) {
    ctx.log.info(
      { device: device.path, stagingPath },
      'the disk is read-only, so its journal was not replayed: the volume shows its filesystem as of the last checkpoint, without any transactions the journal still held',
    );
  }
  try {
    await growIfRequired(fsType, readOnlyDevice);
  } catch (err) {
    // A failed growth is final for kubelet (INTERNAL), which then never unstages: this stage undoes its mount.
    // (Only a first stage: an already-staged volume may be published.)
    await unmount(stagingPath).catch(() => undefined);
    throw err;
  }
}

/** 'an ext4', 'an xfs', 'a btrfs': the article as the name is said aloud (ext and xfs letter by letter). */
function withArticle(fsType: string): string {
  return `${/^(?:[aeiou]|ext|xfs|f2fs|hfs|ntfs)/i.test(fsType) ? 'an' : 'a'} ${fsType}`;
}

/** The filesystem a non-blank device holds, when we may mount it; FAILED_PRECONDITION otherwise (never reformat). */
function existingFilesystem(contents: DeviceContents, requested: string | null, device: string, volumeId: string): string {
  const onlyAFilesystem =
    contents.filesystem !== null &&
    contents.partitionTable === null &&
    contents.partitions.length === 0 &&
    contents.otherSignatures.length === 0 &&
    !contents.ambivalent;
  if (!onlyAFilesystem || contents.filesystem === null) {
    throw failedPrecondition(`device ${device} of volume ${volumeId} holds ${describeContents(contents)}; refusing to format or mount it`);
  }
  if (requested && contents.filesystem !== requested) {
    const found = contents.filesystem;
    throw failedPrecondition(
      `device ${device} of volume ${volumeId} holds ${withArticle(found)} filesystem, not the requested ${requested}; it is never reformatted: ` +
        `set the StorageClass's csi.storage.k8s.io/fstype (or the PV's fsType) to ${found} ` +
        `(e.g. a volume restored from a snapshot of ${withArticle(found)} volume keeps ${found})`,
    );
  }
  if (!isSupportedFs(contents.filesystem)) {
    throw failedPrecondition(`device ${device} of volume ${volumeId} holds ${withArticle(contents.filesystem)} filesystem, which we do not mount`);
  }
  return contents.filesystem;
}

async function stageBlock(env: NodeEnv, req: NodeStageVolumeRequest__Output, stagingPath: string, signal: AbortSignal, ctx: CallContext): Promise<void> {
  const volumeId = req.volume_id;
  const previous = await env.store.get(volumeId);
  if (previous && previous.stagingPath !== stagingPath) {
    throw failedPrecondition(`volume ${volumeId} is already staged at ${previous.stagingPath}`);
  }
  if (await findMountAt(stagingPath, signal)) {
    throw alreadyExists(`${stagingPath} holds a mounted filesystem; volume ${volumeId} was not staged there for raw block access`);
  }
  const device = await discover(env, volumeId, req.publish_context, signal, ctx);
  const majMin = await deviceNumber(device.path);
  if (previous && previous.majMin === majMin && previous.device === device.path) {
    await forgetUnboundTargets(env, previous, signal, ctx);
    ctx.log.info({ stagingPath, device: device.path }, 'volume already staged');
    return;
  }
  if (previous && (await mountedTargets(previous, signal)).length > 0) {
    throw alreadyExists(`volume ${volumeId} is staged from ${previous.device}, which is still published; not restaging from ${device.path}`);
  }
  await refuseIfInUse(env, device, volumeId, [stagingPath, ...targetPaths(previous)], signal);
  await env.store.put({ volumeId, device: device.path, majMin, stagingPath, targets: [] });
  ctx.log.info({ device: device.path, stagingPath }, 'staged raw block volume');
}

/**
 * Drop the record's publishes whose bind is gone (a reboot clears them all, and
 * kubelet stages again after one): their view names would later be taken for
 * whatever loop device has that number now. A view is detached only when no
 * live publish names it or has it bound (viewOnlyAt).
 */
async function forgetUnboundTargets(env: NodeEnv, record: BlockStaging, signal: AbortSignal, ctx: CallContext): Promise<void> {
  const mounts = await listMounts(signal);
  const unbound = record.targets.filter((t) => !mounts.at(t.path));
  if (unbound.length === 0) return;
  for (const t of unbound) {
    if (t.readOnlyView && (await viewOnlyAt(t.readOnlyView, t.path, record, signal))) await removeReadOnlyView(t.readOnlyView, record.device, signal);
  }
  record.targets = record.targets.filter((t) => !unbound.includes(t));
  await env.store.put(record);
  ctx.log.warn({ targets: unbound.map((t) => t.path) }, 'forgot raw block publishes whose bind has gone');
}
