// The checks a stage or a publish makes before it mounts anything: that its
// path does not lie inside another volume, and that nothing but the volume's
// own mounts uses the disk.
import path from 'node:path';
import { invalidArgument } from '../csi/errors';
import { refuseForeignUse, volumeEvidence, type FoundDevice } from './devices';
import { formatDeviceNumber } from './mount';
import { deviceNameOf } from './resize';
import type { NodeEnv } from './env';
import { bigStatOrNull } from './fs-helpers';

/**
 * INVALID_ARGUMENT when `p`, a path to stage or publish at, lies inside a
 * volume's filesystem: a volume staged here, or one published from it (the
 * pods that use it can write there, and a mount there would be theirs to
 * move). Its directory's filesystem is a volume's when the disk it is on
 * is one (volumeEvidence), other than the disk that holds kubelet's root
 * directory or '/' (a node booted from a volume).
 */
export async function refuseInsideVolume(env: NodeEnv, p: string, field: string): Promise<void> {
  const [dir, root, kubelet] = await Promise.all([bigStatOrNull(path.dirname(p)), bigStatOrNull('/'), bigStatOrNull(env.settings.kubeletRoot)]);
  if (!dir) return; // nothing there to mount into; the call fails on its own
  const majMin = formatDeviceNumber(dir.dev);
  if ([root, kubelet].some((s) => s && formatDeviceNumber(s.dev) === majMin)) return;
  const disk = await deviceNameOf(majMin, env.settings.sysfsRoot);
  const evidence = disk ? await volumeEvidence(disk, env.settings.deviceRoot, env.settings.sysfsRoot) : null;
  if (evidence) {
    throw invalidArgument(`${field} ${p} lies inside the filesystem of a volume (disk ${disk}, ${evidence}); a volume is never staged or published inside another`);
  }
}

/**
 * Only a first stage asks this. A repeat is answered from what we made (the
 * staging mount, the staging record) before it is asked: by then the volume
 * is in use by its own publishes and by kubelet's maps of them, and a repeat
 * NodeStage or NodePublish with the same arguments must still answer OK.
 */
export async function refuseIfInUse(env: NodeEnv, device: FoundDevice, volumeId: string, ownTargets: Iterable<string>, signal: AbortSignal): Promise<void> {
  const own = { ownTargets: new Set(ownTargets), sysfsRoot: env.settings.sysfsRoot, kubeletRoot: env.settings.kubeletRoot };
  await refuseForeignUse(device, volumeId, own, signal);
}
