// Finding Cinder objects by name: how CreateVolume and CreateSnapshot stay
// idempotent across crashes and retries.
import type { CallOptions, Page } from '../openstack/types';
import { internal } from '../csi/errors';

/** Objects in these states are on their way out and do not hold their name any more. */
const LEAVING = ['deleting', 'error_deleting'];

type Named = { id: string; name: string; status: string };
type ListByName<T> = (query: { name: string; marker?: string }, opts: CallOptions) => Promise<Page<T>>;

/** Every object of exactly this name that is not on its way out, over all pages. */
export async function findAllByName<T extends Named>(list: ListByName<T>, name: string, opts: CallOptions): Promise<T[]> {
  const found: T[] = [];
  let marker: string | undefined;
  do {
    const page = await list({ name, marker }, opts);
    found.push(...page.items.filter((item) => item.name === name && !LEAVING.includes(item.status)));
    marker = page.items.length > 0 ? page.next : undefined;
  } while (marker);
  return found;
}

/** The one object of this name, or none; more than one is for an operator to sort out. */
export async function findOneByName<T extends Named>(list: ListByName<T>, name: string, what: string, opts: CallOptions): Promise<T | undefined> {
  const found = await findAllByName(list, name, opts);
  if (found.length > 1) throw internal(duplicatesMessage(found, name, what));
  return found[0];
}

export function duplicatesMessage(found: Named[], name: string, what: string): string {
  const ids = found.map((item) => item.id).join(', ');
  return `Cinder has ${found.length} ${what}s named '${name}' (${ids}); delete all but the one Kubernetes should use`;
}
