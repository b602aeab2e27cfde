// The in-flight registry (issue 2, item 4): an identical request that arrives
// while the first runs joins it and gets the same result within its own
// deadline; a different operation on the same key is ABORTED at once, naming
// the operation in flight; the work is cancelled only when nobody waits for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { InFlight } from '../../src/csi/inflight';
import { CsiError } from '../../src/csi/errors';
import { gate } from '../helpers/server';

const CREATE = { name: 'pvc-1', capacity_range: { required_bytes: 1 << 30 }, parameters: { type: 'ssd' } };

/** Rejects with a CsiError of this code; returns the error. */
async function rejectsWith(p: Promise<unknown>, code: status): Promise<CsiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CsiError, `expected a CsiError, got ${String(e)}`);
    assert.equal(status[e.code], status[code], e.message);
    return e;
  }
  assert.fail(`expected ${status[code]}, but it succeeded`);
}

/** Let queued promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

test('identical concurrent requests join: the work runs once and every caller gets its result', async () => {
  const registry = new InFlight();
  const release = gate<{ volume_id: string }>();
  let runs = 0;
  const work = async () => {
    runs++;
    return release.promise;
  };
  const callers = [1, 2, 3].map(() => registry.run('pvc-1', 'CreateVolume', structuredClone(CREATE), new AbortController().signal, work));
  assert.equal(registry.size, 1);
  release.open({ volume_id: 'vol-42' });
  const results = await Promise.all(callers);
  assert.equal(runs, 1);
  for (const r of results) assert.deepEqual(r, { volume_id: 'vol-42' });
  assert.equal(registry.size, 0, 'the entry is removed once the work has finished');
});

test('a joiner whose own deadline passes gets DEADLINE_EXCEEDED while the work carries on for the others', async () => {
  const registry = new InFlight();
  const release = gate<string>();
  let workSignal: AbortSignal | undefined;
  const work = async (signal: AbortSignal) => {
    workSignal = signal;
    return release.promise;
  };
  const first = new AbortController();
  const second = new AbortController();
  const a = registry.run('vol-1', 'DeleteVolume', { volume_id: 'vol-1' }, first.signal, work);
  const b = registry.run('vol-1', 'DeleteVolume', { volume_id: 'vol-1' }, second.signal, work);

  second.abort(new Error('deadline'));
  const err = await rejectsWith(b, status.DEADLINE_EXCEEDED);
  assert.match(err.message, /DeleteVolume/);
  assert.match(err.message, /safe to retry/);
  assert.equal(workSignal?.aborted, false, 'someone still waits, so the work goes on');

  release.open('done');
  assert.equal(await a, 'done');
  assert.equal(workSignal?.aborted, false);
});

test("the work's signal aborts only after the last waiter has gone", async () => {
  const registry = new InFlight();
  let workSignal: AbortSignal | undefined;
  let finishWork!: () => void;
  const work = (signal: AbortSignal) =>
    new Promise<string>((_resolve, reject) => {
      workSignal = signal;
      finishWork = () => reject(new Error('aborted by the registry'));
      signal.addEventListener('abort', () => finishWork());
    });
  const callers = [new AbortController(), new AbortController(), new AbortController()];
  const pending = callers.map((c) => registry.run('vol-2', 'ControllerExpandVolume', { volume_id: 'vol-2' }, c.signal, work));

  callers[0].abort(new Error('deadline'));
  callers[1].abort(new Error('cancelled'));
  await rejectsWith(pending[0], status.DEADLINE_EXCEEDED);
  await rejectsWith(pending[1], status.DEADLINE_EXCEEDED);
  assert.equal(workSignal?.aborted, false, 'one caller is still waiting');

  const lastReason = new Error('the last one gave up');
  callers[2].abort(lastReason);
  await rejectsWith(pending[2], status.DEADLINE_EXCEEDED);
  assert.equal(workSignal?.aborted, true);
  assert.equal(workSignal?.reason, lastReason, "the work learns the last caller's reason");
  await settle();
  assert.equal(registry.size, 0, 'the aborted work has finished and left the registry');
});

test('a caller whose signal is already aborted is refused at once, and an unwaited work is aborted', async () => {
  const registry = new InFlight();
  let workSignal: AbortSignal | undefined;
  const gone = AbortSignal.abort(new Error('deadline already passed'));
  const p = registry.run('vol-3', 'DeleteVolume', { volume_id: 'vol-3' }, gone, async (signal) => {
    workSignal = signal;
    return 'never seen';
  });
  await rejectsWith(p, status.DEADLINE_EXCEEDED);
  assert.equal(workSignal?.aborted, true);
});

test('a different operation on the same key is ABORTED at once, naming the operation in flight', async () => {
  const registry = new InFlight();
  const release = gate<string>();
  let deleteRuns = 0;
  const running = registry.run('vol-4', 'ControllerPublishVolume', { volume_id: 'vol-4', node_id: 'n1' }, new AbortController().signal, () => release.promise);

  const err = await rejectsWith(
    registry.run('vol-4', 'DeleteVolume', { volume_id: 'vol-4' }, new AbortController().signal, async () => {
      deleteRuns++;
      return 'deleted';
    }),
    status.ABORTED,
  );
  assert.match(err.message, /ControllerPublishVolume is already in progress for vol-4/);
  assert.equal(deleteRuns, 0);

  release.open('published');
  assert.equal(await running, 'published');
  // Once the first has finished the key is free again.
  assert.equal(await registry.run('vol-4', 'DeleteVolume', { volume_id: 'vol-4' }, new AbortController().signal, async () => 'deleted'), 'deleted');
});

test('the same operation with different arguments is ABORTED, not joined', async () => {
  const registry = new InFlight();
  const release = gate<string>();
  const first = registry.run('pvc-1', 'CreateVolume', CREATE, new AbortController().signal, () => release.promise);
  const bigger = { ...CREATE, capacity_range: { required_bytes: 2 << 30 } };
  const err = await rejectsWith(
    registry.run('pvc-1', 'CreateVolume', bigger, new AbortController().signal, async () => 'second'),
    status.ABORTED,
  );
  assert.match(err.message, /another CreateVolume with different arguments is already in progress for pvc-1/);
  release.open('first');
  assert.equal(await first, 'first');
});

test('requests that differ only in their secrets are the same request: the retry joins', async () => {
  // The sidecars resend the secrets with every retry; requests are compared
  // with their secrets scrubbed, so a secret rotated between two attempts
  // does not turn a retry into a conflict.
  const registry = new InFlight();
  const release = gate<string>();
  let runs = 0;
  const work = async () => {
    runs++;
    return release.promise;
  };
  const a = registry.run('pvc-1', 'CreateVolume', { ...CREATE, secrets: { password: 'old-password' } }, new AbortController().signal, work);
  const b = registry.run('pvc-1', 'CreateVolume', { ...CREATE, secrets: { password: 'rotated-password' } }, new AbortController().signal, work);
  release.open('vol-1');
  assert.deepEqual(await Promise.all([a, b]), ['vol-1', 'vol-1']);
  assert.equal(runs, 1);

  // The secrets are ignored, not the rest: a different parameter still differs.
  const hold = gate<string>();
  const c = registry.run('pvc-2', 'CreateVolume', { name: 'pvc-2', parameters: { type: 'ssd' }, secrets: { password: 'x' } }, new AbortController().signal, () => hold.promise);
  await rejectsWith(
    registry.run('pvc-2', 'CreateVolume', { name: 'pvc-2', parameters: { type: 'hdd' }, secrets: { password: 'x' } }, new AbortController().signal, async () => 'other'),
    status.ABORTED,
  );
  hold.open('vol-2');
  assert.equal(await c, 'vol-2');

  // Only the secrets field: a parameter whose name merely looks secret still tells two requests apart.
  const hold3 = gate<string>();
  const d = registry.run('pvc-3', 'CreateVolume', { name: 'pvc-3', parameters: { 'csi.storage.k8s.io/token-audience': 'a' } }, new AbortController().signal, () => hold3.promise);
  await rejectsWith(
    registry.run('pvc-3', 'CreateVolume', { name: 'pvc-3', parameters: { 'csi.storage.k8s.io/token-audience': 'b' } }, new AbortController().signal, async () => 'other'),
    status.ABORTED,
  );
  hold3.open('vol-3');
  assert.equal(await d, 'vol-3');
});

test("a failed work's error reaches every joiner, and the key is free afterwards", async () => {
  const registry = new InFlight();
  const release = gate<void>();
  let runs = 0;
  const failure = new Error('cinder said no');
  const work = async () => {
    runs++;
    await release.promise;
    throw failure;
  };
  const a = registry.run('vol-5', 'DeleteVolume', { volume_id: 'vol-5' }, new AbortController().signal, work);
  const b = registry.run('vol-5', 'DeleteVolume', { volume_id: 'vol-5' }, new AbortController().signal, work);
  release.open();
  await assert.rejects(a, (e) => e === failure);
  await assert.rejects(b, (e) => e === failure);
  assert.equal(runs, 1);
  assert.equal(registry.size, 0, 'the entry is removed after a failure too');

  // A retry after the failure runs the work again.
  const retried = await registry.run('vol-5', 'DeleteVolume', { volume_id: 'vol-5' }, new AbortController().signal, async () => 'ok now');
  assert.equal(retried, 'ok now');
});

test('a work that throws synchronously is an ordinary failure and leaves no entry behind', async () => {
  const registry = new InFlight();
  const boom = new Error('boom');
  await assert.rejects(
    registry.run('vol-6', 'DeleteVolume', {}, new AbortController().signal, () => {
      throw boom;
    }),
    (e) => e === boom,
  );
  assert.equal(registry.size, 0);
});

test('a retry that arrives while an abandoned work is still winding down is ABORTED, not joined to the cancelled work', async () => {
  // The sidecar's deadline passes, the registry aborts the work (nobody
  // waits), and the sidecar retries at once. The old work has not returned yet:
  // joining it would hand the retry the old work's cancellation as its result.
  const registry = new InFlight();
  const stopped = gate<void>();
  let runs = 0;
  const work = async (signal: AbortSignal) => {
    runs++;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    await stopped.promise; // cleaning up takes a moment
    throw new Error('operation was aborted');
  };
  const caller = new AbortController();
  const first = registry.run('vol-7', 'DeleteVolume', { volume_id: 'vol-7' }, caller.signal, work);
  caller.abort(new Error('deadline'));
  await rejectsWith(first, status.DEADLINE_EXCEEDED);

  const retry = registry.run('vol-7', 'DeleteVolume', { volume_id: 'vol-7' }, new AbortController().signal, work);
  const err = await rejectsWith(retry, status.ABORTED);
  assert.match(err.message, /DeleteVolume/);
  assert.equal(runs, 1);

  stopped.open();
  await settle();
  assert.equal(registry.size, 0);
  assert.equal(await registry.run('vol-7', 'DeleteVolume', { volume_id: 'vol-7' }, new AbortController().signal, async () => 'deleted'), 'deleted');
});
