// Cinder's list semantics shared by volumes, snapshots and backups: filters,
// limit (capped at osapi_max_limit), marker, sort, and the `<collection>_links`
// next link, which Cinder adds whenever a page is full.
import type { Collection, Stored } from './collection';
import { httpError, type RequestContext } from './http';

/** Cinder's osapi_max_limit default: no page is longer, whatever the client asks. */
export const MAX_LIMIT = 1000;

interface Sortable extends Stored {
  createdAt: string;
  updatedAt: string | null;
  name: string | null;
  status: string;
  size: number;
}

const SORT_KEYS: Record<string, (x: Sortable) => string | number> = {
  created_at: (x) => x.seq,
  id: (x) => x.id,
  name: (x) => x.name ?? '',
  display_name: (x) => x.name ?? '',
  status: (x) => x.status,
  size: (x) => x.size,
  // A volume never updated has updated_at NULL, which MySQL sorts below every
  // date: last in a descending sort, as real Cinder returns it.
  updated_at: (x) => x.updatedAt ?? '',
};

interface SortSpec {
  key: string;
  desc: boolean;
}

function parseSort(query: URLSearchParams): SortSpec[] {
  const specs: SortSpec[] = [];
  const sort = query.get('sort');
  if (sort) {
    for (const part of sort.split(',')) {
      const [key, dir] = part.trim().split(':');
      specs.push({ key, desc: (dir ?? 'desc').toLowerCase() !== 'asc' });
    }
  } else if (query.get('sort_key')) {
    specs.push({ key: query.get('sort_key')!, desc: (query.get('sort_dir') ?? 'desc').toLowerCase() !== 'asc' });
  }
  for (const s of specs) {
    if (!SORT_KEYS[s.key]) throw httpError('volume', 400, `Invalid input received: Invalid sort key ${s.key}`);
  }
  return specs;
}

export function parseLimit(query: URLSearchParams): number {
  const raw = query.get('limit');
  if (raw === null) return MAX_LIMIT;
  if (!/^-?\d+$/.test(raw)) throw httpError('volume', 400, 'limit param must be an integer');
  const n = Number(raw);
  if (n < 0) throw httpError('volume', 400, 'limit param must be positive');
  return Math.min(n, MAX_LIMIT);
}

export interface PageResult<T> {
  items: T[];
  /** Present when the page is full: the link to the next one. */
  nextHref?: string;
}

export interface PageSpec<T> {
  ctx: RequestContext;
  collection: Collection<T & Sortable>;
  filter: (item: T & Sortable) => boolean;
  /** 'Volume <id> could not be found.' when the marker is unknown. */
  notFound: (id: string) => string;
  /** URL of the collection (without query) that the next link points to. */
  linkBase: string;
  /** v1 has no paging: one page of at most 1000 and no link. */
  paging: boolean;
}

export function listPage<T>(spec: PageSpec<T>): PageResult<T & Sortable> {
  const { ctx, collection, filter } = spec;
  const limit = spec.paging ? parseLimit(ctx.query) : MAX_LIMIT;
  const marker = spec.paging ? ctx.query.get('marker') ?? undefined : undefined;
  if (marker !== undefined && !collection.get(marker)) throw httpError('volume', 404, spec.notFound(marker));
  const sort = spec.paging ? parseSort(ctx.query) : [];
  const items: Array<T & Sortable> = [];
  if (sort.length === 0 || (sort[0].key === 'created_at' && sort.length === 1)) {
    // Creation order: walk from the marker and stop at a full page.
    const desc = sort.length === 0 || sort[0].desc;
    for (const item of collection.walk(desc, marker)) {
      if (items.length >= limit) break;
      if (filter(item)) items.push(item);
    }
  } else {
    const matches: Array<T & Sortable> = [];
    for (const item of collection.values()) if (filter(item)) matches.push(item);
    matches.sort((a, b) => {
      for (const s of [...sort, { key: 'created_at', desc: true }]) {
        const fa = SORT_KEYS[s.key](a);
        const fb = SORT_KEYS[s.key](b);
        if (fa !== fb) return (fa < fb ? -1 : 1) * (s.desc ? -1 : 1);
      }
      return 0;
    });
    const start = marker === undefined ? 0 : matches.findIndex((m) => m.id === marker) + 1;
    items.push(...matches.slice(start, start + limit));
  }
  if (!spec.paging || limit === 0 || items.length < limit) return { items };
  const params = new URLSearchParams(ctx.query);
  params.set('marker', items[items.length - 1].id);
  return { items, nextHref: `${spec.linkBase}?${params.toString()}` };
}

/** Cinder evaluates the metadata filter as a Python dict literal; JSON is the common spelling. */
export function parseMetadataFilter(raw: string | null): Record<string, string> | undefined {
  if (raw === null) return undefined;
  const attempts = [raw, raw.replace(/'/g, '"')];
  for (const a of attempts) {
    try {
      const v = JSON.parse(a) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)]));
      }
    } catch {
      // try the next spelling
    }
  }
  throw httpError('volume', 400, `Invalid input received: Invalid metadata filter: ${raw}`);
}

export function metadataMatches(have: Record<string, string>, want: Record<string, string> | undefined): boolean {
  if (!want) return true;
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) return false;
  return true;
}
