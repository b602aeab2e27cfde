import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { availableVolume, call, login, volumeStatus, waitFor, type Session } from './helpers';

describe('sim nova', () => {
  let sim: Simulator;
  let s: Session;
  let server: string;
  before(async () => {
    sim = await startSimulator({ hypervisor: false, maxDiskDevices: 4, durations: { create: 5, attach: 60, detach: 40, delete: 5 }, instances: [{ name: 'node-1' }, { name: 'node-2', availabilityZone: 'zone-b' }], availabilityZones: ['nova', 'zone-b'] });
    s = await login(sim);
    server = sim.instances[0].id;
  });
  after(() => sim.stop());

  const nova = (mv: string) => ({ 'openstack-api-version': `compute ${mv}` });
  const attach = (volumeId: string, mv = '2.1', srv = server) =>
    call('POST', `${s.compute}/servers/${srv}/os-volume_attachments`, { token: s.token, headers: nova(mv), body: { volumeAttachment: { volumeId } } });

  it('GET /servers/{id} with status and zone; 404 itemNotFound for an unknown one', async () => {
    const r = await call('GET', `${s.compute}/servers/${sim.instances[1].id}`, { token: s.token });
    assert.equal(r.status, 200);
    assert.equal(r.body.server.status, 'ACTIVE');
    assert.equal(r.body.server['OS-EXT-AZ:availability_zone'], 'zone-b');
    assert.ok(r.headers['x-compute-request-id']);
    const missing = await call('GET', `${s.compute}/servers/00000000-0000-0000-0000-000000000000`, { token: s.token });
    assert.deepEqual(missing.body, { itemNotFound: { code: 404, message: 'Instance 00000000-0000-0000-0000-000000000000 could not be found.' } });
    const list = await call('GET', `${s.compute}/servers`, { token: s.token });
    assert.equal(list.body.servers.length, 2);
  });

  it('microversion: legacy header honoured and echoed, 406 above the maximum', async () => {
    const r = await call('GET', `${s.compute}/servers`, { token: s.token, headers: { 'x-openstack-nova-api-version': '2.60' } });
    assert.equal(r.headers['openstack-api-version'], 'compute 2.60');
    assert.equal(r.headers['x-openstack-nova-api-version'], '2.60');
    assert.equal((await call('GET', `${s.compute}/servers`, { token: s.token, headers: nova('2.97') })).status, 406);
  });

  it('attach: 200 with the device, reserved -> attaching -> in-use; refused twice; detach 202 -> detaching -> available', async () => {
    const id = await availableVolume(s, { size: 1 });
    const r = await attach(id);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.volumeAttachment, { id, serverId: server, volumeId: id, device: '/dev/vdb' });
    assert.equal(await volumeStatus(s, id), 'reserved');
    const seen = new Set<string>();
    await waitFor(async () => {
      const st = await volumeStatus(s, id);
      seen.add(st);
      return st;
    }, (st) => st === 'in-use');
    assert.ok(seen.has('attaching'), `saw ${[...seen].join(',')}`);
    const vol = (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    assert.equal(vol.attachments.length, 1);
    assert.equal(vol.attachments[0].server_id, server);
    assert.equal(vol.attachments[0].device, '/dev/vdb');

    const again = await attach(id);
    assert.equal(again.status, 400);
    const other = await attach(id, '2.1', sim.instances[1].id);
    assert.equal(other.status, 400, 'an in-use volume that is not multiattach cannot be attached elsewhere');

    const list = await call('GET', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token });
    assert.deepEqual(list.body.volumeAttachments.map((a: { volumeId: string }) => a.volumeId), [id]);
    const one = await call('GET', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token, headers: nova('2.89') });
    assert.equal(one.body.volumeAttachment.id, undefined);
    assert.equal(one.body.volumeAttachment.attachment_id, vol.attachments[0].attachment_id);
    assert.ok(one.body.volumeAttachment.bdm_uuid);

    const del = await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    assert.equal(del.status, 202);
    const detaching = (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    assert.equal(detaching.status, 'detaching');
    // Cinder lists the attachment until Nova deletes it at the end of the detach.
    assert.deepEqual(detaching.attachments.map((a: { server_id: string }) => a.server_id), [server]);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    assert.deepEqual((await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume.attachments, []);
    const gone = await call('GET', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    assert.equal(gone.status, 404);
    assert.equal((await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token })).status, 404);
  });

  it('a multiattach volume needs 2.60 and may attach to two servers', async () => {
    const id = await availableVolume(s, { size: 1, volume_type: 'multiattach' });
    const old = await attach(id, '2.59');
    assert.equal(old.status, 400);
    assert.match(old.body.badRequest.message, /2\.60/);
    assert.equal((await attach(id, '2.60')).status, 200);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    assert.equal((await attach(id, '2.60', sim.instances[1].id)).status, 200);
    await waitFor(async () => (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume.attachments.length, (n) => n === 2);
    await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(async () => (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume, (v) => v.attachments.length === 1 && v.status === 'in-use');
    await call('DELETE', `${s.compute}/servers/${sim.instances[1].id}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
  });

  it("a multiattach volume is 'reserved' while each attach is made, from in-use too; a second one meanwhile gets Cinder's refusal", async () => {
    const id = await availableVolume(s, { size: 1, volume_type: 'multiattach' });
    const other = sim.instances[1].id;
    assert.equal((await attach(id, '2.60')).status, 200);
    assert.equal(await volumeStatus(s, id), 'reserved');
    const meanwhile = await attach(id, '2.60', other);
    assert.equal(meanwhile.status, 400);
    assert.match(
      meanwhile.body.badRequest.message,
      new RegExp(`^Invalid input received: Invalid volume: Volume ${id} status must be available or in-use or downloading to reserve, but the current status is reserved\\. \\(HTTP 400\\) \\(Request-ID: req-[0-9a-f-]{36}\\)$`),
    );
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    assert.equal((await attach(id, '2.60', other)).status, 200);
    assert.equal(await volumeStatus(s, id), 'reserved', 'Cinder reserves an in-use multiattach volume too');
    await waitFor(async () => (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume, (v) => v.attachments.length === 2 && v.status === 'in-use');
    for (const srv of [server, other]) {
      assert.equal((await call('DELETE', `${s.compute}/servers/${srv}/os-volume_attachments/${id}`, { token: s.token })).status, 202);
      await waitFor(() => volumeStatus(s, id), (st) => st !== 'detaching');
    }
    assert.equal(await volumeStatus(s, id), 'available');
  });

  it('detaching while still attaching is refused; over the per-instance limit (the root disk counted) is 403', async () => {
    const ids = [await availableVolume(s, { size: 1 }), await availableVolume(s, { size: 1 }), await availableVolume(s, { size: 1 }), await availableVolume(s, { size: 1 })];
    const devices: string[] = [];
    for (const id of ids.slice(0, 3)) devices.push((await attach(id)).body.volumeAttachment.device);
    assert.deepEqual(devices, ['/dev/vdb', '/dev/vdc', '/dev/vdd']);
    const early = await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${ids[0]}`, { token: s.token });
    assert.equal(early.status, 400);
    const over = await attach(ids[3]);
    assert.equal(over.status, 403);
    assert.match(over.body.forbidden.message, /maximum allowed number of disk devices \(4\)/);
    for (const id of ids.slice(0, 3)) await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    for (const id of ids.slice(0, 3)) await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    for (const id of ids.slice(0, 3)) await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
  });

  it("an attach of a volume already attached gets Nova's text (Zed): the servers mapping it, while under way and once complete", async () => {
    const id = await availableVolume(s, { size: 1 });
    const other = sim.instances[1].id;
    assert.equal((await attach(id)).status, 200);
    for (const srv of [server, other]) {
      const underWay = await attach(id, '2.1', srv);
      assert.equal(underWay.status, 400);
      assert.equal(underWay.body.badRequest.message, `Invalid volume: volume ${id} is already attached to instances: ${server}`);
    }
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    for (const srv of [server, other]) {
      const again = await attach(id, '2.1', srv);
      assert.equal(again.status, 400);
      assert.equal(again.body.badRequest.message, `Invalid volume: volume ${id} is already attached to instances: ${server}`);
    }
    await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
  });

  it('a shelved-offloaded server: attach and detach 409 below 2.20; from 2.20 both work at once, the attachment without a device', async () => {
    const shelved = await sim.control.addInstance({ name: 'node-shelved' });
    const kept = await availableVolume(s, { size: 1 });
    assert.equal((await attach(kept, '2.1', shelved.id)).status, 200);
    await waitFor(() => volumeStatus(s, kept), (st) => st === 'in-use');
    await sim.control.shelveOffloadInstance(shelved.id);
    const srv = await call('GET', `${s.compute}/servers/${shelved.id}`, { token: s.token });
    assert.equal(srv.body.server.status, 'SHELVED_OFFLOADED');
    assert.equal(srv.body.server['OS-EXT-STS:vm_state'], 'shelved_offloaded');
    const id = await availableVolume(s, { size: 1 });
    const detachAt = (vol: string, mv: string) =>
      call('DELETE', `${s.compute}/servers/${shelved.id}/os-volume_attachments/${vol}`, { token: s.token, headers: nova(mv) });
    for (const [what, r] of [['attach_volume', await attach(id, '2.19', shelved.id)], ['detach_volume', await detachAt(id, '2.19')], ['detach_volume', await detachAt(kept, '2.1')]] as const) {
      assert.equal(r.status, 409);
      assert.deepEqual(r.body, { conflictingRequest: { code: 409, message: `Cannot '${what}' instance ${shelved.id} while it is in vm_state shelved_offloaded` } });
    }
    assert.equal((await detachAt(id, '2.20')).status, 404, 'not attached');
    const r = await attach(id, '2.20', shelved.id);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.volumeAttachment, { id, serverId: shelved.id, volumeId: id, device: null });
    // Nova's GET of it leaves the device out (the attach's own answer always has the key).
    const shown = await call('GET', `${s.compute}/servers/${shelved.id}/os-volume_attachments/${id}`, { token: s.token, headers: nova('2.20') });
    assert.deepEqual(shown.body.volumeAttachment, { id, serverId: shelved.id, volumeId: id });
    const vol = (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    assert.equal(vol.status, 'in-use');
    assert.deepEqual(vol.attachments.map((a: { server_id: string; device: string | null }) => [a.server_id, a.device]), [[shelved.id, null]]);
    for (const v of [id, kept]) {
      assert.equal((await detachAt(v, '2.20')).status, 202);
      assert.equal(await volumeStatus(s, v), 'available');
    }
    await sim.control.deleteInstance(shelved.id);
  });

  it('metadata service: meta_data.json per instance; addInstance and deleteInstance', async () => {
    const inst = await sim.control.addInstance({ name: 'node-3', availabilityZone: 'zone-b' });
    const md = await call('GET', `${inst.metadataUrl}/openstack/latest/meta_data.json`);
    assert.equal(md.status, 200);
    assert.equal(md.body.uuid, inst.id);
    assert.equal(md.body.availability_zone, 'zone-b');
    assert.equal(md.body.name, 'node-3');
    assert.equal(md.body.project_id, sim.credentials.projectId);
    const id = await availableVolume(s, { size: 1 });
    await attach(id, '2.1', inst.id);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    await sim.control.deleteInstance(inst.id);
    assert.equal(await volumeStatus(s, id), 'available');
    assert.equal((await call('GET', `${s.compute}/servers/${inst.id}`, { token: s.token })).status, 404);
    assert.equal((await call('GET', `${inst.metadataUrl}/openstack/latest/meta_data.json`)).status, 404);
    assert.ok(!sim.instances.some((i) => i.id === inst.id));
  });
});
