// Which mount flags a volume capability may carry. Shared by the controller,
// which refuses them at CreateVolume (a StorageClass's mountOptions arrive
// there) so that no volume is made that no node could mount, and by the node,
// which refuses them again at NodeStageVolume and NodePublishVolume.
import { hasControlCharacter } from './errors';

/** Options that would change what kind of mount the node makes; those are the driver's to choose. */
const FORBIDDEN_MOUNT_FLAGS = new Set(['bind', 'rbind', 'remount', 'move', 'make-shared', 'make-private', 'loop']);

/** Why `flags` cannot be used, for the operator; null when they can. */
export function mountFlagsProblem(flags: readonly string[]): string | null {
  for (const flag of flags.flatMap((f) => f.split(','))) {
    if (hasControlCharacter(flag)) return 'mount_flags must not contain control characters (NUL, newline)';
    // By its name: 'loop=/dev/loopN' is 'loop' too.
    if (FORBIDDEN_MOUNT_FLAGS.has(flag.split('=')[0].trim())) return `mount_flags must not contain ${flag}: the driver chooses how the volume is mounted`;
  }
  return null;
}
