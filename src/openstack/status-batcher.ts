// One status ticker per cloud and object kind (volumes, snapshots): every
// waiter registers which object it wants to see and when, and the ticker
// serves all the waiters due at the same time with ONE request: a
// `GET volumes/detail` page of the most recently updated volumes (as
// aws-ebs-csi-driver batches DescribeVolumes) when three or more are due,
// single GETs when only one or two are. So with
// many operations in flight the poll rate is one list per `gatherMs`, not one
// GET per waiter per interval.
//
// Waiters are not served late by the ticker (it wakes at the earliest due
// time); a list round also serves whoever is due within the next `gatherMs`,
// a little early: that costs nothing (the list is made anyway) and keeps the
// next round at least `gatherMs` away. One list is in flight at a time: on a
// slow cloud, where a list takes longer than `gatherMs`, waiters that fall
// due meanwhile are served by the next list, sent as soon as this one
// returns, rather than by heavy list queries piling up on Cinder.
import type { Logger } from '../log';
import { OpenStackError } from './errors';
import type { CallOptions, Page } from './types';

export interface StatusSource<T extends { id: string }> {
  get(id: string, opts?: CallOptions): Promise<T>;
  /** One page of the project's objects, the most recently updated first when asked. */
  list(query: { limit: number; recentlyUpdatedFirst?: boolean }, opts?: CallOptions): Promise<Page<T>>;
}

/** What a look saw, and when the request that saw it was sent (on the ticker's clock). */
export type Look<T> = { at: number; item: T } | { at: number; error: unknown };

export interface BatcherOptions {
  logger: Logger;
  /**
   * A list round serves the waiters due up to this long after it (and so
   * rounds are about this far apart). 30 ms: figure 2 of issue 7 (50
   * lifecycles in flight) measured 1.16-1.17x its critical path with 30 ms
   * against 1.21-1.24x with 50 ms, at ~22 lists/s.
   */
  gatherMs?: number;
  /** From this many waiters due together on, one list instead of single GETs. */
  listFrom?: number;
  /**
   * The largest list page (Cinder caps it at osapi_max_limit, 1000 by
   * default). A round asks for a few times as many objects as it has
   * waiters (at least minPageSize), not for the largest page.
   */
  pageSize?: number;
  minPageSize?: number;
  /**
   * A list round gives up after this long (5 s) and its waiters get single
   * GETs: while a list is out no other starts, so a slow one must not hold
   * every batched waiter for the whole request timeout and its retries.
   */
  listTimeoutMs?: number;
  /** The clock that due times are given on (the waiter's). */
  now?: () => number;
}

interface Entry<T> {
  id: string;
  dueAt: number;
  done: (look: Look<T>) => void;
}

/** An id seen in a list within this long belongs to the listed project: absence from a whole list means gone. */
const LISTED_TTL_MS = 10 * 60_000;

export class StatusBatcher<T extends { id: string }> {
  private readonly entries = new Set<Entry<T>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** A list round is on its way: no second one until it returns. */
  private listing = false;
  private readonly gatherMs: number;
  private readonly listFrom: number;
  private readonly pageSize: number;
  private readonly minPageSize: number;
  private readonly listTimeoutMs: number;
  private readonly now: () => number;
  /** Waited-for ids seen in a list, and when. */
  private readonly listed = new Map<string, number>();
  /** Requests made and how: for tests and benchmarks. */
  readonly stats = { rounds: 0, listRounds: 0, singleGets: 0 };

  constructor(
    private readonly source: StatusSource<T>,
    private readonly what: string,
    private readonly opts: BatcherOptions,
  ) {
    this.gatherMs = opts.gatherMs ?? 30;
    this.listFrom = opts.listFrom ?? 3;
    this.pageSize = opts.pageSize ?? 1000;
    this.minPageSize = Math.min(this.pageSize, opts.minPageSize ?? 100);
    this.listTimeoutMs = opts.listTimeoutMs ?? 5_000;
    this.now = opts.now ?? (() => performance.now());
  }

  /** A look at object `id` by a request sent at `dueAt` or later (or up to gatherMs earlier in a list round). */
  look(id: string, dueAt: number, opts: CallOptions = {}): Promise<Look<T>> {
    return new Promise<Look<T>>((resolve, reject) => {
      const { signal } = opts;
      if (signal?.aborted) return reject(this.cancelled(id));
      const onAbort = () => {
        // Leave at once, so a cancelled waiter does not keep rounds going.
        if (this.entries.delete(entry)) reject(this.cancelled(id));
      };
      const entry: Entry<T> = {
        id,
        dueAt,
        done: (look) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(look);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.entries.add(entry);
      this.arm();
    });
  }

  private cancelled(id: string): OpenStackError {
    return new OpenStackError('timeout', `cancelled while polling ${this.what} ${id}`);
  }

  /** Wake at the earliest due time. */
  private arm(): void {
    let earliest = Infinity;
    for (const e of this.entries) earliest = Math.min(earliest, e.dueAt);
    if (earliest >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = earliest;
    if (earliest === Infinity) return;
    this.timer = setTimeout(() => this.tick(), Math.max(0, earliest - this.now()));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    // libuv timers count from a cached loop time, so they can fire a
    // millisecond or two before the due time on performance.now()'s clock:
    // then sleep the rest instead of starting a round early.
    let earliest = Infinity;
    for (const e of this.entries) earliest = Math.min(earliest, e.dueAt);
    if (earliest - this.now() > 1) return this.arm();
    // Timers may fire a fraction of a millisecond early.
    const now = this.now() + 1;
    const soon = [...this.entries].filter((e) => e.dueAt <= now + this.gatherMs);
    const due = soon.filter((e) => e.dueAt <= now);
    const batched = soon.length >= this.listFrom;
    // The list on its way re-arms the ticker when it returns (listRound).
    if (batched && this.listing) return;
    const round = batched ? soon : due;
    for (const e of round) this.entries.delete(e);
    if (round.length > 0) {
      this.stats.rounds++;
      void (round === soon ? this.listRound(round) : this.singleRound(round));
    }
    this.arm();
  }

  private async singleRound(round: Array<Entry<T>>): Promise<void> {
    // Waiters on the same object share its GET.
    const byId = new Map<string, Array<Entry<T>>>();
    for (const e of round) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
    await Promise.all(
      [...byId].map(async ([id, waiters]) => {
        this.stats.singleGets++;
        const at = this.now();
        const look: Look<T> = await this.source.get(id).then(
          (item) => ({ at, item }),
          (error: unknown) => ({ at, error }),
        );
        for (const w of waiters) w.done(look);
      }),
    );
  }

  /** Room for every waiter of the round and for the other objects that changed lately. */
  private pageLimit(waiters: number): number {
    return Math.min(this.pageSize, Math.max(this.minPageSize, 4 * waiters));
  }

  private async listRound(round: Array<Entry<T>>): Promise<void> {
    this.stats.listRounds++;
    const at = this.now();
    let page: Page<T>;
    const limit = this.pageLimit(round.length);
    this.listing = true;
    try {
      // One page of the most recently updated objects: every object waited for
      // was changed by the operation being waited on, so it is near the top,
      // and the page stays small in a project with thousands of volumes.
      // Objects not on it are looked up with single GETs (Cinder may leave
      // updated_at empty on a volume just created: it sorts last).
      page = await this.source.list({ limit, recentlyUpdatedFirst: true }, { signal: AbortSignal.timeout(this.listTimeoutMs) });
    } catch (err) {
      this.opts.logger.debug({ err: (err as Error).message }, `batched ${this.what} list failed; answering with single GETs`);
      return this.singleRound(round);
    } finally {
      this.listing = false;
      // Waiters that fell due while the list was out are served now.
      this.arm();
    }
    const found = new Map(page.items.map((x) => [x.id, x]));
    // No next page, not cut at the page size, not a list the service may have cut (v1): the project's whole list.
    const whole = !page.next && !page.partial && page.items.length < limit;
    for (const [id, when] of this.listed) if (at - when > LISTED_TTL_MS) this.listed.delete(id);
    const missing: Array<Entry<T>> = [];
    for (const e of round) {
      const item = found.get(e.id);
      if (item) {
        this.listed.set(e.id, at);
        e.done({ at, item });
      } else if (whole && this.listed.has(e.id)) {
        // Listed before, absent now: deleted. (An object never listed may be
        // another project's that this user can GET but not list: ask it.)
        this.listed.delete(e.id);
        e.done({ at, error: new OpenStackError('not_found', `${this.what} ${e.id} is no longer listed`) });
      } else {
        missing.push(e);
      }
    }
    if (missing.length > 0) await this.singleRound(missing);
  }
}
