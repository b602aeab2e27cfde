import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { OneAtATime } from '../../src/controller/one-at-a-time';

test('work on one key runs one piece at a time, in arrival order; other keys do not wait', async () => {
  const q = new OneAtATime();
  const log: string[] = [];
  const piece = (name: string, ms: number) => async () => {
    log.push(`${name} start`);
    await sleep(ms);
    log.push(`${name} end`);
    return name;
  };
  const results = await Promise.all([
    q.run('v1', undefined, 'v1', piece('a', 40)),
    q.run('v1', undefined, 'v1', piece('b', 10)),
    q.run('v2', undefined, 'v2', piece('other', 5)),
    q.run('v1', undefined, 'v1', piece('c', 1)),
  ]);
  assert.deepEqual(results, ['a', 'b', 'other', 'c']);
  const v1 = log.filter((l) => !l.startsWith('other'));
  assert.deepEqual(v1, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  assert.ok(log.indexOf('other end') < log.indexOf('a end'), 'v2 did not wait for v1');
  await sleep(0); // the key is forgotten once its queue has settled
  assert.equal(q.size, 0, 'nothing stays queued');
});

test('a caller that gives up while last in the queue does not let the next one start beside the running piece', async () => {
  const q = new OneAtATime();
  const log: string[] = [];
  const a = q.run('v', undefined, 'v', async () => {
    log.push('a start');
    await sleep(60);
    log.push('a end');
  });
  const b = assert.rejects(q.run('v', AbortSignal.timeout(10), 'v', async () => log.push('b ran')), /deadline passed/);
  await b;
  // b (last in the queue) gave up while a runs: c, b's retry, must still wait for a.
  await q.run('v', undefined, 'v', async () => log.push('c start'));
  await a;
  assert.deepEqual(log, ['a start', 'a end', 'c start']);
  await sleep(0);
  assert.equal(q.size, 0);
});

test('a failed piece passes the turn on; a caller whose signal fires while waiting leaves without running', async () => {
  const q = new OneAtATime();
  const ran: string[] = [];
  const first = q.run('v', undefined, 'v', async () => {
    await sleep(50);
    throw new Error('first failed');
  });
  const gaveUp = assert.rejects(
    q.run('v', AbortSignal.timeout(10), 'the other publishes', async () => {
      ran.push('gave-up');
    }),
    /deadline passed while waiting for the other publishes/,
  );
  const third = q.run('v', undefined, 'v', async () => {
    ran.push('third');
    return 3;
  });
  await gaveUp;
  await assert.rejects(first, /first failed/);
  assert.equal(await third, 3);
  assert.deepEqual(ran, ['third']);
  await sleep(0);
  assert.equal(q.size, 0);
});
