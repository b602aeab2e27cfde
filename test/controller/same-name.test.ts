// Volumes that share a name: what a create left in Cinder's hands by a dead
// controller leaves behind, and how CreateVolume gets back to one volume.
// The driver over real gRPC against the simulator; the stray volumes are made
// through Cinder's API as such a create would have made them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Volume } from '../../src/openstack/types';
import { ANSWERED_METADATA_KEY, CLUSTER_METADATA_KEY } from '../../src/controller/params';
import { keeper, plan, SameNameChecks, unclaimed } from '../../src/controller/same-name';
import type { ControllerEnv } from '../../src/controller/env';
import type { Cloud } from '../../src/openstack/types';
import { silentLogger } from '../../src/log';
import { Code, GiB, MOUNT_RWO, expectCode, startController, type ControllerHarness } from './harness';

const CLUSTER = 'test-cluster';
/** The later look after an answer, shortened: 300 ms instead of 2 min. */
const CHECK_MS = 300;

describe('volumes that share a name', () => {
  let h: ControllerHarness;
  let nodeId: string;
  before(async () => {
    h = await startController({
      sim: { instances: [{ name: 'node-1' }], durations: { create: 200, delete: 50 } },
      configure: (c) => {
        c.clusterId = CLUSTER;
        c.controller.sameNameCheckMs = CHECK_MS;
      },
    });
    nodeId = h.driver.sim.instances[0].id;
  });
  after(() => h.stop());

  /**
   * A volume as an earlier controller's create would have made it (this cluster's, unless said
   * otherwise). Made in a later second than anything before it (Cinder keeps whole seconds), so
   * "the oldest" is plain to see, unless `now`.
   */
  async function stray(name: string, cluster = CLUSTER, now = false): Promise<Volume> {
    if (!now) await sleep(1000 - (Date.now() % 1000) + 10);
    return h.cloud.blockStorage.createVolume({ name, size: 1, metadata: { [CLUSTER_METADATA_KEY]: cluster } });
  }

  /** Volumes of the name that are not on their way out. */
  const live = async (name: string) => (await h.volumesNamed(name)).filter((v) => !['deleting', 'error_deleting'].includes(v.status));

  async function untilLive(name: string, count: number): Promise<Volume[]> {
    const end = Date.now() + 10_000;
    for (;;) {
      const found = await live(name);
      if (found.length === count || Date.now() > end) return found;
      await sleep(25);
    }
  }

  const create = (name: string) => h.rpc('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } });

  /** Wait until none of the volumes of the name is still being made. */
  async function settled(name: string): Promise<void> {
    while ((await live(name)).some((v) => v.status === 'creating')) await sleep(25);
  }

  it('a retry that finds several unclaimed volumes of its name answers the oldest available one; the others are gone before it answers, or, still being made, go at the later look', async () => {
    const name = 'pvc-two-strays';
    const oldest = await stray(name);
    const second = await stray(name);
    await settled(name);
    const making = await stray(name); // still 'creating' when the retry comes
    const res = await create(name);
    assert.equal(res.volume.volume_id, oldest.id);
    const atAnswer = await live(name);
    assert.ok(!atAnswer.some((v) => v.id === second.id), 'the available leftover is gone before the answer');
    assert.ok(atAnswer.some((v) => v.id === making.id), 'the one being made is not waited for');
    const left = await untilLive(name, 1);
    assert.deepEqual(left.map((v) => v.id), [oldest.id]);
    assert.equal(left[0]!.status, 'available');
  });

  it('the volume CreateVolume answered with is marked so in Cinder, with its name, at the later look', async () => {
    const name = 'pvc-marked';
    const id = (await create(name)).volume.volume_id as string;
    const end = Date.now() + 5000;
    let v = (await live(name))[0]!;
    while (v.metadata[ANSWERED_METADATA_KEY] !== name && Date.now() < end) {
      await sleep(20);
      v = (await live(name))[0]!;
    }
    assert.equal(v.id, id);
    assert.equal(v.metadata[ANSWERED_METADATA_KEY], name);
  });

  it('a volume an earlier controller answered with (marked) is kept, though an older leftover sorts first', async () => {
    const name = 'pvc-marked-younger';
    const older = await stray(name);
    // What a controller that answered and then restarted leaves: this process never answered it.
    await sleep(1000 - (Date.now() % 1000) + 10); // a second later: the leftover sorts first
    const answered = await h.cloud.blockStorage.createVolume({ name, size: 1, metadata: { [CLUSTER_METADATA_KEY]: CLUSTER, [ANSWERED_METADATA_KEY]: name } });
    await settled(name);
    assert.equal((await create(name)).volume.volume_id, answered.id);
    assert.deepEqual((await live(name)).map((v) => v.id), [answered.id]);
    assert.ok(older.createdAt < answered.createdAt, 'the leftover is the older');
  });

  it('a leftover whose delete the backend refuses: INTERNAL saying so, and the retry finishes the job', async () => {
    const name = 'pvc-busy-stray';
    const oldest = await stray(name);
    const busy = await stray(name);
    await settled(name);
    h.driver.sim.control.failDeletes(1);
    const err = await expectCode(create(name), Code.INTERNAL);
    assert.match(err.details, new RegExp(`^volume ${busy.id}, a leftover of the same name '${name}', was not deleted \\(Cinder put it to 'available'\\); delete it by hand$`));
    assert.equal((await create(name)).volume.volume_id, oldest.id);
    assert.deepEqual((await live(name)).map((v) => v.id), [oldest.id]);
  });

  it('a healthy volume is kept before an older failed one', async () => {
    const name = 'pvc-failed-stray';
    const failed = await stray(name);
    await settled(name); // else its create, finishing, would make it available again
    h.driver.sim.control.setVolumeStatus(failed.id, 'error');
    const healthy = await stray(name);
    const res = await create(name);
    assert.equal(res.volume.volume_id, healthy.id);
    assert.deepEqual((await live(name)).map((v) => v.id), [healthy.id]);
  });

  it("several of one name where one is attached, or another cluster's: INTERNAL naming them all, and nothing deleted", async () => {
    for (const [name, claim] of [
      ['pvc-stray-attached', 'attached'],
      ['pvc-stray-foreign', 'foreign'],
    ] as const) {
      const a = await stray(name);
      const b = await stray(name, claim === 'foreign' ? 'another-cluster' : CLUSTER);
      await untilLive(name, 2);
      await settled(name);
      if (claim === 'attached') {
        await h.rpc('ControllerPublishVolume', { volume_id: b.id, node_id: nodeId, volume_capability: MOUNT_RWO, readonly: false });
      }
      const err = await expectCode(create(name), Code.INTERNAL);
      assert.match(err.details, new RegExp(`^Cinder has 2 volumes named '${name}' \\((${a.id}, ${b.id}|${b.id}, ${a.id})\\); delete all but the one Kubernetes should use`));
      assert.match(err.details, new RegExp(`as ${b.id} ${claim === 'attached' ? 'is attached' : "belongs to cluster 'another-cluster'"}\\)$`));
      assert.equal((await live(name)).length, 2);
      if (claim === 'attached') await h.rpc('ControllerUnpublishVolume', { volume_id: b.id, node_id: nodeId });
    }
  });

  it('a volume of the same name that lands after the answer is deleted by the later look; the answered one stays', async () => {
    const name = 'pvc-late-stray';
    const res = await create(name);
    const answered = res.volume.volume_id as string;
    const late = await stray(name, CLUSTER, true); // the dead controller's create, landing now
    assert.equal((await live(name)).length, 2);
    const left = await untilLive(name, 1);
    assert.deepEqual(left.map((v) => v.id), [answered], `the late ${late.id} is deleted`);
  });

  it('a leftover whose delete the backend refuses at the later look is deleted at the next look', async () => {
    const name = 'pvc-late-busy';
    const answered = (await create(name)).volume.volume_id as string;
    await stray(name, CLUSTER, true);
    await settled(name);
    h.driver.sim.control.failDeletes(1);
    assert.deepEqual((await untilLive(name, 1)).map((v) => v.id), [answered]);
  });

  it("the later look leaves alone another cluster's volume of the name", async () => {
    const name = 'pvc-late-foreign';
    const answered = (await create(name)).volume.volume_id as string;
    const foreign = await stray(name, 'another-cluster', true);
    await sleep(CHECK_MS + 500);
    assert.deepEqual((await live(name)).map((v) => v.id).sort(), [answered, foreign.id].sort());
  });

  it('a leftover of a volume deleted before its look is left alone: another controller may have answered with it since', async () => {
    const name = 'pvc-deleted-before-look';
    const deleted = (await create(name)).volume.volume_id as string;
    await h.rpc('DeleteVolume', { volume_id: deleted });
    const leftover = await stray(name, CLUSTER, true);
    await sleep(CHECK_MS + 500);
    assert.deepEqual((await live(name)).map((v) => v.id), [leftover.id]);
  });

  describe('the rule (plan)', () => {
    const v = (id: string, createdAt: string, status = 'available', extra: Partial<Volume> = {}): Volume =>
      ({ id, name: 'n', status, createdAt, attachments: [], metadata: { [CLUSTER_METADATA_KEY]: CLUSTER }, migrationStatus: null, ...extra }) as Volume;
    const T = '2026-11-26T10:00:00.000000';

    it('keeps the same one whatever order Cinder lists them in: available first, then oldest, then smallest ID', () => {
      const sameSecond = [v('b', T), v('a', T), v('c', '2026-11-26T09:59:59.000000', 'error'), v('d', '2026-11-26T09:59:58.000000', 'creating')];
      assert.equal(keeper(sameSecond).id, 'a');
      assert.equal(keeper([...sameSecond].reverse()).id, 'a');
      assert.equal(keeper([v('x', '2026-11-26T10:00:01.000000'), v('y', T)]).id, 'y');
      assert.equal(keeper([v('x', T, 'error'), v('y', '2026-11-26T10:00:05.000000', 'creating')]).id, 'y');
    });

    it('keeps the volume this process answered with, or the one marked answered, even when another sorts first', () => {
      const older = v('a', '2026-11-26T09:59:59.000000');
      const answered = v('z', T);
      assert.deepEqual(plan([answered, older], CLUSTER, 'z'), { keep: answered, remove: [older], problems: [] });
      assert.deepEqual(plan([answered, older], CLUSTER), { keep: older, remove: [answered], problems: [] });
      const marked = v('z', T, 'available', { metadata: { [CLUSTER_METADATA_KEY]: CLUSTER, [ANSWERED_METADATA_KEY]: 'n' } });
      assert.deepEqual(plan([marked, older], CLUSTER), { keep: marked, remove: [older], problems: [] });
      // Two marked: both may be in use, nothing is chosen.
      const marked2 = v('y', T, 'available', { metadata: { [CLUSTER_METADATA_KEY]: CLUSTER, [ANSWERED_METADATA_KEY]: 'n' } });
      assert.equal(plan([marked, marked2], CLUSTER).keep, undefined);
      assert.deepEqual(plan([marked, marked2], CLUSTER, 'z').problems, ['y was answered by an earlier CreateVolume']);
      // A mark for another name came with a restore of another volume's metadata: it counts for nothing.
      const copied = v('c', '2026-11-26T09:59:58.000000', 'available', { metadata: { [CLUSTER_METADATA_KEY]: CLUSTER, [ANSWERED_METADATA_KEY]: 'other' } });
      assert.deepEqual(plan([answered, copied], CLUSTER, 'z'), { keep: answered, remove: [copied], problems: [] });
    });

    it('without an answer here, chooses nothing when any of them may be in use; with one, deletes only what nothing uses', () => {
      const attached = v('b', T, 'in-use', { attachments: [{ serverId: 's' } as Volume['attachments'][number]] });
      assert.deepEqual(plan([v('a', T), attached], CLUSTER), { keep: undefined, remove: [], problems: ['b is attached'] });
      const answered = v('z', T, 'in-use', { attachments: [{ serverId: 's' } as Volume['attachments'][number]] });
      const leftover = v('a', T);
      assert.deepEqual(plan([answered, leftover], CLUSTER, 'z'), { keep: answered, remove: [leftover], problems: [] });
    });

    it('a volume made more than 10 minutes apart is not a leftover (an idle PV of long ago), nor is a migrating, busy or foreign one', () => {
      const old = v('old', '2026-11-26T09:49:59.000000');
      const r = plan([v('z', T), old], CLUSTER, 'z');
      assert.deepEqual(r.remove, []);
      assert.deepEqual(r.problems, ['old was made more than 10 minutes apart from z']);
      assert.deepEqual(plan([v('z', T), v('m', T, 'available', { migrationStatus: 'migrating' })], CLUSTER, 'z').problems, ["m is migrating ('migrating')"]);
      assert.deepEqual(plan([v('z', T), v('u', T, 'uploading')], CLUSTER, 'z').problems, ["u is 'uploading'"]);
      assert.deepEqual(plan([v('z', T), v('f', T, 'available', { metadata: { [CLUSTER_METADATA_KEY]: 'other' } })], CLUSTER, 'z').problems, ["f belongs to cluster 'other'"]);
      assert.deepEqual(plan([v('z', T), v('n', T, 'available', { metadata: {} })], CLUSTER, 'z').problems, ['n carries no cluster mark']);
      assert.equal(unclaimed(v('a', T, 'creating'), CLUSTER), true);
    });
  });

describe('the later look (SameNameChecks) against a cloud that misbehaves', () => {
  const T = '2026-11-26T10:00:00.000000';
  const vol = (id: string, extra: Partial<Volume> = {}): Volume =>
    ({ id, name: 'n', status: 'available', createdAt: T, attachments: [], metadata: { [CLUSTER_METADATA_KEY]: CLUSTER }, migrationStatus: null, ...extra }) as Volume;

  /** A cloud whose Cinder holds `volumes` (all of the one name), deletes at once, and records what is asked of it. */
  function fakeCloud(volumes: Volume[], opts: { markFails?: boolean } = {}) {
    const calls: string[] = [];
    const cloud = {
      name: 'fake',
      blockStorage: {
        async listVolumes() {
          return { items: [...volumes], next: undefined };
        },
        async setVolumeMetadata(id: string) {
          calls.push(`mark ${id}`);
          if (opts.markFails) throw new Error('Cinder answered 503');
        },
        async deleteVolume(id: string) {
          calls.push(`delete ${id}`);
          volumes.splice(volumes.findIndex((v) => v.id === id), 1);
        },
      },
      // Gone already: the wait until a deleted leftover is gone ends at once.
      waiter: { volume: async () => null },
    } as unknown as Cloud;
    return { cloud, calls };
  }

  function checks(delayMs = 5) {
    const env = { settings: { clusterId: CLUSTER }, logger: silentLogger } as unknown as ControllerEnv;
    return new SameNameChecks(env, { delayMs, logger: silentLogger, exclusive: (_name, _req, signal, work) => work(signal) });
  }

  it('an answer whose mark never takes is remembered after the looks give up', async () => {
    const answered = vol('a');
    const { cloud, calls } = fakeCloud([answered], { markFails: true });
    const c = checks();
    c.answer(cloud, 'n', answered);
    await sleep(200);
    assert.equal(calls.filter((x) => x === 'mark a').length, 5, 'five looks, each tried the mark');
    assert.equal(c.answered(cloud, 'n'), 'a', 'still remembered: no look-up here may prefer a leftover');
    assert.equal(c.answered({ name: 'another-cloud' } as Cloud, 'n'), undefined, 'for its own cloud only');
    c.stop();
  });

  it('an answer that is marked is forgotten after its look (the mark speaks for it)', async () => {
    const answered = vol('a');
    const { cloud, calls } = fakeCloud([answered]);
    const c = checks();
    c.answer(cloud, 'n', answered);
    await sleep(100);
    assert.deepEqual(calls, ['mark a']);
    assert.equal(c.answered(cloud, 'n'), undefined);
    c.stop();
  });

  it('with the answered volume gone, an unmarked volume of the name is not deleted (another controller may have answered with it)', async () => {
    const { cloud, calls } = fakeCloud([vol('b')]);
    const c = checks();
    c.answer(cloud, 'n', vol('a'));
    await sleep(100);
    assert.deepEqual(calls, []);
    c.stop();
  });

  it('with the answered volume gone and one other marked, unmarked leftovers of the name go', async () => {
    const marked = vol('b', { metadata: { [CLUSTER_METADATA_KEY]: CLUSTER, [ANSWERED_METADATA_KEY]: 'n' } });
    const { cloud, calls } = fakeCloud([marked, vol('c')]);
    const c = checks();
    c.answer(cloud, 'n', vol('a'));
    await sleep(50);
    c.stop();
    assert.deepEqual(calls, ['delete c']);
  });
});
});
