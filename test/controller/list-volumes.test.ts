import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeListToken } from '../../src/controller/list-token';
import { Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('ListVolumes', () => {
  let h: ControllerHarness;
  const ids: string[] = [];
  before(async () => {
    h = await startController();
    for (let i = 0; i < 5; i++) ids.push(await h.createVolume(`pvc-list-${i}`));
  });
  after(() => h.stop());

  async function listAll(maxEntries: number): Promise<{ ids: string[]; pages: number }> {
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await h.rpc('ListVolumes', { max_entries: maxEntries, starting_token: token });
      if (maxEntries > 0) assert.ok(page.entries.length <= maxEntries, 'a page holds at most max_entries');
      seen.push(...page.entries.map((e: any) => e.volume.volume_id));
      token = page.next_token;
      pages++;
    } while (token && pages < 100);
    assert.equal(token, '', 'the listing ends');
    return { ids: seen, pages };
  }

  it('lists every volume once, in pages of max_entries', async () => {
    const paged = await listAll(2);
    assert.deepEqual([...paged.ids].sort(), [...ids].sort());
    assert.ok(paged.pages >= 3);
    const whole = await listAll(0);
    assert.deepEqual([...whole.ids].sort(), [...ids].sort());
    assert.equal(whole.pages, 1);
  });

  it('reports published nodes and condition for each volume', async () => {
    const node = h.driver.sim.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: ids[0], node_id: node, volume_capability: MOUNT_RWO });
    try {
      const res = await h.rpc('ListVolumes', {});
      const entry = res.entries.find((e: any) => e.volume.volume_id === ids[0]);
      assert.deepEqual(entry.status.published_node_ids, [node]);
      assert.equal(entry.status.volume_condition.abnormal, false);
      const other = res.entries.find((e: any) => e.volume.volume_id === ids[1]);
      assert.deepEqual(other.status.published_node_ids, []);
    } finally {
      await h.rpc('ControllerUnpublishVolume', { volume_id: ids[0], node_id: node });
    }
  });

  it('answers ABORTED for a token it did not issue and INVALID_ARGUMENT for a negative max_entries', async () => {
    let err = await expectCode(h.rpc('ListVolumes', { starting_token: 'garbage' }), Code.ABORTED);
    assert.match(err.details, /without a token/);
    // Well-formed, but signed with another key.
    const forged = encodeListToken({ list: 'volumes', cloud: 'sim', marker: ids[0] }, 'not-the-driver-key');
    await expectCode(h.rpc('ListVolumes', { starting_token: forged }), Code.ABORTED);
    // A genuine ListSnapshots token is not a ListVolumes token.
    const snaps = await h.rpc('CreateSnapshot', { name: 'snap-for-token', source_volume_id: ids[1] });
    await h.rpc('CreateSnapshot', { name: 'snap-for-token-2', source_volume_id: ids[1] });
    const snapPage = await h.rpc('ListSnapshots', { max_entries: 1 });
    assert.ok(snapPage.next_token);
    err = await expectCode(h.rpc('ListVolumes', { starting_token: snapPage.next_token }), Code.ABORTED);
    await expectCode(h.rpc('ListVolumes', { max_entries: -1 }), Code.INVALID_ARGUMENT);
    await h.rpc('DeleteSnapshot', { snapshot_id: snaps.snapshot.snapshot_id });
  });

  it('answers ABORTED when the volume its token points at was deleted meanwhile', async () => {
    const extra = await h.createVolume('pvc-list-doomed');
    // A page that ends with the doomed volume: the token's marker is that volume.
    const page = await h.rpc('ListVolumes', {});
    const index = page.entries.findIndex((e: any) => e.volume.volume_id === extra);
    assert.ok(index >= 0 && index < page.entries.length - 1, 'the doomed volume is not the last one listed');
    const upTo = await h.rpc('ListVolumes', { max_entries: index + 1 });
    assert.equal(upTo.entries.at(-1).volume.volume_id, extra);
    assert.ok(upTo.next_token);
    await h.rpc('DeleteVolume', { volume_id: extra });
    const err = await expectCode(h.rpc('ListVolumes', { starting_token: upTo.next_token }), Code.ABORTED);
    assert.match(err.details, /start the listing again/);
  });
});
