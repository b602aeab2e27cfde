// When to poll while waiting for a state change. OpenStack has no change
// notification for API users, so the waiter polls; this decides when.
//
// A change of unknown duration gets a geometric schedule: a short first
// interval (a 0.3 s create ends quickly), then growing up to a cap so a long
// change costs few requests. Each wait also learns *when* its kind of change
// ('volume:attach') happens on this cloud: the change fell between the last
// poll that missed it and the first that saw it. The next wait of that kind
// sleeps until that window opens and polls across it in a few steps, which
// narrows the window again; after two or three waits a 20 s change is seen
// within ~100 ms with a handful of polls instead of twenty.

export interface ScheduleParams {
  firstMs: number;
  growth: number;
  capMs: number;
  /** The finest poll interval, used inside a narrow learned window. */
  denseMs: number;
  /** A learned window is crossed in this many steps (fewer when it is narrow). */
  windowSteps: number;
}

export const DEFAULT_SCHEDULE: ScheduleParams = { firstMs: 75, growth: 1.6, capMs: 2_000, denseMs: 80, windowSteps: 8 };

/** Where a change of this kind happened last: after `lo` ms, by `hi` ms. */
export interface ChangeWindow {
  lo: number;
  hi: number;
}

/** The delay before each poll of one wait. */
export class PollPlan {
  private interval: number;
  private jumped = false;

  constructor(
    private readonly window: ChangeWindow | undefined,
    private readonly p: ScheduleParams = DEFAULT_SCHEDULE,
  ) {
    this.interval = p.firstMs;
  }

  /** Delay before the first poll. */
  first(): number {
    const w = this.window;
    // A change expected soon after the start: go straight to its window.
    if (w && w.lo <= this.p.firstMs * 2) {
      this.jumped = true;
      return Math.max(this.p.firstMs / 2, w.lo);
    }
    return this.p.firstMs;
  }

  /** Delay before the next poll, `elapsedMs` after the wait began. */
  next(elapsedMs: number): number {
    const w = this.window;
    if (w && !this.jumped) {
      this.jumped = true;
      if (w.lo > elapsedMs + this.p.denseMs / 4) return w.lo - elapsedMs;
    }
    if (w && elapsedMs < w.hi) {
      this.interval = Math.max(this.p.denseMs, Math.round((w.hi - w.lo) / this.p.windowSteps));
      return Math.min(this.interval, Math.max(this.p.denseMs / 4, w.hi - elapsedMs));
    }
    // Past the window (the change got slower) or nothing learned: grow.
    this.interval = Math.min(this.p.capMs, Math.round(this.interval * this.p.growth));
    return this.interval;
  }
}

/**
 * The learned window per kind of change. A new window that overlaps the
 * known one narrows it (durations are steady); one that does not replaces it
 * (the cloud got faster or slower).
 */
export class DurationEstimates {
  private readonly byKey = new Map<string, ChangeWindow>();

  constructor(private readonly minWidthMs = DEFAULT_SCHEDULE.denseMs) {}

  window(key: string | undefined): ChangeWindow | undefined {
    return key === undefined ? undefined : this.byKey.get(key);
  }

  record(key: string | undefined, lastMissMs: number, firstHitMs: number): void {
    if (key === undefined) return;
    const known = this.byKey.get(key);
    let lo = lastMissMs;
    let hi = firstHitMs;
    if (known && lo < known.hi && hi > known.lo) {
      lo = Math.max(lo, known.lo);
      hi = Math.min(hi, known.hi);
    }
    // Keep some width, so normal jitter still falls inside the window.
    if (hi - lo < this.minWidthMs) lo = Math.max(0, hi - this.minWidthMs);
    this.byKey.set(key, { lo, hi });
  }
}
