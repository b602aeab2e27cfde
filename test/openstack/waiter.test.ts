// The waiter on a virtual clock: the poll schedule's promises (at most 12
// polls for a change of 0.3-20 s, even on the first wait of its kind; seen
// within 100 ms once the kind of change has been timed, within one 40 ms
// step after that), failure states, going backwards, deletion, deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError, OpenStackError } from '../../src/openstack/errors';
import { DEFAULT_SCHEDULE, DurationEstimates, pollTimes } from '../../src/openstack/poll-schedule';
import { WAIT, Waiter } from '../../src/openstack/waiter';

/** A clock that only moves when the waiter sleeps; each poll costs `pollCostMs`. */
function virtualWaiter(pollCostMs = 5) {
  let now = 0;
  const waiter = new Waiter({
    logger: silentLogger,
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw new Error('aborted');
      now += ms;
    },
  });
  return {
    waiter,
    now: () => now,
    /** An object whose state follows `timeline` ([from ms, state] ascending), read at the current virtual time. */
    fetcher: (timeline: Array<[number, string | null]>) => async () => {
      const at = now;
      now += pollCostMs;
      let state: string | null = timeline[0]![1];
      for (const [from, s] of timeline) if (at >= from) state = s;
      if (state === null) throw new OpenStackError('not_found', 'gone');
      return { status: state };
    },
  };
}

describe('waiter schedule', () => {
  for (const durationMs of [300, 700, 1500, 4000, 9000, 20000]) {
    it(`a ${durationMs} ms change: at most 12 polls every time, within 100 ms once learned`, async () => {
      const v = virtualWaiter();
      for (let round = 0; round < 5; round++) {
        const start = v.now();
        const timeline: Array<[number, string]> = [[start, 'creating'], [start + durationMs, 'available']];
        const got = await v.waiter.waitFor({
          what: 'volume x',
          spec: WAIT.volumeAvailable,
          kind: 'volume:create',
          fetch: v.fetcher(timeline),
          stateOf: (o) => o.status,
        });
        assert.equal(got?.status, 'available');
        const late = v.now() - (start + durationMs);
        const { polls } = v.waiter.lastStats;
        assert.ok(polls <= 12, `round ${round}: ${polls} polls`);
        // The first wait has nothing to learn from and the second crosses a
        // wide window; from the third on it must be tight, then one step.
        if (round >= 2) assert.ok(late <= 100, `round ${round}: seen ${late} ms late`);
        if (round >= 3) assert.ok(late <= DEFAULT_SCHEDULE.minStepMs + 5, `round ${round}: seen ${late} ms late`);
      }
    });
  }

  it('checkFirst: the first look is immediate', async () => {
    const v = virtualWaiter();
    const gone = await v.waiter.waitFor({ what: 'n', spec: WAIT.volumeDeleted, fetch: v.fetcher([[0, null]]), stateOf: (o) => o.status, checkFirst: true });
    assert.equal(gone, null);
    assert.equal(v.waiter.lastStats.polls, 1);
    assert.ok(v.now() <= 5, `took ${v.now()} ms`);
  });

  it('the first poll comes early (fast changes end fast)', async () => {
    const v = virtualWaiter();
    await v.waiter.waitFor({ what: 'v', spec: WAIT.volumeAvailable, fetch: v.fetcher([[0, 'creating'], [50, 'available']]), stateOf: (o) => o.status });
    assert.ok(v.now() <= 110, `took ${v.now()} ms`);
  });
});

describe('poll schedule', () => {
  it('unlearned: the first poll within 100 ms, and 12 polls reach past 20 s', () => {
    const times = pollTimes(undefined);
    const first12 = Array.from({ length: 12 }, () => times.next().value);
    assert.ok(first12[0]! <= 100, `first poll at ${first12[0]} ms`);
    assert.ok(first12[11]! >= 25_000, `12th poll at ${first12[11]} ms`);
    // ...while the early polls stay close together (a 1 s change is not seen seconds late).
    assert.ok(first12.filter((t) => t <= 1_000).length >= 4, first12.join(' '));
  });

  it('learned: one early poll, then the window from its start in steps of at most max(40 ms, width/9)', () => {
    for (const w of [{ lo: 960, hi: 1_040 }, { lo: 7_000, hi: 12_000 }, { lo: 19_500, hi: 20_000 }, { lo: 0, hi: 80 }]) {
      const times = pollTimes(w);
      const got: number[] = [];
      for (let t = times.next().value; got.push(t) && t < w.hi; t = times.next().value);
      const inside = got.filter((t) => t >= w.lo);
      assert.equal(inside[0], w.lo, `window ${w.lo}-${w.hi}: ${got.join(' ')}`);
      const step = Math.max(DEFAULT_SCHEDULE.minStepMs, (w.hi - w.lo) / DEFAULT_SCHEDULE.windowSteps);
      for (let i = 1; i < inside.length; i++) assert.ok(inside[i]! - inside[i - 1]! <= step + 1e-6, `window ${w.lo}-${w.hi}: ${got.join(' ')}`);
      // Every change inside the window is seen within 11 polls.
      assert.ok(got.length <= 11, `window ${w.lo}-${w.hi}: ${got.length} polls`);
      assert.equal(got.length - inside.length, w.lo > 2 * DEFAULT_SCHEDULE.firstMs ? 1 : 0);
    }
  });

  it('past a learned window the intervals grow again (a slower cloud costs few polls)', () => {
    const times = pollTimes({ lo: 960, hi: 1_040 });
    const got = Array.from({ length: 12 }, () => times.next().value);
    assert.ok(got[11]! > 10_000, got.join(' '));
  });

  it('a wait learns the gap between its last miss and its first hit, at least 80 ms wide', () => {
    const e = new DurationEstimates();
    e.record('k', 7_366, 12_366);
    assert.deepEqual(e.window('k'), { lo: 7_366, hi: 12_366 });
    e.record('k', 9_960, 10_000);
    assert.deepEqual(e.window('k'), { lo: 9_920, hi: 10_000 });
    assert.equal(e.window('other'), undefined);
  });
});

describe('waiter states', () => {
  it('a failure state ends the wait with kind state and the last state', async () => {
    const v = virtualWaiter();
    await assert.rejects(
      v.waiter.waitFor({ what: 'volume x', spec: WAIT.volumeExtended, fetch: v.fetcher([[0, 'extending'], [300, 'error_extending']]), stateOf: (o) => o.status }),
      (e) => isOpenStackError(e, 'state') && e.lastState === 'error_extending' && /volume x reached error_extending/.test(e.message),
    );
  });

  it('going backwards in an ordered sequence is a failure, not progress', async () => {
    const v = virtualWaiter();
    await assert.rejects(
      v.waiter.waitFor({
        what: 'volume x',
        spec: WAIT.volumeDetached,
        fetch: v.fetcher([[0, 'detaching'], [200, 'in-use']]),
        stateOf: (o) => o.status,
      }),
      (e) => isOpenStackError(e, 'state') && e.lastState === 'in-use' && /went back from detaching to in-use/.test(e.message),
    );
  });

  it('an attach that finds the volume available has been rolled back, even if no look saw it reserved', async () => {
    const v = virtualWaiter();
    await assert.rejects(
      v.waiter.waitFor({ what: 'volume x', spec: WAIT.volumeAttached, fetch: v.fetcher([[0, 'available']]), stateOf: (o) => o.status }),
      (e) => isOpenStackError(e, 'state') && e.lastState === 'available' && /volume x reached available/.test(e.message),
    );
  });

  it('failedIf: a look that proves the change will not happen ends the wait at once', async () => {
    const v = virtualWaiter();
    let polls = 0;
    await assert.rejects(
      v.waiter.waitFor({
        what: 'volume x',
        spec: WAIT.volumeAttached,
        fetch: async () => ({ status: ++polls >= 2 ? 'in-use' : 'reserved', mine: false }),
        stateOf: (o) => o.status,
        until: (o) => o.mine,
        failedIf: (o) => (o.status === 'in-use' && !o.mine ? 'is in-use without this attachment' : null),
      }),
      (e) => isOpenStackError(e, 'state') && /volume x is in-use without this attachment while waiting for in-use/.test(e.message),
    );
    assert.equal(polls, 2);
  });

  it('gone is the target of a deletion, and a failure otherwise', async () => {
    const v = virtualWaiter();
    const gone = await v.waiter.waitFor({ what: 'v', spec: WAIT.volumeDeleted, fetch: v.fetcher([[0, 'deleting'], [400, null]]), stateOf: (o) => o.status });
    assert.equal(gone, null);
    await assert.rejects(
      v.waiter.waitFor({ what: 'v', spec: WAIT.volumeAvailable, fetch: v.fetcher([[0, null]]), stateOf: (o) => o.status }),
      (e) => isOpenStackError(e, 'state') && /disappeared/.test(e.message),
    );
  });

  it('until: a target state is not enough until the condition holds', async () => {
    const v = virtualWaiter();
    let size = 1;
    let polls = 0;
    const got = await v.waiter.waitFor({
      what: 'v',
      spec: WAIT.volumeExtended,
      fetch: async () => ({ status: 'available', size: ++polls >= 3 ? (size = 2) : size }),
      stateOf: (o) => o.status,
      until: (o) => o.size === 2,
    });
    assert.equal(got?.size, 2);
    assert.equal(polls, 3);
  });

  it("the caller's signal ends the wait with kind timeout and the last state", async () => {
    const waiter = new Waiter({ logger: silentLogger });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await assert.rejects(
      waiter.waitFor({ what: 'v', spec: WAIT.volumeAvailable, fetch: async () => ({ status: 'creating' }), stateOf: (o) => o.status, signal: controller.signal }),
      (e) => isOpenStackError(e, 'timeout') && e.lastState === 'creating',
    );
    assert.ok(Date.now() - started < 1_000);
  });
});
