// The CSI Node service: handlers that use only this machine (block devices,
// mkfs, mount). It never calls Cinder or Nova; the instance identity arrives
// in NodeSettings.
import path from 'node:path';
import type { CallContext, Handler } from '../csi/context';
import { InFlight } from '../csi/inflight';
import { failedPrecondition, invalidArgument, notFound, requireId, unavailable } from '../csi/errors';
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
import { isReadOnlyMode, parseCapability } from './capability';
import { deviceNumber, findMountAt, formatDeviceNumber, isBlockDevice, listMounts, type MountEntry, type MountTable } from './mount';
import { blockDeviceSize, filesystemCondition, filesystemUsage, HEALTHY, sysfsDeviceSectors, UNKNOWN_USAGE } from './stats';
import { deviceNameOf, growFilesystem, refreshDeviceSize } from './resize';
import { refreshViewSize } from './readonly-view';
import { createNodeEnv, discover, requestPath, type NodeEnv } from './env';
import { bigStatOrNull, statOrNull } from './fs-helpers';
import { whyNotOurs } from './own-mounts';
import { stageVolume } from './stage';
import { unstageVolume } from './unstage';
import { publishVolume } from './publish';
import { unpublishVolume } from './unpublish';

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

  // ---- NodePublishVolume / NodeUnpublishVolume (publish.ts, unpublish.ts) --

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
    await inflight.run(volumeId, 'NodePublishVolume', req, ctx.signal, (signal) =>
      publishVolume(env, req, cap, stagingPath, targetPath, readOnly, signal, ctx),
    );
    return {};
  };

  const NodeUnpublishVolume: NodeService['NodeUnpublishVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const targetPath = validatePath(req.target_path, 'target_path');
    ctx.annotate({ volume_id: volumeId, target_path: targetPath });
    await inflight.run(volumeId, 'NodeUnpublishVolume', req, ctx.signal, (signal) => unpublishVolume(env, volumeId, targetPath, signal, ctx));
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
