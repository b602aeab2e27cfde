// What Cinder's quota refusals ask of the operator. A 413 over_quota covers
// limits of different kinds, and each has its own fix: a size over the
// per-volume limit is a capacity this cloud cannot give at all (OUT_OF_RANGE,
// which the sidecars treat as final), the volume count wants unused volumes
// deleted, and only the gigabytes quotas want space freed. Cinder's words
// (Zed testbed, 413 overLimit, Retry-After: 0):
//   VolumeSizeExceedsLimit: Requested volume size 10G is larger than maximum allowed limit 5G.
//   VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.
import { outOfRange, type CsiError } from '../csi/errors';

const PER_VOLUME = /VolumeSizeExceedsLimit: Requested volume size (\d+)G is larger than maximum allowed limit (\d+)G/;
const VOLUME_COUNT = /VolumeLimitExceeded: Maximum number of volumes allowed \((\d+)\) exceeded for quota '([\w-]+)'/;

/** A size over the project's per-volume limit (per_volume_gigabytes): OUT_OF_RANGE with the largest size this cloud allows; null for any other refusal. */
export function perVolumeLimit(cinderMessage: string, askedGiB: number): CsiError | null {
  const m = PER_VOLUME.exec(cinderMessage);
  if (!m) return null;
  const limit = Number(m[2]);
  return outOfRange(
    `the PVC asks ${askedGiB} GiB; this cloud allows at most ${limit} GiB per volume (the project's per_volume_gigabytes quota): ${cinderMessage}; ` +
      `ask for at most ${limit} GiB, or have the project's per_volume_gigabytes quota raised`,
  );
}

/** The fix for a refused create: delete volumes for a volume-count quota, free space for a gigabytes one. */
export function quotaAdvice(cinderMessage: string): string {
  const count = VOLUME_COUNT.exec(cinderMessage);
  if (count) return `delete unused volumes or raise the project's '${count[2]}' quota`;
  return 'free space in the project or raise its quota';
}
