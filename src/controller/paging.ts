// Paging across several Cinder collections (one per cloud, and for
// snapshots a second one of backups) as if they were one list. The position
// where a page stopped is what list-token.ts signs into next_token.
import { status } from '@grpc/grpc-js';
import type { CallOptions, Page } from '../openstack/types';
import { aborted, CsiError } from '../csi/errors';
import { translate } from './os-errors';

/** ABORTED because Cinder no longer knows the marker to page on from: its item was deleted meanwhile. */
class MarkerGone extends CsiError {
  constructor() {
    super(status.ABORTED, 'the listing changed since starting_token was issued (its marker is gone); start the listing again');
  }
}

/** How often one call starts its listing again when a marker it made itself vanishes. */
const MAX_RESTARTS = 3;

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
      const gone = () => new MarkerGone();
      throw translate(err, { bad_request: gone, not_found: gone });
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

export interface EntryLimits {
  /** Items to take at most (Infinity: every one). */
  limit: number;
  /** Items to ask Cinder for per request. */
  pageSize: number;
  /** Bytes the answer's entries may take (what a client accepts in one message). */
  maxBytes: number;
}

/**
 * Entries made from the items of `segments`, page after page from `start`,
 * until `limits.limit` items are taken or one more entry would take the
 * answer past `limits.maxBytes`; with the position to go on from (absent
 * when the listing is complete). `toEntry` answers null for an item to leave
 * out; `sizeOf` tells the bytes an entry adds to the answer.
 */
export async function collectEntries<T extends { id: string }, E>(
  segments: readonly Segment<T>[],
  start: Position | undefined,
  limits: EntryLimits,
  toEntry: (segment: Segment<T>, item: T) => E | null,
  sizeOf: (entry: E) => number,
  opts: CallOptions,
): Promise<{ entries: E[]; next?: Position }> {
  const entries: E[] = [];
  let position = start;
  let taken = 0;
  let bytes = 0;
  /** Just after the last item taken. */
  let last: Position | undefined;
  /** What this call took, so that a listing started again from `start` takes nothing twice. */
  const seen = new Set<string>();
  let restarts = 0;
  for (;;) {
    let page: Collected<T>;
    try {
      page = await collect(segments, position, Math.min(limits.limit - taken, limits.pageSize), opts);
    } catch (err) {
      // A marker this call made (not the caller's token) was deleted between two of its pages: an
      // unbounded ListVolumes over more than a page of volumes while others are deleted. The
      // caller sent nothing wrong, so the listing starts again from where the caller asked.
      if (!(err instanceof MarkerGone) || position === start || restarts >= MAX_RESTARTS) throw err;
      restarts++;
      position = start;
      continue;
    }
    for (const { segment, item } of page.items) {
      const key = `${segment.cloud}\u0000${segment.collection ?? ''}\u0000${item.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = toEntry(segment, item);
      if (entry !== null) {
        const size = sizeOf(entry);
        // Full: the rest follows with next_token (the spec lets an answer hold fewer than max_entries).
        if (entries.length > 0 && bytes + size > limits.maxBytes) return { entries, next: last };
        entries.push(entry);
        bytes += size;
      }
      taken++;
      last = { cloud: segment.cloud, collection: segment.collection, marker: item.id };
    }
    if (!page.next || taken >= limits.limit) return { entries, next: page.next };
    position = page.next;
  }
}
