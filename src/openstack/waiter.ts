// THE waiter: every wait for a state change (volume created, attached,
// detached, extended, deleted; snapshot; backup) goes through waitFor().
// It polls on an adaptive schedule (poll-schedule.ts), by itself or through
// a shared status batcher (status-batcher.ts), is bounded by the
// caller's signal, fails fast on failure states, treats a step backwards in
// an ordered sequence (attaching -> available) as a failure, and reports the
// last state it saw.
import type { Logger } from '../log';
import { OpenStackError, isOpenStackError } from './errors';
import { DurationEstimates, PollPlan, type ScheduleParams } from './poll-schedule';
import { sleep } from './retry';
import type { Look } from './status-batcher';
import type { CallOptions, WaitSpec } from './types';

/** The standard waits. Anything not in target or transient is a failure. */
export const WAIT = {
  volumeAvailable: { target: ['available'], transient: ['creating', 'downloading', 'restoring-backup', 'uploading'] },
  // Not 'available': Nova reserves the volume before its attach request returns, so a volume
  // available again afterwards is one whose attach Nova rolled back.
  volumeAttached: { target: ['in-use'], transient: ['reserved', 'attaching'], ordered: true },
  volumeDetached: { target: ['available'], transient: ['in-use', 'detaching'], ordered: true },
  volumeExtended: { target: ['available', 'in-use'], transient: ['extending'] },
  volumeRetyped: { target: ['available', 'in-use'], transient: ['retyping'] },
  // Deletes: Cinder marks the object 'deleting' before it answers, so anything else afterwards is the
  // delete failing: 'available' again when the backend refused it as busy, error_deleting or 'error'.
  volumeDeleted: { target: [], transient: ['deleting'], goneIsTarget: true },
  snapshotAvailable: { target: ['available'], transient: ['creating'] },
  snapshotDeleted: { target: [], transient: ['deleting'], goneIsTarget: true },
  backupAvailable: { target: ['available'], transient: ['creating', 'backing-up'] },
  backupDeleted: { target: [], transient: ['deleting'], goneIsTarget: true },
} as const satisfies Record<string, WaitSpec>;

export interface WaitRequest<T> extends CallOptions {
  /** For messages: 'volume 1234'. */
  what: string;
  spec: WaitSpec;
  /** One look at the object; throws OpenStackError 'not_found' when it is gone. */
  fetch: (opts: CallOptions) => Promise<T>;
  /**
   * Instead of sleeping and fetching: ask a shared poller (status-batcher.ts)
   * for a look at `dueAt` (on this waiter's clock); it serves many waiters
   * with one request.
   */
  look?: (dueAt: number, opts: CallOptions) => Promise<Look<T>>;
  stateOf: (item: T) => string;
  /** An extra condition on a target state (the new size, an attachment to this server). */
  until?: (item: T) => boolean;
  /** Why a look proves the change will not happen although its state is no failure (an attach Nova rolled back), or null. */
  failedIf?: (item: T) => string | null;
  /** What kind of change this is, to learn how long it takes here ('volume:attach'). */
  kind?: string;
  /** Look once straight away: the change has probably happened already (Nova's record after Cinder's detach). */
  checkFirst?: boolean;
}

export interface WaiterOptions {
  logger: Logger;
  schedule?: ScheduleParams;
  /** For tests: a clock and a sleep. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface WaitStats {
  polls: number;
  elapsedMs: number;
}

export class Waiter {
  private readonly estimates = new DurationEstimates();
  private readonly now: () => number;
  private readonly doSleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Polls made by the last finished wait, for benchmarks and tests. */
  lastStats: WaitStats = { polls: 0, elapsedMs: 0 };

  constructor(private readonly opts: WaiterOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.doSleep = opts.sleep ?? sleep;
  }

  /** The object in a target state, or null when it is gone and goneIsTarget. */
  async waitFor<T>(req: WaitRequest<T>): Promise<T | null> {
    const { spec } = req;
    const started = this.now();
    const plan = new PollPlan(this.estimates.window(req.kind), this.opts.schedule);
    const look = req.look ?? ((dueAt: number, o: CallOptions) => this.sleepAndFetch(req, dueAt, o));
    let lastState: string | undefined;
    let furthest = -1;
    let lastMiss = 0;
    let polls = 0;
    let dueAt = req.checkFirst ? started : started + plan.nextAt();
    for (;;) {
      let seen: Look<T>;
      try {
        seen = await look(dueAt, { signal: req.signal, deadline: req.deadline });
      } catch (err) {
        if (!req.signal?.aborted) throw err;
        throw new OpenStackError(
          'timeout',
          `timed out waiting for ${req.what} to become ${describeTarget(spec)}; last state ${lastState ?? 'unknown'}`,
          { lastState },
        );
      }
      const pollAt = seen.at - started;
      polls++;
      if ('error' in seen) {
        const err = seen.error;
        if (!isOpenStackError(err, 'not_found')) throw err;
        if (spec.goneIsTarget) return this.done(req.kind, lastMiss, pollAt, polls, started, null);
        throw new OpenStackError('state', `${req.what} disappeared while waiting for ${describeTarget(spec)}; last state ${lastState ?? 'unknown'}`, {
          lastState,
          cause: err,
        });
      }
      const item = seen.item;
      const state = req.stateOf(item);
      lastState = state;
      if (spec.target.includes(state) && (!req.until || req.until(item))) {
        return this.done(req.kind, lastMiss, pollAt, polls, started, item);
      }
      const failure = req.failedIf?.(item);
      if (failure) throw new OpenStackError('state', `${req.what} ${failure} while waiting for ${describeTarget(spec)}`, { lastState: state });
      const index = spec.transient.indexOf(state);
      if (index < 0 && !spec.target.includes(state)) {
        throw new OpenStackError('state', `${req.what} reached ${state} while waiting for ${describeTarget(spec)}`, { lastState: state });
      }
      if (spec.ordered && index >= 0) {
        if (index < furthest) {
          throw new OpenStackError(
            'state',
            `${req.what} went back from ${spec.transient[furthest]} to ${state} while waiting for ${describeTarget(spec)}`,
            { lastState: state },
          );
        }
        furthest = index;
      }
      lastMiss = pollAt;
      // The plan is fixed in time; a poll that ran late skips the slots it overran.
      let next = plan.nextAt();
      while (started + next < this.now()) next = plan.nextAt();
      dueAt = started + next;
    }
  }

  /** The plain look: sleep until due, then one GET. */
  private async sleepAndFetch<T>(req: WaitRequest<T>, dueAt: number, opts: CallOptions): Promise<Look<T>> {
    await this.doSleep(Math.max(0, dueAt - this.now()), opts.signal);
    const at = this.now();
    try {
      return { at, item: await req.fetch(opts) };
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      return { at, error };
    }
  }

  private done<T>(kind: string | undefined, lastMiss: number, hitAt: number, polls: number, started: number, item: T): T {
    this.estimates.record(kind, lastMiss, hitAt);
    this.lastStats = { polls, elapsedMs: this.now() - started };
    this.opts.logger.debug({ kind, polls, elapsedMs: Math.round(this.lastStats.elapsedMs) }, 'wait finished');
    return item;
  }
}

function describeTarget(spec: WaitSpec): string {
  const targets = [...spec.target, ...(spec.goneIsTarget ? ['gone'] : [])];
  return targets.join(' or ');
}
