// ListVolumes over thousands of volumes: one unbounded call answers them all
// with one Cinder request per Cinder page, and an answer is cut (with a
// next_token) before it outgrows what a gRPC client accepts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log';
import { loadCsi } from '../../src/csi/proto';
import { createCloudSet } from '../../src/controller/clouds';
import { createEnv } from '../../src/controller/env';
import { listVolumes } from '../../src/controller/list-volumes';
import { controllerSettings } from '../../src/controller/settings';
import { startController, type ControllerHarness } from './harness';

const VOLUMES = 3100;
const LIST_ROUTE = 'GET /volume/v3/{project}/volumes/detail';

describe('ListVolumes at scale', () => {
  let h: ControllerHarness;
  const ids: string[] = [];
  before(async () => {
    h = await startController();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < VOLUMES; i = next++) {
        ids.push((await h.cloud.blockStorage.createVolume({ name: `pvc-scale-${i}`, size: 1 })).id);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  });
  after(() => h.stop());

  it(`answers ${VOLUMES} volumes in one unbounded call, one Cinder request per page of 1000`, async () => {
    const before = h.driver.sim.control.counters()[LIST_ROUTE] ?? 0;
    const res = await h.rpc('ListVolumes', { max_entries: 0 });
    const requests = (h.driver.sim.control.counters()[LIST_ROUTE] ?? 0) - before;
    assert.equal(res.next_token, '');
    assert.equal(res.entries.length, VOLUMES);
    assert.deepEqual(new Set(res.entries.map((e: any) => e.volume.volume_id)), new Set(ids));
    assert.equal(requests, Math.ceil(VOLUMES / 1000));
  });

  it('cuts an unbounded answer before it passes the byte limit and goes on from there with next_token', async () => {
    const limit = 64 * 1024;
    const env = createEnv(createCloudSet([h.cloud]), controllerSettings({ listResponseBytes: limit }), silentLogger);
    const serialize = loadCsi().csi.v1.Controller.service.ListVolumes.responseSerialize;
    const seen: string[] = [];
    let token = '';
    let answers = 0;
    do {
      const res = await listVolumes(env, { max_entries: 0, starting_token: token }, { signal: AbortSignal.timeout(60_000) });
      const entriesBytes = serialize({ entries: res.entries ?? [], next_token: '' }).length;
      assert.ok(entriesBytes <= limit, `answer ${answers}: ${entriesBytes} bytes of entries, over ${limit}`);
      if (res.next_token) {
        // Full: one more entry would not have fitted.
        const one = serialize({ entries: [res.entries![0]], next_token: '' }).length;
        assert.ok(entriesBytes + one > limit, `answer ${answers} was cut at ${entriesBytes} bytes with room left`);
      }
      seen.push(...res.entries!.map((e) => e.volume!.volume_id!));
      token = res.next_token ?? '';
      answers++;
    } while (token && answers < 100);
    assert.equal(token, '', 'the listing ends');
    assert.ok(answers >= 4, `${answers} answers`);
    assert.equal(seen.length, VOLUMES, 'every volume once');
    assert.deepEqual(new Set(seen), new Set(ids));
  });
});
