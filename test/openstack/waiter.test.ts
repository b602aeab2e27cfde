// The waiter on a virtual clock: the poll schedule's promises (a change of
// 0.3-20 s seen within 100 ms with at most 12 polls once the kind of change
// has been timed), failure states, going backwards, deletion, deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError, OpenStackError } from '../../src/openstack/errors';
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
    it(`a ${durationMs} ms change: within 100 ms and at most 12 polls once learned`, async () => {
      const v = virtualWaiter();
      for (let round = 0; round < 4; round++) {
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
        // The first wait has nothing to learn from; the later ones must be tight.
        if (round >= 2) {
          assert.ok(late <= 100, `round ${round}: seen ${late} ms late`);
          assert.ok(polls <= 12, `round ${round}: ${polls} polls`);
        } else {
          assert.ok(polls <= 20, `round ${round}: ${polls} polls before learning`);
        }
      }
    });
  }

  it('the first poll comes early (fast changes end fast)', async () => {
    const v = virtualWaiter();
    await v.waiter.waitFor({ what: 'v', spec: WAIT.volumeAvailable, fetch: v.fetcher([[0, 'creating'], [50, 'available']]), stateOf: (o) => o.status });
    assert.ok(v.now() <= 110, `took ${v.now()} ms`);
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
        spec: WAIT.volumeAttached,
        fetch: v.fetcher([[0, 'attaching'], [200, 'available']]),
        stateOf: (o) => o.status,
      }),
      (e) => isOpenStackError(e, 'state') && e.lastState === 'available' && /went back from attaching to available/.test(e.message),
    );
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
