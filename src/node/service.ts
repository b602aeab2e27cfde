// The CSI Node service: handlers that use only this machine (block devices,
// mkfs, mount). It never calls Cinder or Nova; the instance identity arrives
// in NodeSettings.
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { CallContext, Handler } from '../csi/context';
import { InFlight } from '../csi/inflight';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, requireId, unavailable } from '../csi/errors';
import { TOPOLOGY_ZONE_KEY } from '../csi/constants';
import type { NodeStageVolumeRequest__Output } from '../gen/csi/v1/NodeStageVolumeRequest';
import type { NodeStageVolumeResponse } from '../gen/csi/v1/NodeStageVolumeResponse';
import type { NodeUnstageVolumeRequest__Output } from '../gen/csi/v1/NodeUnstageVolumeRequest';
import type { NodeUnstageVolumeResponse } from '../gen/csi/v1/NodeUnstageVolumeResponse';
import type { NodePublishVolumeRequest__Output } from '../gen/csi/v1/NodePublishVolumeRequest';
import type { NodePublishVolumeResponse } from '../gen/csi/v1/NodePublishVolumeResponse';
import type { NodeUnpublishVolumeRequest__Output } from '../gen/csi/v1/NodeUnpublishVolumeRequest';
import type { NodeUnpublishVolumeResponse } from '../gen/csi/v1/NodeUnpublishVolumeResponse';
import type { NodeGetVolumeStatsRequest__Output } from '../gen/csi/v1/NodeGetVolumeStatsRequest';
import type { NodeGetVolumeStatsResponse } from '../gen/csi/v1/NodeGetVolumeStatsResponse';
import type { NodeExpandVolumeRequest__Output } from '../gen/csi/v1/NodeExpandVolumeRequest';
import type { NodeExpandVolumeResponse } from '../gen/csi/v1/NodeExpandVolumeResponse';
import type { NodeGetCapabilitiesRequest__Output } from '../gen/csi/v1/NodeGetCapabilitiesRequest';
import type { NodeGetCapabilitiesResponse } from '../gen/csi/v1/NodeGetCapabilitiesResponse';
import type { NodeGetInfoRequest__Output } from '../gen/csi/v1/NodeGetInfoRequest';
import type { NodeGetInfoResponse } from '../gen/csi/v1/NodeGetInfoResponse';
import type { NodeSettings } from './settings';
import { isKubeletTargetOf, lookupPath, resolveRequestPath, validatePath } from './paths';
import { allowsOneTargetOnly, isReadOnlyMode, parseCapability, type ParsedCapability } from './capability';
import {
  bindMount,
  deviceNumber,
  findMountAt,
  formatDeviceNumber,
  isBlockDevice,
  isReadOnlyMount,
  listMounts,
  type MountEntry,
  type MountTable,
  unmount,
  unmountAll,
} from './mount';
import { blockDeviceSize, filesystemCondition, filesystemUsage, HEALTHY, sysfsAttribute, sysfsDeviceSectors, UNKNOWN_USAGE } from './stats';
import { deviceNameOf, growFilesystem, refreshDeviceSize } from './resize';
import type { BlockStaging, PublishedTarget } from './staging-store';
import { createReadOnlyView, readOnlyViewOf, refreshViewSize, removeReadOnlyView } from './readonly-view';
import { kindOf, mountedDisk } from './ownership';
import { createNodeEnv, discover, discoverNow, requestPath, type NodeEnv } from './env';
import { bigStatOrNull, lstatOrNull, statOrNull } from './fs-helpers';
import { refuseIfInUse, refuseInsideVolume } from './guards';
import { unmountOwn, whyNotOurs } from './own-mounts';
import { detachUnusedViews, mountedTargets, targetPaths, viewOnlyAt } from './block-publishes';
import { stageVolume } from './stage';
import { unstageVolume } from './unstage';

export interface NodeService {
  NodeStageVolume: Handler<NodeStageVolumeRequest__Output, NodeStageVolumeResponse>;
  NodeUnstageVolume: Handler<NodeUnstageVolumeRequest__Output, NodeUnstageVolumeResponse>;
  NodePublishVolume: Handler<NodePublishVolumeRequest__Output, NodePublishVolumeResponse>;
  NodeUnpublishVolume: Handler<NodeUnpublishVolumeRequest__Output, NodeUnpublishVolumeResponse>;
  NodeGetVolumeStats: Handler<NodeGetVolumeStatsRequest__Output, NodeGetVolumeStatsResponse>;
  NodeExpandVolume: Handler<NodeExpandVolumeRequest__Output, NodeExpandVolumeResponse>;
  NodeGetCapabilities: Handler<NodeGetCapabilitiesRequest__Output, NodeGetCapabilitiesResponse>;
  NodeGetInfo: Handler<NodeGetInfoRequest__Output, NodeGetInfoResponse>;
}

// The volume_context key that asks a stage to grow the filesystem to its disk (stage.ts).
export { VOLUME_CONTEXT_RESIZE_REQUIRED } from './stage';

export function createNodeService(settings: NodeSettings): NodeService {
  const inflight = new InFlight();
  const env = createNodeEnv(settings);

  /**
   * Remove what a publish made at `target` once nothing is mounted there: the directory of a filesystem
   * publish or the empty file of a raw block one (ensureDirectory, ensureFile), with rmdir or unlink, never
   * a recursive delete. `ours` when this call unmounted the volume from it or the raw block record names it;
   * a directory is also when kubelet's vol_data.json beside it names the volume, or the volume's disk is
   * attached here (a retry after a plugin died between the unmount and the rmdir). An empty directory or file
   * that may be ours but is not known to be is left, and the answer is OK: the volume is not published there.
   * What a publish never leaves (a file or directory with something in it, a device node, a socket, a FIFO)
   * is FAILED_PRECONDITION, and stays.
   */
  async function removeTarget(env: NodeEnv, volumeId: string, target: string, left: Stats, ours: boolean, signal: AbortSignal, ctx: CallContext): Promise<void> {
    const notEmpty = () => failedPrecondition(`target_path ${target} is a directory with files in it that we did not put there; not removing it`);
    if (left.isDirectory()) {
      if (ours || (await isKubeletTargetOf(target, volumeId)) || (await discoverNow(env, volumeId, signal, ctx))) {
        await rmdir(target).catch((err: NodeJS.ErrnoException) => {
          throw err.code === 'ENOTEMPTY' ? notEmpty() : err;
        });
      } else if ((await readdir(target)).length > 0) {
        throw notEmpty();
      } else {
        ctx.log.info({ targetPath: target }, 'left an empty directory at target_path: nothing says a publish of this volume made it');
      }
    } else if (left.isFile()) {
      if (left.size !== 0) throw failedPrecondition(`${target} is a non-empty file that we did not create; not removing it`);
      if (ours) await unlink(target);
      else ctx.log.info({ targetPath: target }, 'left an empty file at target_path: nothing says a publish of this volume made it');
    } else {
      throw failedPrecondition(`target_path ${target} is ${kindOf(left)}, which a publish never makes; not removing it`);
    }
  }

  // ---- NodeStageVolume / NodeUnstageVolume (stage.ts, unstage.ts) ----------

  const NodeStageVolume: NodeService['NodeStageVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    const cap = parseCapability(req.volume_capability);
    ctx.annotate({ volume_id: volumeId, staging_target_path: stagingPath, access_type: cap.access });
    await inflight.run(volumeId, 'NodeStageVolume', req, ctx.signal, (signal) => stageVolume(env, req, stagingPath, cap, signal, ctx));
    return {};
  };

  const NodeUnstageVolume: NodeService['NodeUnstageVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    ctx.annotate({ volume_id: volumeId, staging_target_path: stagingPath });
    await inflight.run(volumeId, 'NodeUnstageVolume', req, ctx.signal, (signal) => unstageVolume(env, volumeId, stagingPath, signal, ctx));
    return {};
  };

  // ---- NodePublishVolume -----------------------------------------------------

  async function publishFilesystem(
    env: NodeEnv,
    req: NodePublishVolumeRequest__Output,
    cap: ParsedCapability,
    stagingPath: string,
    targetPath: string,
    readOnly: boolean,
    signal: AbortSignal,
    ctx: CallContext,
  ): Promise<void> {
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
  }

  async function publishBlock(
    env: NodeEnv,
    req: NodePublishVolumeRequest__Output,
    cap: ParsedCapability,
    stagingPath: string,
    targetPath: string,
    readOnly: boolean,
    signal: AbortSignal,
    ctx: CallContext,
  ): Promise<void> {
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
    // A read-only disk (a read-only attachment, see stageFilesystem) would take no writes.
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
  }

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

  /**
   * The read-only view of the record's disk bound at `target`, or null: the
   * recorded one when it is what is bound there, else the view found by the
   * number of the device node bound there (a publish that died before
   * recording it, or a record whose view name is stale).
   */
  async function viewBoundAt(env: NodeEnv, target: string, record: BlockStaging, recorded: string | null, signal: AbortSignal): Promise<string | null> {
    const node = await bigStatOrNull(target);
    if (!node?.isBlockDevice() || !(await findMountAt(target, signal))) return null;
    const bound = formatDeviceNumber(node.rdev);
    const recordedNode = recorded ? await bigStatOrNull(recorded) : null;
    if (recorded && recordedNode?.isBlockDevice() && formatDeviceNumber(recordedNode.rdev) === bound) return recorded;
    return readOnlyViewOf(bound, record.device, env.settings.sysfsRoot, signal);
  }

  const NodePublishVolume: NodeService['NodePublishVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const targetPath = validatePath(req.target_path, 'target_path');
    const cap = parseCapability(req.volume_capability);
    // The spec's code when a plugin with STAGE_UNSTAGE_VOLUME gets no staging path (after the required fields).
    if (!req.staging_target_path) {
      throw failedPrecondition(`staging_target_path is missing: this plugin stages volumes (STAGE_UNSTAGE_VOLUME); stage the volume and pass its staging path`);
    }
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    const readOnly = req.readonly || isReadOnlyMode(cap.mode);
    ctx.annotate({ volume_id: volumeId, target_path: targetPath, access_type: cap.access, readonly: readOnly });
    await inflight.run(volumeId, 'NodePublishVolume', req, ctx.signal, async (signal) => {
      const [staging, target] = await Promise.all([
        requestPath(env, stagingPath, 'staging_target_path', 'staging'),
        requestPath(env, targetPath, 'target_path', 'target'),
      ]);
      await refuseInsideVolume(env, target, 'target_path');
      if (cap.access === 'mount') await publishFilesystem(env, req, cap, staging, target, readOnly, signal, ctx);
      else await publishBlock(env, req, cap, staging, target, readOnly, signal, ctx);
    });
    return {};
  };

  // ---- NodeUnpublishVolume ---------------------------------------------------

  const NodeUnpublishVolume: NodeService['NodeUnpublishVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const targetPath = validatePath(req.target_path, 'target_path');
    ctx.annotate({ volume_id: volumeId, target_path: targetPath });
    await inflight.run(volumeId, 'NodeUnpublishVolume', req, ctx.signal, async (signal) => {
      const target = await requestPath(env, targetPath, 'target_path', 'target');
      const record = await env.store.get(volumeId);
      const published = record?.targets.find((t) => t.path === target);
      // Only the view bound here is detached: not a recorded name that no longer is what is bound here (after a
      // reboot it can be another target's view); a view bound here that the record does not name is one a publish
      // died before recording, or a stale record's.
      const view = record ? await viewBoundAt(env, target, record, published?.readOnlyView ?? null, signal) : null;
      const viewMajMin = view ? await deviceNumber(view).catch(() => null) : null;
      const own = [...(record ? [record.majMin] : []), ...(viewMajMin ? [viewMajMin] : [])];
      const unmounted = await unmountOwn(env, volumeId, target, 'target_path', own, signal, ctx);
      const left = await lstatOrNull(target);
      if (left) await removeTarget(env, volumeId, target, left, unmounted > 0 || published !== undefined, signal, ctx);
      if (record && view && (await viewOnlyAt(view, target, record, signal))) {
        await removeReadOnlyView(view, record.device, signal);
        if (view !== published?.readOnlyView) ctx.log.warn({ targetPath: target, view }, 'detached a read-only view that the record did not name');
      }
      if (record && published) {
        record.targets = record.targets.filter((t) => t !== published);
        await env.store.put(record);
      }
      // A retry after a plugin died between the unmount and the detach: the view is no longer bound here.
      if (record) await detachUnusedViews(env, record, signal, ctx);
      if (unmounted || left) ctx.log.info({ targetPath: target }, 'unpublished volume');
    });
    return {};
  };

  // ---- NodeGetVolumeStats ----------------------------------------------------

  const NodeGetVolumeStats: NodeService['NodeGetVolumeStats'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const requested = lookupPath(req.volume_path, 'volume_path', volumeId);
    ctx.annotate({ volume_id: volumeId, volume_path: requested });
    // No InFlight here: stats are read-only and kubelet polls them; an ABORTED would only be noise.
    // kubelet polls stats for every volume, so a call makes one round trip to libuv's thread pool,
    // for the three reads that touch the volume's path (resolving it, stat, statfs: a filesystem
    // could stall them), and reads the mount table and sysfs in-process (kernel memory: they cannot).
    const [volumePath, node, usage] = await Promise.all([
      resolveRequestPath(requested, 'volume_path'),
      bigStatOrNull(requested),
      filesystemUsage(requested).catch(() => null),
    ]);
    if (!node) throw notFound(`volume_path ${volumePath} does not exist`);
    const mounts = await listMounts(ctx.signal);
    const mount = mounts.at(volumePath);
    if (!mount) {
      // Nothing mounted here. If the volume is still staged the publish mount has gone away:
      // that is the volume's condition to report, not a missing volume.
      const staged = node.isDirectory() ? await stagedFilesystem(env, volumeId, volumePath, req.staging_target_path, mounts, ctx) : undefined;
      if (staged) {
        return {
          usage: (await filesystemUsage(staged.target).catch(() => null)) ?? UNKNOWN_USAGE,
          volume_condition: { abnormal: true, message: `nothing is mounted at ${volumePath} any more; the volume is still staged at ${staged.target}` },
        };
      }
      throw notFound(`volume_path ${volumePath} is not a mounted volume path`);
    }
    if (node.isBlockDevice()) {
      const majMin = formatDeviceNumber(node.rdev);
      const sectors = await sysfsDeviceSectors(env.settings.sysfsRoot, majMin);
      if (sectors === null) {
        return { usage: UNKNOWN_USAGE, volume_condition: { abnormal: true, message: `the device (${majMin}) bound at ${volumePath} has vanished` } };
      }
      return { usage: [{ unit: 'BYTES', total: sectors * 512 }], volume_condition: HEALTHY };
    }
    const condition = filesystemCondition(mount, env.settings.sysfsRoot);
    if (usage) return { usage, volume_condition: condition };
    // statfs failed on a mounted filesystem. A volume whose device has gone says so with no usage;
    // otherwise ask again, so that statfs's own error is the answer.
    if (condition.abnormal) return { usage: UNKNOWN_USAGE, volume_condition: condition };
    return { usage: await filesystemUsage(volumePath), volume_condition: condition };
  };

  /**
   * Where the volume's filesystem is still mounted, for stats on a target whose mount has gone: at
   * staging_target_path if the caller sent it. kubelet sends only volume_id and volume_path; then the
   * target must be kubelet's for this volume (its vol_data.json beside it names the volume, so that any
   * other directory stays NOT_FOUND), and the answer is wherever the volume's disk is mounted. The disk
   * is looked for once, without waiting or rescanning.
   */
  async function stagedFilesystem(env: NodeEnv, volumeId: string, volumePath: string, stagingTargetPath: string | undefined, mounts: MountTable, ctx: CallContext): Promise<MountEntry | undefined> {
    if (stagingTargetPath) return mounts.at(await resolveRequestPath(validatePath(stagingTargetPath, 'staging_target_path'), 'staging_target_path'));
    if (!(await isKubeletTargetOf(volumePath, volumeId))) return undefined;
    const device = await discover(env, volumeId, undefined, ctx.signal, ctx, 0).catch(() => null);
    if (!device) return undefined;
    return mounts.ofDevice(await deviceNumber(device.path)).find((m) => m.fsroot === '/');
  }

  // ---- NodeExpandVolume ------------------------------------------------------

  const NodeExpandVolume: NodeService['NodeExpandVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const volumePath = lookupPath(req.volume_path, 'volume_path', volumeId);
    const cap = req.volume_capability ? parseCapability(req.volume_capability) : null;
    if (Number(req.capacity_range?.required_bytes ?? 0) < 0) throw invalidArgument('capacity_range.required_bytes must not be negative');
    ctx.annotate({ volume_id: volumeId, volume_path: volumePath });
    return inflight.run(volumeId, 'NodeExpandVolume', req, ctx.signal, async (signal) => {
      const target = await requestPath(env, volumePath, 'volume_path', 'volume');
      const node = await statOrNull(target);
      const mount = node ? await findMountAt(target, signal) : undefined;
      if (!node || !mount) throw notFound(`volume_path ${target} is not a mounted volume path`);
      const block = cap ? cap.access === 'block' : node.isBlockDevice();
      const required = req.capacity_range?.required_bytes ?? 0;

      if (block) {
        const record = await env.store.get(volumeId);
        if (record) {
          const name = await deviceNameOf(record.majMin, env.settings.sysfsRoot);
          if (name) await refreshDeviceSize(name, env.settings.sysfsRoot, ctx.log);
          // Every view: kubelet expands once, through one target, and a view does not follow its disk by itself.
          for (const { readOnlyView } of record.targets) if (readOnlyView) await refreshViewSize(readOnlyView, record.device, signal);
        }
        const size = await blockDeviceSize(target, env.settings.sysfsRoot, signal);
        requireGrown(size, required, volumeId);
        return { capacity_bytes: size };
      }

      const device = mount.source;
      if (!(await isBlockDevice(device)) || (await deviceNumber(device)) !== mount.majMin) {
        throw failedPrecondition(`${target} is not a mount of a block device (source ${device})`);
      }
      // Only the volume's own filesystem is grown, not whatever a volume_id and a path name together (whyNotOurs).
      const why = await whyNotOurs(env, volumeId, target, mount, [], signal, ctx);
      if (why) throw notFound(`volume ${volumeId} is not published at volume_path ${target}: it holds ${why}`);
      await refreshDeviceSize(path.basename(device), env.settings.sysfsRoot, ctx.log);
      const size = await blockDeviceSize(device, env.settings.sysfsRoot, signal);
      requireGrown(size, required, volumeId);
      await growFilesystem(device, mount.fstype, target, signal, ctx.log);
      return { capacity_bytes: size };
    });
  };

  // ---- NodeGetCapabilities / NodeGetInfo -------------------------------------

  const NodeGetCapabilities: NodeService['NodeGetCapabilities'] = async () => ({
    capabilities: (['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME', 'VOLUME_CONDITION', 'SINGLE_NODE_MULTI_WRITER'] as const).map(
      (type) => ({ rpc: { type } }),
    ),
  });

  const NodeGetInfo: NodeService['NodeGetInfo'] = async () => ({
    node_id: env.settings.nodeId,
    max_volumes_per_node: env.settings.maxVolumesPerNode,
    accessible_topology: env.settings.availabilityZone ? { segments: { [TOPOLOGY_ZONE_KEY]: env.settings.availabilityZone } } : null,
  });

  return {
    NodeStageVolume,
    NodeUnstageVolume,
    NodePublishVolume,
    NodeUnpublishVolume,
    NodeGetVolumeStats,
    NodeExpandVolume,
    NodeGetCapabilities,
    NodeGetInfo,
  };
}

function requireGrown(size: number, required: number, volumeId: string): void {
  if (required > 0 && size < required) {
    throw unavailable(`the device of volume ${volumeId} is ${size} bytes, less than the ${required} asked for; the resize has not reached this node yet`);
  }
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
