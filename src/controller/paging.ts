// Paging across several Cinder collections (one per cloud, and for
// snapshots a second one of backups) as if they were one list. The position
// where a page stopped is what list-token.ts signs into next_token.
import type { CallOptions, Page } from '../openstack/types';
import { aborted } from '../csi/errors';
import { translate } from './os-errors';

export interface Segment<T extends { id: string }> {
  cloud: string;
  collection?: 'snapshot' | 'backup';
  list(query: { limit: number; marker?: string }, opts: CallOptions): Promise<Page<T>>;
}

export interface Position {
  cloud: string;
  collection?: 'snapshot' | 'backup';
  marker?: string;
}

export interface Collected<T extends { id: string }> {
  items: Array<{ segment: Segment<T>; item: T }>;
  /** Where the next page starts; absent when the listing is complete. */
  next?: Position;
}

/**
 * Up to `budget` items from `segments`, in order, starting at `start` (the
 * beginning when absent).
 */
export async function collect<T extends { id: string }>(segments: readonly Segment<T>[], start: Position | undefined, budget: number, opts: CallOptions): Promise<Collected<T>> {
  let index = 0;
  let marker: string | undefined;
  if (start) {
    index = segments.findIndex((s) => s.cloud === start.cloud && s.collection === start.collection);
    if (index < 0) throw aborted(`starting_token points into cloud '${start.cloud}', which is no longer configured; start the listing again`);
    marker = start.marker;
  }
  const items: Collected<T>['items'] = [];
  while (index < segments.length) {
    const segment = segments[index];
    const limit = budget - items.length;
    const page = await segment.list({ limit, marker }, opts).catch((err) => {
      if (marker === undefined) throw err;
      // Cinder refuses a marker whose item was deleted meanwhile.
      const restart = () => aborted(`the listing changed since starting_token was issued (its marker is gone); start the listing again`);
      throw translate(err, { bad_request: restart, not_found: restart });
    });
    const taken = page.items.slice(0, limit);
    for (const item of taken) items.push({ segment, item });
    // A service that ignores the limit: go on after the last item taken.
    const more = page.next ?? (page.items.length > taken.length ? taken[taken.length - 1].id : undefined);
    if (more && taken.length > 0) {
      marker = taken.length < page.items.length ? taken[taken.length - 1].id : more;
      if (items.length >= budget) return { items, next: { cloud: segment.cloud, collection: segment.collection, marker } };
      continue;
    }
    index++;
    marker = undefined;
    if (items.length >= budget && index < segments.length) {
      return { items, next: { cloud: segments[index].cloud, collection: segments[index].collection } };
    }
  }
  return { items };
}
