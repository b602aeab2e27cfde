// NodeGetVolumeStats: a published volume's usage and condition.
import type { CallContext } from '../csi/context';
import { notFound, requireId } from '../csi/errors';
import type { NodeGetVolumeStatsRequest__Output } from '../gen/csi/v1/NodeGetVolumeStatsRequest';
import type { NodeGetVolumeStatsResponse } from '../gen/csi/v1/NodeGetVolumeStatsResponse';
import { isKubeletTargetOf, lookupPath, resolveRequestPath, validatePath } from './paths';
import { deviceNumber, formatDeviceNumber, listMounts, type MountEntry, type MountTable } from './mount';
import { filesystemCondition, filesystemUsage, HEALTHY, sysfsDeviceSectors, UNKNOWN_USAGE } from './stats';
import { discover, type NodeEnv } from './env';
import { bigStatOrNull } from './fs-helpers';

export async function volumeStats(env: NodeEnv, req: NodeGetVolumeStatsRequest__Output, ctx: CallContext): Promise<NodeGetVolumeStatsResponse> {
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
}

/**
 * Where the volume's filesystem is still mounted, for stats on a target whose mount has gone: at
 * staging_target_path if the caller sent it. kubelet sends only volume_id and volume_path; then the
 * target must be kubelet's for this volume (its vol_data.json beside it names the volume, so that any
 * other directory stays NOT_FOUND), and the answer is wherever the volume's disk is mounted. The disk
 * is looked for once, without waiting or rescanning.
 */
async function stagedFilesystem(
  env: NodeEnv,
  volumeId: string,
  volumePath: string,
  stagingTargetPath: string | undefined,
  mounts: MountTable,
  ctx: CallContext,
): Promise<MountEntry | undefined> {
  if (stagingTargetPath) return mounts.at(await resolveRequestPath(validatePath(stagingTargetPath, 'staging_target_path'), 'staging_target_path'));
  if (!(await isKubeletTargetOf(volumePath, volumeId))) return undefined;
  const device = await discover(env, volumeId, undefined, ctx.signal, ctx, 0).catch(() => null);
  if (!device) return undefined;
  return mounts.ofDevice(await deviceNumber(device.path)).find((m) => m.fsroot === '/');
}
