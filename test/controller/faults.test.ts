// The controller under the simulator's faults: server errors, rate limits,
// lost responses and token expiry end in the right code, and never in a
// leaked or duplicated volume or a stuck attachment.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETRY_POLICY } from '../../src/openstack/retry';
import { Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('controller under faults', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { quotas: { gigabytes: 8 } } });
  });
  after(() => h.stop());
  afterEach(() => h.driver.sim.control.clearFaults());

  const createRequest = (name: string) => ({ name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } });
  const createPost = { service: 'volume' as const, method: 'POST', pathPattern: '/volumes$' };

  it('a 500 on the create is UNAVAILABLE with nothing made; the retry makes one volume', async () => {
    h.driver.sim.control.addFault({ ...createPost, status: 500 });
    await expectCode(h.rpc('CreateVolume', createRequest('pvc-fault-500')), Code.UNAVAILABLE);
    assert.deepEqual(await h.volumesNamed('pvc-fault-500'), []);
    await h.rpc('CreateVolume', createRequest('pvc-fault-500'));
    assert.equal((await h.volumesNamed('pvc-fault-500')).length, 1);
  });

  // Cinder refused a rate-limited create before acting on it, so sending it again makes no second volume.
  it('a 429 on the create is sent again after its Retry-After; one volume', async () => {
    h.driver.sim.control.addFault({ ...createPost, status: 429, retryAfter: 1 });
    h.driver.sim.control.resetCounters();
    const started = Date.now();
    const res = await h.rpc('CreateVolume', createRequest('pvc-fault-429'));
    assert.ok(Date.now() - started >= 1_000, 'Retry-After honoured');
    assert.equal(h.driver.sim.control.counters()['POST /volume/v3/{project}/volumes'], 2);
    assert.deepEqual((await h.volumesNamed('pvc-fault-429')).map((v) => v.id), [res.volume.volume_id]);
  });

  it('a create still rate limited after the retry policy\'s attempts is UNAVAILABLE (retry later) with nothing made', async () => {
    h.driver.sim.control.addFault({ ...createPost, status: 413, retryAfter: 0.1, body: { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter: '1' } }, times: Infinity });
    h.driver.sim.control.resetCounters();
    await expectCode(h.rpc('CreateVolume', createRequest('pvc-fault-429-again')), Code.UNAVAILABLE);
    assert.equal(h.driver.sim.control.counters()['POST /volume/v3/{project}/volumes'], DEFAULT_RETRY_POLICY.maxAttempts);
    assert.deepEqual(await h.volumesNamed('pvc-fault-429-again'), []);
  });

  // The create is sent without a deadline: only the cap keeps a day-long Retry-After from parking it (and its in-flight entry).
  it('a create whose Retry-After is a day is UNAVAILABLE at once, saying how long the cloud asks to wait; nothing made', { timeout: 20_000 }, async () => {
    h.driver.sim.control.addFault({ ...createPost, status: 429, retryAfter: 86400 });
    h.driver.sim.control.resetCounters();
    const err = await expectCode(h.rpc('CreateVolume', createRequest('pvc-fault-429-day')), Code.UNAVAILABLE);
    assert.match(err.details, /the cloud asks to wait 86400 s before trying again/);
    assert.equal(h.driver.sim.control.counters()['POST /volume/v3/{project}/volumes'], 1);
    assert.deepEqual(await h.volumesNamed('pvc-fault-429-day'), []);
  });

  it('5xx and 429 answers while waiting are retried; the call still succeeds with one volume', async () => {
    h.driver.sim.control.setDurations({ create: 300 });
    try {
      h.driver.sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: '/volumes/[0-9a-f-]+$', status: 503, times: 2 });
      h.driver.sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: '/volumes/[0-9a-f-]+$', status: 429, retryAfter: 0, times: 1 });
      const res = await h.rpc('CreateVolume', createRequest('pvc-fault-poll'));
      const all = await h.volumesNamed('pvc-fault-poll');
      assert.equal(all.length, 1);
      assert.equal(all[0].id, res.volume.volume_id);
      assert.equal(all[0].status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('a token that expires mid-operation is renewed and the operation completes', async () => {
    h.driver.sim.control.setDurations({ create: 500 });
    try {
      const call = h.rpc('CreateVolume', createRequest('pvc-fault-token'));
      await new Promise((r) => setTimeout(r, 150));
      const before = h.driver.sim.control.counters()['identity.auth'] ?? 0;
      h.driver.sim.control.expireTokens();
      const res = await call;
      assert.ok((h.driver.sim.control.counters()['identity.auth'] ?? 0) > before, 'the driver authenticated again');
      const all = await h.volumesNamed('pvc-fault-token');
      assert.equal(all.length, 1);
      assert.equal(all[0].id, res.volume.volume_id);
    } finally {
      h.driver.sim.control.setDurations({ create: 50 });
    }
  });

  it('a create whose answer comes after the deadline is not repeated: retries find the one volume', async () => {
    // Cinder is slow to answer the create; the caller gives up first.
    h.driver.sim.control.addFault({ ...createPost, delayMs: 800 });
    const req = createRequest('pvc-fault-lost');
    const err = await h.rpc('CreateVolume', req, 200).then(
      () => assert.fail('the first call cannot finish in time'),
      (e) => e,
    );
    assert.equal(err.code, Code.DEADLINE_EXCEEDED);
    // The sidecar retries at once (then backs off), before Cinder has even
    // recorded the volume: the abandoned create is still on its way, so the
    // retry is told to come back (ABORTED) rather than making a second one.
    let res: any;
    const codes: number[] = [];
    for (let attempt = 0, backoff = 100; attempt < 8 && !res; attempt++, backoff *= 1.5) {
      res = await h.rpc('CreateVolume', req, 5_000).catch(async (e) => {
        codes.push(e.code);
        assert.ok([Code.DEADLINE_EXCEEDED, Code.ABORTED, Code.UNAVAILABLE].includes(e.code), `retryable, got ${e.code}: ${e.details}`);
        await new Promise((r) => setTimeout(r, backoff));
        return undefined;
      });
    }
    assert.equal(codes[0], Code.ABORTED, 'the immediate retry waits for the abandoned create');
    assert.ok(res, 'a retry returns the volume');
    const all = await h.volumesNamed('pvc-fault-lost');
    assert.equal(all.length, 1, 'exactly one volume');
    assert.equal(all[0].id, res.volume.volume_id);
  });

  it('over quota is RESOURCE_EXHAUSTED and leaves nothing behind', async () => {
    const err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-fault-quota', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: 50 * GiB } }),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.match(err.details, /quota/);
    assert.deepEqual(await h.volumesNamed('pvc-fault-quota'), []);
  });

  it('a failed attach request leaves no attachment behind', async () => {
    const id = await h.createVolume('pvc-fault-attach');
    const node = h.driver.sim.instances[0].id;
    h.driver.sim.control.addFault({ service: 'compute', method: 'POST', pathPattern: 'os-volume_attachments$', status: 500 });
    await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO }), Code.UNAVAILABLE);
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.equal(v.status, 'available');
    assert.deepEqual(v.attachments, []);
    assert.deepEqual(await h.cloud.compute.listVolumeAttachments(node), []);
  });

  it('a 503 on the delete is retried and the volume is gone', async () => {
    const id = await h.createVolume('pvc-fault-delete');
    h.driver.sim.control.addFault({ service: 'volume', method: 'DELETE', pathPattern: '/volumes/', status: 503, times: 2 });
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.deepEqual(await h.volumesNamed('pvc-fault-delete'), []);
  });

  it('Cinder down for good is UNAVAILABLE, not a hang or an INTERNAL error', async () => {
    h.driver.sim.control.addFault({ service: 'volume', status: 503, times: Infinity });
    const err = await expectCode(h.rpc('ListVolumes', {}, 20_000), Code.UNAVAILABLE);
    assert.ok(err.details.length > 0);
  });
});
