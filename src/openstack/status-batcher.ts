// Many waiters polling volumes at once share requests: the polls that arrive
// while a round is in flight are served together by the next round. A round
// for few volumes makes one GET per volume; a round for many makes one paged
// `GET /volumes/detail` that answers all of them, so the request rate stays
// flat as operations in flight grow (as aws-ebs-csi-driver batches its
// DescribeVolumes calls).
import type { Logger } from '../log';
import { OpenStackError } from './errors';
import type { CallOptions, Page, Volume, VolumeQuery } from './types';

export interface VolumeSource {
  getVolume(id: string, opts?: CallOptions): Promise<Volume>;
  listVolumes(query: VolumeQuery, opts?: CallOptions): Promise<Page<Volume>>;
}

export interface BatcherOptions {
  /** From this many distinct volumes in one round on, list instead of getting each. */
  listThreshold?: number;
  pageSize?: number;
  /** Under load, how long a round waits to gather the polls of other waiters. */
  gatherMs?: number;
  logger: Logger;
}

/** A volume polled within this long counts as watched (for deciding whether to gather). */
const WATCHED_MS = 2_000;

interface Pending {
  resolve: (v: Volume) => void;
  reject: (e: unknown) => void;
}

export class VolumeStatusBatcher {
  private queue = new Map<string, Pending[]>();
  private running = false;
  private readonly threshold: number;
  private readonly pageSize: number;
  private readonly gatherMs: number;
  /** When each volume was last asked for: how many waiters are active. */
  private readonly watched = new Map<string, number>();
  /** Rounds made and how: for tests and benchmarks. */
  readonly stats = { rounds: 0, listRounds: 0, singleGets: 0 };

  constructor(
    private readonly source: VolumeSource,
    private readonly opts: BatcherOptions,
  ) {
    this.threshold = opts.listThreshold ?? 4;
    this.pageSize = opts.pageSize ?? 1000;
    this.gatherMs = opts.gatherMs ?? 20;
  }

  /** Volumes polled recently: with many, a round waits a little to serve them together. */
  private watchedCount(now: number): number {
    for (const [id, at] of this.watched) if (now - at > WATCHED_MS) this.watched.delete(id);
    return this.watched.size;
  }

  /** The volume as of a round that started after this call; 'not_found' when it is gone. */
  get(id: string, opts: CallOptions = {}): Promise<Volume> {
    return new Promise<Volume>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(abortError(id));
      const entry: Pending = { resolve, reject };
      // Leave the queue on abort so a cancelled waiter does not keep a round going.
      opts.signal?.addEventListener(
        'abort',
        () => {
          const list = this.queue.get(id);
          if (list?.includes(entry)) {
            list.splice(list.indexOf(entry), 1);
            if (list.length === 0) this.queue.delete(id);
          }
          reject(abortError(id));
        },
        { once: true },
      );
      const list = this.queue.get(id) ?? [];
      list.push(entry);
      this.queue.set(id, list);
      const now = Date.now();
      this.watched.set(id, now);
      if (!this.running) {
        this.running = true;
        // Waiters' timers rarely fire in the same tick, so when many volumes
        // are watched, wait a moment for the others' polls; otherwise only
        // for the rest of this tick.
        if (this.watchedCount(now) >= this.threshold) setTimeout(() => void this.loop(), this.gatherMs);
        else setImmediate(() => void this.loop());
      }
    });
  }

  private async loop(): Promise<void> {
    try {
      while (this.queue.size > 0) {
        const round = this.queue;
        this.queue = new Map();
        this.stats.rounds++;
        await (round.size >= this.threshold ? this.listRound(round) : this.singleRound(round));
      }
    } finally {
      this.running = false;
    }
  }

  private async singleRound(round: Map<string, Pending[]>): Promise<void> {
    await Promise.all(
      [...round].map(async ([id, waiters]) => {
        this.stats.singleGets++;
        try {
          const v = await this.source.getVolume(id);
          for (const w of waiters) w.resolve(v);
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
      }),
    );
  }

  private async listRound(round: Map<string, Pending[]>): Promise<void> {
    this.stats.listRounds++;
    const found = new Map<string, Volume>();
    try {
      let marker: string | undefined;
      do {
        const page = await this.source.listVolumes({ limit: this.pageSize, marker });
        for (const v of page.items) if (round.has(v.id)) found.set(v.id, v);
        marker = page.next;
        // Stop paging as soon as every waiter is served.
      } while (marker && found.size < round.size);
    } catch (err) {
      this.opts.logger.debug({ err: (err as Error).message }, 'batched volume list failed; answering with single GETs');
      return this.singleRound(round);
    }
    const missing = new Map<string, Pending[]>();
    for (const [id, waiters] of round) {
      const v = found.get(id);
      if (v) for (const w of waiters) w.resolve(v);
      else missing.set(id, waiters);
    }
    // Absent from the list: most likely deleted, but only a GET says so for sure.
    if (missing.size > 0) await this.singleRound(missing);
  }
}

function abortError(id: string): OpenStackError {
  return new OpenStackError('timeout', `cancelled while polling volume ${id}`);
}
