// Finding the one Cinder object of a name: how CreateVolume and
// CreateSnapshot stay idempotent across crashes and retries.
import type { CallOptions, Page } from '../openstack/types';
import { internal } from '../csi/errors';

/** Objects in these states are on their way out and do not hold their name any more. */
const LEAVING = ['deleting', 'error_deleting'];

export async function findOneByName<T extends { id: string; name: string; status: string }>(
  list: (query: { name: string; marker?: string }, opts: CallOptions) => Promise<Page<T>>,
  name: string,
  what: string,
  opts: CallOptions,
): Promise<T | undefined> {
  const found: T[] = [];
  let marker: string | undefined;
  do {
    const page = await list({ name, marker }, opts);
    found.push(...page.items.filter((item) => item.name === name && !LEAVING.includes(item.status)));
    marker = page.items.length > 0 ? page.next : undefined;
  } while (marker);
  if (found.length > 1) {
    const ids = found.map((item) => item.id).join(', ');
    throw internal(`Cinder has ${found.length} ${what}s named '${name}' (${ids}); delete all but the one Kubernetes should use`);
  }
  return found[0];
}
