// Cinder's quota refusals, each with its own fix. A size over the project's
// per-volume limit is OUT_OF_RANGE (a capacity this cloud cannot give;
// final for the sidecars) naming the size asked and the largest allowed, on
// create and on expand; the volume-count quota says to delete volumes, not to
// free space. The simulator answers as Cinder does (Zed testbed: 413 overLimit).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('quota refusals', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { quotas: { per_volume_gigabytes: 5, volumes: 2 } } });
  });
  after(() => h.stop());

  const create = (name: string, gib: number) => h.rpc('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: gib * GiB } });
  const PER_VOLUME = "the PVC asks 10 GiB; this cloud allows at most 5 GiB per volume (the project's per_volume_gigabytes quota): ";

  it('a create over the per-volume limit is OUT_OF_RANGE, naming the size asked and the largest allowed; nothing made', async () => {
    const err = await expectCode(create('pvc-too-big', 10), Code.OUT_OF_RANGE);
    assert.ok(err.details.startsWith(PER_VOLUME), err.details);
    assert.match(err.details, /VolumeSizeExceedsLimit: Requested volume size 10G is larger than maximum allowed limit 5G\./);
    assert.match(err.details, /ask for at most 5 GiB, or have the project's per_volume_gigabytes quota raised$/);
    assert.doesNotMatch(err.details, /free space/);
    assert.deepEqual(await h.volumesNamed('pvc-too-big'), []);
  });

  it('an expand over the per-volume limit is OUT_OF_RANGE in the same words', async () => {
    const id = await h.createVolume('pvc-grow-too-big');
    const err = await expectCode(
      h.rpc('ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 10 * GiB }, volume_capability: MOUNT_RWO }),
      Code.OUT_OF_RANGE,
    );
    assert.ok(err.details.startsWith(PER_VOLUME), err.details);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).size, 1);
  });

  it("the volume-count quota is RESOURCE_EXHAUSTED saying to delete unused volumes or raise the 'volumes' quota", async () => {
    await h.createVolume('pvc-count-2');
    const err = await expectCode(create('pvc-count-3', 1), Code.RESOURCE_EXHAUSTED);
    assert.match(err.details, /VolumeLimitExceeded: Maximum number of volumes allowed \(2\) exceeded for quota 'volumes'\./);
    assert.match(err.details, /; delete unused volumes or raise the project's 'volumes' quota$/);
    assert.doesNotMatch(err.details, /free space/);
  });
});
