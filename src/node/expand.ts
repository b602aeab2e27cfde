// NodeExpandVolume: after the controller grew the volume, make the node see
// the new size (the disk, its read-only views) and grow the filesystem.
import path from 'node:path';
import type { CallContext } from '../csi/context';
import { failedPrecondition, notFound, unavailable } from '../csi/errors';
import type { NodeExpandVolumeRequest__Output } from '../gen/csi/v1/NodeExpandVolumeRequest';
import type { NodeExpandVolumeResponse } from '../gen/csi/v1/NodeExpandVolumeResponse';
import type { ParsedCapability } from './capability';
import { deviceNumber, findMountAt, isBlockDevice } from './mount';
import { blockDeviceSize } from './stats';
import { deviceNameOf, growFilesystem, refreshDeviceSize } from './resize';
import { refreshViewSize } from './readonly-view';
import { requestPath, type NodeEnv } from './env';
import { statOrNull } from './fs-helpers';
import { whyNotOurs } from './own-mounts';

/** The work of a NodeExpandVolume, in its in-flight slot (service.ts checked the request). */
export async function expandVolume(
  env: NodeEnv,
  req: NodeExpandVolumeRequest__Output,
  volumeId: string,
  volumePath: string,
  cap: ParsedCapability | null,
  signal: AbortSignal,
  ctx: CallContext,
): Promise<NodeExpandVolumeResponse> {
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
}

function requireGrown(size: number, required: number, volumeId: string): void {
  if (required > 0 && size < required) {
    throw unavailable(`the device of volume ${volumeId} is ${size} bytes, less than the ${required} asked for; the resize has not reached this node yet`);
  }
}
