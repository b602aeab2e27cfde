// ListSnapshots without max_entries answers every snapshot and backup, page
// after Cinder page (the spec: zero means no restriction on the number of
// entries), and cuts an answer that would outgrow a client's message limit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log';
import { createCloudSet } from '../../src/controller/clouds';
import { createEnv } from '../../src/controller/env';
import { listSnapshots } from '../../src/controller/snapshots';
import { controllerSettings } from '../../src/controller/settings';
import { startController, type ControllerHarness } from './harness';

describe('ListSnapshots across pages', () => {
  let h: ControllerHarness;
  const ids: string[] = [];
  before(async () => {
    h = await startController();
    h.driver.sim.control.setDurations({ snapshot: 0, backup: 0 });
    const bs = h.cloud.blockStorage;
    const volume = await bs.createVolume({ name: 'pvc-list-snapshots', size: 1 });
    await h.cloud.waiter.volume(volume.id, { target: ['available'], transient: ['creating'] });
    for (let i = 0; i < 7; i++) ids.push((await bs.createSnapshot({ volumeId: volume.id, name: `snap-${i}`, force: false })).id);
    for (let i = 0; i < 4; i++) {
      // One at a time: Cinder backs up a volume that is not already 'backing-up'.
      const backup = await bs.createBackup({ volumeId: volume.id, name: `backup-${i}`, force: false, incremental: false });
      await h.cloud.waiter.backup(backup.id, { target: ['available'], transient: ['creating'] });
      await h.cloud.waiter.volume(volume.id, { target: ['available'], transient: ['backing-up'] });
      ids.push(backup.id);
    }
  });
  after(() => h.stop());

  const call = (env: ReturnType<typeof createEnv>, max_entries: number, starting_token = '') =>
    listSnapshots(env, { max_entries, starting_token, source_volume_id: '', snapshot_id: '', secrets: {} }, { signal: AbortSignal.timeout(30_000) });

  it('answers every snapshot and backup in one call without max_entries, however small Cinder pages are', async () => {
    const env = createEnv(createCloudSet([h.cloud]), controllerSettings({ listPageSize: 3 }), silentLogger);
    const res = await call(env, 0);
    assert.equal(res.next_token, '');
    assert.deepEqual(new Set(res.entries!.map((e) => e.snapshot!.snapshot_id)), new Set(ids));
  });

  it('with max_entries, pages with next_token and loses nothing', async () => {
    const env = createEnv(createCloudSet([h.cloud]), controllerSettings({ listPageSize: 3 }), silentLogger);
    const seen: string[] = [];
    let token = '';
    do {
      const res = await call(env, 4, token);
      assert.ok(res.entries!.length <= 4);
      seen.push(...res.entries!.map((e) => e.snapshot!.snapshot_id!));
      token = res.next_token ?? '';
    } while (token);
    assert.deepEqual(seen.sort(), [...ids].sort());
  });

  it('cuts an unbounded answer at the byte limit and goes on with next_token', async () => {
    const env = createEnv(createCloudSet([h.cloud]), controllerSettings({ listResponseBytes: 400 }), silentLogger);
    const seen: string[] = [];
    let token = '';
    let answers = 0;
    do {
      const res = await call(env, 0, token);
      assert.ok(res.entries!.length >= 1);
      seen.push(...res.entries!.map((e) => e.snapshot!.snapshot_id!));
      token = res.next_token ?? '';
      answers++;
    } while (token);
    assert.ok(answers > 2, `only ${answers} answers under a 400-byte limit`);
    assert.deepEqual(seen.sort(), [...ids].sort());
  });
});
