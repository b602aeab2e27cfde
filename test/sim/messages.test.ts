// The simulator's scheduler failures and Cinder's user messages (GET
// /v3/{project}/messages, microversion 3.3; filters from 3.5): a volume the
// scheduler cannot place goes to 'error', and a message says why, in the
// words and event ID Cinder's message_field module uses.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { call, createVolume, login, volumeStatus, waitFor, type Session } from './helpers';

const NO_BACKEND = 'VOLUME_VOLUME_001_003';
const NO_BACKEND_TEXT = 'schedule allocate volume: Could not find any available weighted backend.';

describe('sim cinder: scheduler failures and user messages', () => {
  let sim: Simulator;
  let s: Session;
  before(async () => {
    sim = await startSimulator({
      hypervisor: false,
      durations: { create: 20, delete: 20 },
      volumeTypes: [{ name: '__DEFAULT__' }, { name: 'elsewhere', extraSpecs: { volume_backend_name: 'no-such-backend' } }],
    });
    s = await login(sim);
  });
  after(() => sim.stop());

  const mvh = (mv: string) => ({ 'openstack-api-version': `volume ${mv}` });
  const messages = (mv: string, query = '') => call('GET', `${s.volume}/messages${query}`, { token: s.token, headers: mvh(mv) });

  async function failedVolume(volume: Record<string, unknown>): Promise<string> {
    const r = await createVolume(s, volume, '3.60');
    assert.equal(r.status, 202, r.text);
    const id: string = r.body.volume.id;
    await waitFor(() => volumeStatus(s, id), (st) => st === 'error');
    return id;
  }

  it('a type that names another backend cannot be scheduled: error, and a message with the reason', async () => {
    const id = await failedVolume({ size: 1, volume_type: 'elsewhere' });
    const r = await waitFor(() => messages('3.5', `?resource_uuid=${id}`), (res) => res.body.messages?.length === 1);
    const m = r.body.messages[0];
    assert.equal(m.event_id, NO_BACKEND);
    assert.equal(m.user_message, NO_BACKEND_TEXT);
    assert.equal(m.message_level, 'ERROR');
    assert.equal(m.resource_type, 'VOLUME');
    assert.equal(m.resource_uuid, id);
    for (const field of ['id', 'created_at', 'guaranteed_until', 'request_id', 'links']) assert.ok(field in m, `message has ${field}`);
    const one = await call('GET', `${s.volume}/messages/${m.id}`, { token: s.token, headers: mvh('3.3') });
    assert.equal(one.status, 200);
    assert.equal(one.body.message.id, m.id);
  });

  it('a volume larger than the backend has room for cannot be scheduled', async () => {
    sim.control.setBackendCapacity(5);
    try {
      const id = await failedVolume({ size: 10 });
      const r = await waitFor(() => messages('3.5', `?resource_uuid=${id}`), (res) => res.body.messages?.length === 1);
      assert.equal(r.body.messages[0].event_id, NO_BACKEND);
      // One that fits still does.
      const small = await createVolume(s, { size: 1 }, '3.60');
      await waitFor(() => volumeStatus(s, small.body.volume.id), (st) => st === 'available');
    } finally {
      sim.control.setBackendCapacity(null);
    }
  });

  it('the API exists from 3.3; its filters from 3.5 (before, every message of the project is listed)', async () => {
    assert.equal((await messages('3.2')).status, 404);
    const a = await failedVolume({ size: 1, volume_type: 'elsewhere' });
    const b = await failedVolume({ size: 1, volume_type: 'elsewhere' });
    await waitFor(() => messages('3.5', `?resource_uuid=${b}`), (res) => res.body.messages?.length === 1);
    const unfiltered = await messages('3.3', `?resource_uuid=${a}`);
    assert.equal(unfiltered.status, 200);
    const ids = unfiltered.body.messages.map((m: { resource_uuid: string }) => m.resource_uuid);
    assert.ok(ids.includes(a) && ids.includes(b), 'at 3.3 the filter is ignored');
    const filtered = await messages('3.5', `?resource_uuid=${a}`);
    assert.deepEqual(filtered.body.messages.map((m: { resource_uuid: string }) => m.resource_uuid), [a]);
  });

  it('a message can be deleted', async () => {
    const id = await failedVolume({ size: 1, volume_type: 'elsewhere' });
    const r = await waitFor(() => messages('3.5', `?resource_uuid=${id}`), (res) => res.body.messages?.length === 1);
    const del = await call('DELETE', `${s.volume}/messages/${r.body.messages[0].id}`, { token: s.token, headers: mvh('3.3') });
    assert.equal(del.status, 204);
    assert.equal((await messages('3.5', `?resource_uuid=${id}`)).body.messages.length, 0);
  });
});
