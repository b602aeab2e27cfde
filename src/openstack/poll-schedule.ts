// When to poll while waiting for a state change. OpenStack has no change
// notification for API users, so the waiter polls; this decides when.
//
// Unknown durations get a geometric schedule: a short first interval (fast
// changes such as a 0.3 s create end quickly), then growing up to a cap so a
// long change costs few requests. Once a kind of change (say 'volume:attach')
// has been timed on this cloud, the next one sleeps until shortly before the
// expected moment and then polls densely: a change of 20 s is seen within
// ~100 ms with a handful of polls instead of twenty.

export interface ScheduleParams {
  firstMs: number;
  growth: number;
  capMs: number;
  /** Interval of the dense phase around an expected change. */
  denseMs: number;
  /** How many dense polls before falling back to growth. */
  densePolls: number;
}

export const DEFAULT_SCHEDULE: ScheduleParams = { firstMs: 75, growth: 1.6, capMs: 2_000, denseMs: 80, densePolls: 6 };

/** The delay before the next poll, given how long we have waited and how many polls were made. */
export class PollPlan {
  private densePollsLeft: number;
  private interval: number;
  private jumped = false;

  constructor(
    private readonly expectedMs: number | undefined,
    private readonly p: ScheduleParams = DEFAULT_SCHEDULE,
  ) {
    this.densePollsLeft = p.densePolls;
    this.interval = p.firstMs;
  }

  /** Delay before the first poll. */
  first(): number {
    const e = this.expectedMs;
    // An expected change soon after the start: go straight to dense polling.
    if (e !== undefined && e - this.guard(e) <= this.p.firstMs * 2) {
      this.jumped = true;
      return Math.max(this.p.firstMs / 2, e - this.guard(e));
    }
    return this.p.firstMs;
  }

  /** Delay before the next poll, `elapsedMs` after the wait began. */
  next(elapsedMs: number): number {
    const e = this.expectedMs;
    if (e !== undefined && !this.jumped) {
      this.jumped = true;
      const start = e - this.guard(e);
      if (start > elapsedMs + this.p.denseMs) return start - elapsedMs;
    }
    if (e !== undefined && this.densePollsLeft > 0 && elapsedMs < e + this.guard(e) * 2) {
      this.densePollsLeft--;
      this.interval = this.p.denseMs;
      return this.p.denseMs;
    }
    this.interval = Math.min(this.p.capMs, Math.round(this.interval * this.p.growth));
    return this.interval;
  }

  private guard(expected: number): number {
    return Math.min(300, Math.max(60, expected * 0.03));
  }
}

/**
 * How long each kind of change took recently. A change is known to have
 * happened in (lastPollBefore, firstPollAfter]; a narrow window is taken at
 * its start (so the next dense phase begins in time), a wide one at its
 * middle (the next wait then narrows it, like a bisection).
 */
export class DurationEstimates {
  private readonly byKey = new Map<string, number>();

  expected(key: string | undefined): number | undefined {
    return key === undefined ? undefined : this.byKey.get(key);
  }

  record(key: string | undefined, lastMissMs: number, firstHitMs: number, denseMs = DEFAULT_SCHEDULE.denseMs): void {
    if (key === undefined) return;
    const narrow = firstHitMs - lastMissMs <= denseMs * 2;
    this.byKey.set(key, narrow ? lastMissMs : (lastMissMs + firstHitMs) / 2);
  }
}
