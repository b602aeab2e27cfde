// When to poll while waiting for a state change. OpenStack has no change
// notification for API users, so the waiter polls; this decides when.
//
// A plan is a list of times (ms after the wait began), not of intervals, so
// the time a poll takes (API latency, waiting for a shared list round) does
// not push the later polls back, and a poll served early by a shared round
// uses up its planned slot instead of adding one.
//
// A change of unknown duration gets a geometric schedule: a short first poll
// (a 0.3 s create ends quickly), then growing intervals, capped so that 12
// polls still reach ~27 s (the 20 s change of figure 1 in issue 7 is seen by
// the 11th poll on the very first wait of its kind).
//
// Each wait also learns *when* its kind of change ('volume:attach') happens
// on this cloud: the change fell between the last poll that missed it and
// the first that saw it. The next wait of that kind polls once early (in case
// the cloud got much faster), then at the window's start and across it in
// `windowSteps` equal steps (never finer than `minStepMs`). The overshoot is
// then at most one step, and the window the wait learns is one step wide, so
// a wide window (5 s, from a first wait) is 0.55 s after the second wait and
// down to the floor (80 ms, so 40 ms steps) after the third.

export interface ScheduleParams {
  /** The first poll of a wait with nothing learned. */
  firstMs: number;
  /** Each interval of an unlearned wait is this many times the last... */
  growth: number;
  /** ...up to this. */
  capMs: number;
  /** The finest interval, used inside a narrow learned window. */
  minStepMs: number;
  /** A learned window is crossed in this many steps (fewer when it is narrow). */
  windowSteps: number;
}

export const DEFAULT_SCHEDULE: ScheduleParams = { firstMs: 75, growth: 1.7, capMs: 5_000, minStepMs: 40, windowSteps: 9 };

/** Where a change of this kind happened last: after `lo` ms, by `hi` ms. */
export interface ChangeWindow {
  lo: number;
  hi: number;
}

/** The times of the polls of one wait, in ms after it began. */
export function* pollTimes(window: ChangeWindow | undefined, p: ScheduleParams = DEFAULT_SCHEDULE): Generator<number, never> {
  let t = 0;
  let interval = p.firstMs;
  if (window) {
    const { lo, hi } = window;
    // One early look: if the cloud got much faster, we do not sleep through the whole window.
    if (lo > 2 * p.firstMs) yield p.firstMs;
    // A poll at the window's start: if it already sees the change, the change
    // came earlier than the window and the next wait learns that (instead of
    // narrowing onto a window the change has left).
    interval = Math.max(p.minStepMs, (hi - lo) / p.windowSteps);
    const steps = Math.ceil((hi - lo) / interval - 1e-9);
    for (let i = 0; i <= steps; i++) yield (t = lo + i * interval);
    // Past the window: a little jitter, or the cloud got slower. Start at
    // the window's step (jitter is seen soon) and double (a 1 s change that
    // became a 10 s one costs 12 polls).
    for (;;) {
      yield (t += interval);
      interval = Math.min(p.capMs, interval * 2);
    }
  }
  for (;;) {
    yield (t += interval);
    interval = Math.min(p.capMs, interval * p.growth);
  }
}

/**
 * The delay before each poll of one wait. `first()` and `next(elapsedMs)`
 * give delays from now for callers that sleep; the times underneath are the
 * fixed plan of pollTimes().
 */
export class PollPlan {
  private readonly times: Generator<number, never>;

  constructor(window: ChangeWindow | undefined, p: ScheduleParams = DEFAULT_SCHEDULE) {
    this.times = pollTimes(window, p);
  }

  /** When the next poll is due, in ms after the wait began. */
  nextAt(): number {
    return this.times.next().value;
  }

  /** Delay before the first poll. */
  first(): number {
    return this.nextAt();
  }

  /** Delay before the next poll, `elapsedMs` after the wait began (0 when it is already due). */
  next(elapsedMs: number): number {
    return Math.max(0, this.nextAt() - elapsedMs);
  }
}

/**
 * The learned window per kind of change: where it happened on the last wait
 * of that kind. The plan polls at the window's start, so a wait's own
 * observation (its last miss, its first hit) is always the best estimate:
 * one step wide when the change stayed inside the window, and an honest,
 * wider gap when it moved out (the cloud got faster or slower).
 */
export class DurationEstimates {
  private readonly byKey = new Map<string, ChangeWindow>();

  /** Narrower windows would be crossed by a single step and stop absorbing jitter. */
  constructor(private readonly minWidthMs = 2 * DEFAULT_SCHEDULE.minStepMs) {}

  window(key: string | undefined): ChangeWindow | undefined {
    return key === undefined ? undefined : this.byKey.get(key);
  }

  record(key: string | undefined, lastMissMs: number, firstHitMs: number): void {
    if (key === undefined) return;
    this.byKey.set(key, { lo: Math.max(0, Math.min(lastMissMs, firstHitMs - this.minWidthMs)), hi: firstHitMs });
  }
}
