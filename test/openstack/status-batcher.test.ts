// The status batcher: many waiters, one request per tick. A fake source
// counts requests; the clock is real (ticks are a few ms).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError, OpenStackError } from '../../src/openstack/errors';
import { StatusBatcher, type StatusSource } from '../../src/openstack/status-batcher';
import { WAIT, Waiter } from '../../src/openstack/waiter';

interface Obj {
  id: string;
  status: string;
}

/** Objects whose status turns 'available' at a given time; counts gets and lists. */
function fakeSource(opts: { ids: string[]; readyAt?: (id: string) => number; latencyMs?: number; pageSize?: number; partial?: boolean }) {
  const calls = { gets: 0, lists: 0 };
  const listQueries: Array<{ limit: number; recentlyUpdatedFirst?: boolean }> = [];
  const gone = new Set<string>();
  const t0 = performance.now();
  const view = (id: string): Obj => ({ id, status: performance.now() - t0 >= (opts.readyAt?.(id) ?? 0) ? 'available' : 'creating' });
  const pause = () => new Promise((r) => setTimeout(r, opts.latencyMs ?? 2));
  const source: StatusSource<Obj> = {
    async get(id) {
      calls.gets++;
      await pause();
      if (gone.has(id) || !opts.ids.includes(id)) throw new OpenStackError('not_found', `${id} not found`);
      return view(id);
    },
    async list(query) {
      const { limit } = query;
      listQueries.push(query);
      calls.lists++;
      await pause();
      const items = opts.ids.filter((id) => !gone.has(id)).map(view);
      const page = { items: items.slice(0, limit), next: items.length > limit ? items[limit - 1]!.id : undefined };
      return opts.partial ? { ...page, partial: true } : page;
    },
  };
  return { source, calls, gone, t0, listQueries };
}

describe('status batcher', () => {
  it('serves N waiters due together with one list', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `v${i}`);
    const f = fakeSource({ ids });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const due = performance.now() + 5;
    const looks = await Promise.all(ids.map((id) => b.look(id, due)));
    assert.ok(looks.every((l, i) => 'item' in l && l.item.id === ids[i]));
    assert.deepEqual(f.calls, { gets: 0, lists: 1 });
    assert.ok(looks.every((l) => l.at >= due - 1), 'served before it was due');
  });

  it('a round lists a small page of the most recently updated objects; a waiter not on it gets a GET', async () => {
    // 500 objects in the project; the fake lists them in this order, so 'v0'.. are "most recently updated".
    const ids = Array.from({ length: 500 }, (_, i) => `v${i}`);
    const f = fakeSource({ ids });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger, minPageSize: 100 });
    const due = performance.now() + 5;
    const waited = ['v0', 'v1', 'v2', 'v3', 'v450'];
    const looks = await Promise.all(waited.map((id) => b.look(id, due)));
    assert.ok(looks.every((l, i) => 'item' in l && l.item.id === waited[i]));
    assert.deepEqual(f.listQueries, [{ limit: 100, recentlyUpdatedFirst: true }]);
    assert.equal(f.calls.gets, 1, 'v450, beyond the page, is asked with a GET');
    // Many waiters: room for each of them, a few times over.
    const many = ids.slice(0, 60);
    await Promise.all(many.map((id) => b.look(id, performance.now() + 5)));
    assert.equal(f.listQueries.at(-1)?.limit, 240);
  });

  it('one or two due: single GETs, each at its own time', async () => {
    const f = fakeSource({ ids: ['a', 'b'] });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger, gatherMs: 10 });
    const now = performance.now();
    const [la, lb] = await Promise.all([b.look('a', now + 5), b.look('b', now + 60)]);
    assert.deepEqual(f.calls, { gets: 2, lists: 0 });
    assert.ok(la.at >= now + 4 && la.at < now + 40, `a at +${la.at - now}`);
    assert.ok(lb.at >= now + 59, `b at +${lb.at - now}`);
  });

  it('a list round also takes those due within gatherMs, early; the rest wait for their time', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    const f = fakeSource({ ids });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger, gatherMs: 30 });
    const now = performance.now();
    const looks = await Promise.all([b.look('a', now + 5), b.look('b', now + 15), b.look('c', now + 25), b.look('d', now + 200)]);
    assert.equal(f.calls.lists, 1);
    assert.equal(f.calls.gets, 1);
    assert.ok(looks[3]!.at >= now + 199);
  });

  it('never has two lists in flight: on a slow cloud, waiters due meanwhile are served by the next list, sent when the first returns', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `v${i}`);
    let inFlight = 0;
    let maxInFlight = 0;
    const returned: number[] = [];
    const sent: number[] = [];
    const source: StatusSource<Obj> = {
      get: async (id) => ({ id, status: 'available' }),
      async list() {
        sent.push(performance.now());
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 80));
        inFlight--;
        returned.push(performance.now());
        return { items: ids.map((id) => ({ id, status: 'available' })) };
      },
    };
    const b = new StatusBatcher(source, 'volume', { logger: silentLogger, gatherMs: 10 });
    const start = performance.now();
    // Three waiters fall due every 10 ms for 200 ms: with 10 ms rounds and 80 ms lists, rounds would overlap.
    const looks = await Promise.all(ids.map((id, i) => b.look(id, start + 5 + Math.floor(i / 3) * 20)));
    assert.equal(maxInFlight, 1, 'two lists were in flight at once');
    assert.ok(looks.every((l) => 'item' in l));
    // Each list after the first went out when the one before it returned, not a full gatherMs later.
    for (let i = 1; i < sent.length; i++) assert.ok(sent[i]! - returned[i - 1]! < 10, `list ${i} sent ${Math.round(sent[i]! - returned[i - 1]!)} ms after the previous returned`);
    assert.ok(sent.length >= 2 && sent.length <= 4, `${sent.length} lists`);
  });

  it('a list slower than listTimeoutMs is given up: its waiters get single GETs and later rounds are not held up', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    let gets = 0;
    const source: StatusSource<Obj> = {
      async get(id) {
        gets++;
        return { id, status: 'available' };
      },
      // A Cinder that never answers the list, until the caller gives up.
      list: (_q, opts) =>
        new Promise((_resolve, reject) => opts?.signal?.addEventListener('abort', () => reject(new OpenStackError('timeout', 'list cancelled')), { once: true })),
    };
    const b = new StatusBatcher(source, 'volume', { logger: silentLogger, listTimeoutMs: 100 });
    // AbortSignal.timeout's timer does not keep the process alive (a driver's gRPC server does).
    const alive = setInterval(() => undefined, 50);
    const start = performance.now();
    const looks = await Promise.all(ids.map((id) => b.look(id, start + 5))).finally(() => clearInterval(alive));
    const tookMs = performance.now() - start;
    assert.ok(looks.every((l) => 'item' in l && l.item.status === 'available'));
    assert.equal(gets, 4);
    assert.ok(tookMs < 1_000, `the waiters were held ${Math.round(tookMs)} ms`);
  });

  it('the request rate stays flat as waiters grow: one list per gatherMs at most', async () => {
    for (const n of [10, 50, 200]) {
      const ids = Array.from({ length: n }, (_, i) => `v${i}`);
      const f = fakeSource({ ids });
      const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger, gatherMs: 50 });
      const start = performance.now();
      // Every waiter looks every 40 ms (the finest step of a poll plan) for 500 ms, at random phases.
      await Promise.all(
        ids.map(async (id) => {
          for (let t = Math.random() * 40; t < 500; t += 40) await b.look(id, start + t);
        }),
      );
      const requests = f.calls.gets + f.calls.lists;
      // 500 ms / 50 ms = 10 rounds, a few more from phases and the tail.
      assert.ok(requests <= 16, `${n} waiters: ${requests} requests (${f.calls.lists} lists, ${f.calls.gets} gets)`);
    }
  });

  it('gone: absent from the whole list after being listed; never listed: asked with a GET', async () => {
    const f = fakeSource({ ids: ['a', 'b', 'c'] });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const round = (ids: string[]) => {
      const due = performance.now();
      return Promise.all(ids.map((id) => b.look(id, due)));
    };
    await round(['a', 'b', 'c']);
    f.gone.add('a');
    const looks = await round(['a', 'b', 'c', 'x']);
    assert.ok('error' in looks[0]! && isOpenStackError(looks[0].error, 'not_found'));
    assert.ok('error' in looks[3]! && isOpenStackError(looks[3].error, 'not_found'));
    assert.deepEqual(f.calls, { lists: 2, gets: 1 }, 'only the never-listed x is asked for');
  });

  it('absent from a list the service may have cut (Cinder v1) is not gone: it is asked for with a GET', async () => {
    const f = fakeSource({ ids: ['a', 'b', 'c'], partial: true });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const round = (ids: string[]) => {
      const due = performance.now();
      return Promise.all(ids.map((id) => b.look(id, due)));
    };
    await round(['a', 'b', 'c']);
    // 'a' still exists, but a v1 list cut at osapi_max_limit no longer shows it.
    f.source.list = async () => ({ items: [{ id: 'b', status: 'available' }, { id: 'c', status: 'available' }], partial: true });
    const looks = await round(['a', 'b', 'c']);
    assert.ok('item' in looks[0]!, 'a is still there: its GET says so');
    assert.deepEqual(f.calls.gets, 1);
  });

  it('objects beyond the first page are asked for with GETs, not by paging', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `v${i}`);
    const f = fakeSource({ ids });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger, pageSize: 4 });
    const due = performance.now();
    const looks = await Promise.all(['v0', 'v1', 'v2', 'v9'].map((id) => b.look(id, due)));
    assert.ok(looks.every((l) => 'item' in l));
    assert.deepEqual(f.calls, { lists: 1, gets: 1 });
  });

  it('a failed list falls back to single GETs', async () => {
    const f = fakeSource({ ids: ['a', 'b', 'c'] });
    f.source.list = async () => {
      f.calls.lists++;
      throw new OpenStackError('unavailable', 'down');
    };
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const due = performance.now();
    const looks = await Promise.all(['a', 'b', 'c'].map((id) => b.look(id, due)));
    assert.ok(looks.every((l) => 'item' in l));
    assert.deepEqual(f.calls, { lists: 1, gets: 3 });
  });

  it('a cancelled look leaves at once and rejects', async () => {
    const f = fakeSource({ ids: ['a'] });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const ac = new AbortController();
    const p = b.look('a', performance.now() + 10_000, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e) => isOpenStackError(e, 'timeout'));
    assert.deepEqual(f.calls, { gets: 0, lists: 0 });
  });

  it('waiters through the batcher: 30 concurrent waits, each seen within a step, with far fewer requests than polls', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `v${i}`);
    const readyAt = (id: string) => 150 + 7 * Number(id.slice(1));
    const f = fakeSource({ ids, readyAt });
    const b = new StatusBatcher(f.source, 'volume', { logger: silentLogger });
    const waiter = new Waiter({ logger: silentLogger });
    let polls = 0;
    const lates = await Promise.all(
      ids.map(async (id) => {
        const got = await waiter.waitFor({
          what: `volume ${id}`,
          spec: WAIT.volumeAvailable,
          fetch: () => f.source.get(id),
          look: (dueAt, o) => b.look(id, dueAt, o),
          stateOf: (o) => o.status,
        });
        polls += waiter.lastStats.polls;
        assert.equal(got?.status, 'available');
        return performance.now() - f.t0 - readyAt(id);
      }),
    );
    const requests = f.calls.gets + f.calls.lists;
    assert.ok(requests * 3 <= polls, `${requests} requests for ${polls} polls`);
    // Unlearned waits: the change is seen by the next planned poll, never later for being batched.
    assert.ok(Math.max(...lates) < 400, `late by up to ${Math.max(...lates)} ms`);
  });
});
