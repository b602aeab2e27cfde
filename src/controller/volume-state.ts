// What a volume's status in Cinder says about changing it now. Cinder acts
// only on an 'available' or 'in-use' volume; any other status is either one
// of its own operations under way (extending, backing-up, retyping, ...),
// which ends by itself, or an error state, which does not.
import { failedPrecondition, type CsiError } from '../csi/errors';

/** error, error_extending, error_restoring, ...: final until an operator resets the state. */
export const isErrorState = (status: string): boolean => status.startsWith('error');

/**
 * FAILED_PRECONDITION for a volume in an error state: Cinder refuses to act on it until an
 * operator has found why and reset its state, so neither waiting nor retrying alone helps.
 */
export function volumeInError(csiId: string, status: string, action: string): CsiError {
  return failedPrecondition(
    `volume ${csiId} is '${status}' in Cinder, which cannot ${action} a volume in an error state: find why ('openstack volume message list'), ` +
      `repair the volume or reset its state ('openstack volume set --state available' or 'in-use'), and the CO retries`,
  );
}
