// Volumes that share a name: what a create left in Cinder's hands by a dead
// controller leaves behind, and how CreateVolume gets back to one volume.
// The driver over real gRPC against the simulator; the stray volumes are made
// through Cinder's API as such a create would have made them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Volume } from '../../src/openstack/types';
import { CLUSTER_METADATA_KEY } from '../../src/controller/params';
import { keeper, unclaimed } from '../../src/controller/same-name';
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

  /** A volume as an earlier controller's create would have made it (this cluster's, unless said otherwise). */
  async function stray(name: string, cluster = CLUSTER): Promise<Volume> {
    const v = await h.cloud.blockStorage.createVolume({ name, size: 1, metadata: { [CLUSTER_METADATA_KEY]: cluster } });
    await sleep(5); // distinct created_at, so "the oldest" is plain to see
    return v;
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

  it('a retry that finds several unclaimed volumes of its name answers the oldest and deletes the others', async () => {
    const name = 'pvc-two-strays';
    const oldest = await stray(name);
    await stray(name);
    await stray(name); // still 'creating' when the retry comes: waited for, then deleted
    const res = await create(name);
    assert.equal(res.volume.volume_id, oldest.id);
    const left = await live(name);
    assert.deepEqual(left.map((v) => v.id), [oldest.id]);
    assert.equal(left[0]!.status, 'available');
  });

  it('a healthy volume is kept before an older failed one', async () => {
    const name = 'pvc-failed-stray';
    const failed = await stray(name);
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
      while ((await live(name)).some((v) => v.status === 'creating')) await sleep(25);
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
    const late = await stray(name); // the dead controller's create, landing now
    assert.equal((await live(name)).length, 2);
    const left = await untilLive(name, 1);
    assert.deepEqual(left.map((v) => v.id), [answered], `the late ${late.id} is deleted`);
  });

  it("the later look leaves alone another cluster's volume of the name, and everything once the answered volume is gone", async () => {
    const name = 'pvc-late-foreign';
    const answered = (await create(name)).volume.volume_id as string;
    const foreign = await stray(name, 'another-cluster');
    const name2 = 'pvc-deleted-before-look';
    const deleted = (await create(name2)).volume.volume_id as string;
    await h.rpc('DeleteVolume', { volume_id: deleted });
    const after = await stray(name2);
    await sleep(CHECK_MS + 500);
    assert.deepEqual((await live(name)).map((v) => v.id).sort(), [answered, foreign.id].sort());
    // The answered volume was deleted: a later retry's look-up would keep the oldest, not this look.
    assert.deepEqual((await live(name2)).map((v) => v.id), [after.id]);
  });

  it('picks the keeper the same way whatever the order it is shown in, and calls only idle, unattached, own volumes unclaimed', () => {
    const v = (id: string, createdAt: string, status = 'available', extra: Partial<Volume> = {}): Volume =>
      ({ id, name: 'n', status, createdAt, attachments: [], metadata: { [CLUSTER_METADATA_KEY]: CLUSTER }, ...extra }) as Volume;
    const sameSecond = [v('b', '2026-11-26T10:00:00.000000'), v('a', '2026-11-26T10:00:00.000000'), v('c', '2026-11-26T09:59:59.000000', 'error')];
    assert.equal(keeper(sameSecond).id, 'a');
    assert.equal(keeper([...sameSecond].reverse()).id, 'a');
    assert.equal(keeper([v('x', '2026-11-26T10:00:01.000000'), v('y', '2026-11-26T10:00:00.000000')]).id, 'y');
    assert.equal(unclaimed(v('a', ''), CLUSTER), true);
    assert.equal(unclaimed(v('a', '', 'creating'), CLUSTER), true);
    assert.equal(unclaimed(v('a', '', 'in-use'), CLUSTER), false);
    assert.equal(unclaimed(v('a', '', 'available', { attachments: [{ serverId: 's' } as Volume['attachments'][number]] }), CLUSTER), false);
    assert.equal(unclaimed(v('a', '', 'uploading'), CLUSTER), false);
    assert.equal(unclaimed(v('a', '', 'available', { metadata: {} }), CLUSTER), false);
  });
});
