import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { availableVolume, call, createVolume, login, volumeStatus, waitFor, type HttpResult, type Session } from './helpers';

describe('sim cinder', () => {
  let sim: Simulator;
  let s: Session;
  before(async () => {
    sim = await startSimulator({ hypervisor: false, durations: { create: 20, delete: 20, extend: 60, attach: 20, detach: 20, snapshot: 20, backup: 40, restore: 20, retype: 20 } });
    s = await login(sim);
  });
  after(() => sim.stop());

  const mvh = (mv: string) => ({ 'openstack-api-version': `volume ${mv}` });

  it('version document: 300 with v3 CURRENT and the microversion range', async () => {
    const r = await call('GET', `${sim.url}/volume/`);
    assert.equal(r.status, 300);
    const byId = Object.fromEntries(r.body.versions.map((v: { id: string }) => [v.id, v]));
    assert.equal(byId['v3.0'].status, 'CURRENT');
    assert.equal(byId['v3.0'].version, '3.70');
    assert.equal(byId['v3.0'].min_version, '3.0');
    assert.equal(byId['v2.0'].status, 'SUPPORTED');
    assert.equal(byId['v1.0'].status, 'DEPRECATED');
  });

  it('only the configured versions are offered and routed', async () => {
    const v2only = await startSimulator({ hypervisor: false, cinderVersions: ['v2'] });
    try {
      const r = await call('GET', `${v2only.url}/volume/`);
      assert.deepEqual(r.body.versions.map((v: { id: string; status: string }) => `${v.id}:${v.status}`), ['v2.0:CURRENT']);
      const s2 = await login(v2only);
      assert.ok(s2.catalog.every((e: { type: string }) => e.type !== 'volumev3'));
      assert.equal((await call('GET', `${v2only.url}/volume/v3/${v2only.credentials.projectId}/volumes`, { token: s2.token })).status, 404);
      assert.equal((await call('GET', `${s2.volume}/volumes/detail`, { token: s2.token })).status, 200);
    } finally {
      await v2only.stop();
    }
  });

  it('microversions: echoed, 406 above the maximum, 400 when malformed, 3.0 without a header', async () => {
    const ok = await call('GET', `${s.volume}/types`, { token: s.token, headers: mvh('3.42') });
    assert.equal(ok.headers['openstack-api-version'], 'volume 3.42');
    assert.match(String(ok.headers.vary), /OpenStack-API-Version/);
    const none = await call('GET', `${s.volume}/types`, { token: s.token });
    assert.equal(none.headers['openstack-api-version'], 'volume 3.0');
    const latest = await call('GET', `${s.volume}/types`, { token: s.token, headers: mvh('latest') });
    assert.equal(latest.headers['openstack-api-version'], 'volume 3.70');
    const high = await call('GET', `${s.volume}/types`, { token: s.token, headers: mvh('3.99') });
    assert.equal(high.status, 406);
    assert.equal(high.body.computeFault.code, 406);
    const bad = await call('GET', `${s.volume}/types`, { token: s.token, headers: mvh('three') });
    assert.equal(bad.status, 400);
  });

  it('a project in the URL other than the token\'s is a malformed URL (400)', async () => {
    const r = await call('GET', `${sim.url}/volume/v3/not-mine/volumes`, { token: s.token });
    assert.equal(r.status, 400);
    assert.equal(r.body.badRequest.message, 'Malformed request url');
  });

  it('volume lifecycle: creating -> available, deleting -> 404 with itemNotFound', async () => {
    const r = await createVolume(s, { size: 2, name: 'life', description: 'd', metadata: { k: 'v' } });
    assert.equal(r.status, 202);
    assert.equal(r.body.volume.status, 'creating');
    assert.equal(r.body.volume.volume_type, '__DEFAULT__');
    assert.equal(r.body.volume.availability_zone, 'nova');
    const id = r.body.volume.id;
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    assert.equal((await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token })).status, 202);
    assert.equal(await volumeStatus(s, id), 'deleting');
    await waitFor(() => volumeStatus(s, id), (st) => st === 'gone');
    const gone = await call('GET', `${s.volume}/volumes/${id}`, { token: s.token });
    assert.deepEqual(gone.body, { itemNotFound: { code: 404, message: `Volume ${id} could not be found.` } });
  });

  it('times: the create answer has microseconds; every read after it whole seconds, as the database keeps them', async () => {
    // Seen on the Zed testbed: POST answered '...T13:45:47.078905', the GET after it '...T13:45:47.000000'.
    const r = await createVolume(s, { size: 1, name: 'times' });
    assert.match(r.body.volume.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const id = r.body.volume.id;
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    const got = (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    assert.equal(got.created_at, `${r.body.volume.created_at.slice(0, 19)}.000000`);
    assert.match(got.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$/);
    const listed = (await call('GET', `${s.volume}/volumes/detail?name=times`, { token: s.token })).body.volumes[0];
    assert.equal(listed.created_at, got.created_at);
  });

  it('each change takes its configured duration; setDurations applies to later requests', async () => {
    sim.control.setDurations({ create: 300 });
    try {
      const started = Date.now();
      const id = (await createVolume(s, { size: 1 })).body.volume.id;
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await volumeStatus(s, id), 'creating');
      await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
      assert.ok(Date.now() - started >= 290, `available after ${Date.now() - started} ms`);
    } finally {
      sim.control.setDurations({ create: 20 });
    }
  });

  it('create refuses bad input: size, unknown type, unknown zone', async () => {
    assert.equal((await createVolume(s, { size: 0 })).status, 400);
    assert.equal((await createVolume(s, { size: 'x' })).status, 400);
    assert.equal((await createVolume(s, { size: 1, volume_type: 'nope' })).status, 404);
    const az = await createVolume(s, { size: 1, availability_zone: 'elsewhere' });
    assert.equal(az.status, 400);
    // Cinder's InvalidAvailabilityZone, an Invalid but not an InvalidInput: no 'Invalid input received: ' before it.
    assert.equal(az.body.badRequest.message, "Availability zone 'elsewhere' is invalid.");
  });

  it('lists filter by name, status and metadata, and page with limit, marker and volumes_links', async () => {
    const tag = `page-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createVolume(s, { size: 1, name: `${tag}-${i}`, metadata: { tag, n: String(i % 2) } })).body.volume.id);
    const md = encodeURIComponent(JSON.stringify({ tag }));
    const seen: string[] = [];
    let url: string | undefined = `${s.volume}/volumes/detail?limit=2&metadata=${md}`;
    let pages = 0;
    while (url) {
      const r = await call('GET', url, { token: s.token });
      assert.equal(r.status, 200);
      seen.push(...r.body.volumes.map((v: { id: string }) => v.id));
      const next = r.body.volumes_links?.find((l: { rel: string }) => l.rel === 'next')?.href;
      // Cinder adds the link whenever a page is full; we follow it by its marker.
      url = next ? `${s.volume}/volumes/detail?${new URL(next).searchParams.toString()}` : undefined;
      pages++;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse(), 'newest first, no duplicates, none missing');
    const odd = await call('GET', `${s.volume}/volumes/detail?metadata=${encodeURIComponent(JSON.stringify({ tag, n: '1' }))}`, { token: s.token });
    assert.deepEqual(odd.body.volumes.map((v: { name: string }) => v.name).sort(), [`${tag}-1`, `${tag}-3`]);
    const byName = await call('GET', `${s.volume}/volumes?name=${tag}-2`, { token: s.token });
    assert.deepEqual(byName.body.volumes.map((v: { id: string }) => v.id), [ids[2]]);
    assert.deepEqual(Object.keys(byName.body.volumes[0]).sort(), ['id', 'links', 'name']);
    const asc = await call('GET', `${s.volume}/volumes/detail?metadata=${md}&sort=name:asc&limit=2`, { token: s.token });
    assert.deepEqual(asc.body.volumes.map((v: { name: string }) => v.name), [`${tag}-0`, `${tag}-1`]);
    const badMarker = await call('GET', `${s.volume}/volumes/detail?marker=00000000-0000-0000-0000-000000000000`, { token: s.token });
    assert.equal(badMarker.status, 404);
    const none = await call('GET', `${s.volume}/volumes/detail?status=no-such-status`, { token: s.token });
    assert.deepEqual(none.body, { volumes: [] });
  });

  it('v1 uses display_name and does not page', async () => {
    const v1 = `${sim.url}/volume/v1/${sim.credentials.projectId}`;
    const r = await call('POST', `${v1}/volumes`, { token: s.token, body: { volume: { size: 1, display_name: 'legacy', display_description: 'old' } } });
    assert.equal(r.status, 200);
    assert.equal(r.body.volume.display_name, 'legacy');
    assert.equal(r.body.volume.name, undefined);
    const list = await call('GET', `${v1}/volumes?display_name=legacy&limit=0`, { token: s.token });
    assert.equal(list.body.volumes.length, 1, 'v1 ignores limit');
    assert.equal(list.body.volumes_links, undefined);
  });

  it('extend: in-use needs 3.42; status goes extending and back; size changes at the end', async () => {
    const id = await availableVolume(s, { size: 1, name: 'ext' });
    sim.control.setVolumeStatus(id, 'in-use');
    const old = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, headers: mvh('3.41'), body: { 'os-extend': { new_size: 2 } } });
    assert.equal(old.status, 400);
    assert.match(old.body.badRequest.message, /^Invalid volume: /);
    const smaller = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, headers: mvh('3.42'), body: { 'os-extend': { new_size: 1 } } });
    assert.equal(smaller.status, 400);
    const ok = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, headers: mvh('3.42'), body: { 'os-extend': { new_size: 3 } } });
    assert.equal(ok.status, 202);
    assert.equal(await volumeStatus(s, id), 'extending');
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    assert.equal((await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume.size, 3);
    sim.control.setVolumeStatus(id, 'available');
  });

  it('retype: retyping then the new type; same type is 400; unknown type 404', async () => {
    const id = await availableVolume(s, { size: 1 });
    const act = (new_type: string) => call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-retype': { new_type, migration_policy: 'never' } } });
    assert.equal((await act('__DEFAULT__')).status, 400);
    assert.equal((await act('nope')).status, 404);
    assert.equal((await act('multiattach')).status, 202);
    assert.equal(await volumeStatus(s, id), 'retyping');
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    const v = (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    assert.equal(v.volume_type, 'multiattach');
    assert.equal(v.multiattach, true);
  });

  it('retype to a type no backend serves: 202, then back to its status with its old type and no user message (as Zed does)', async () => {
    const id = await availableVolume(s, { size: 1 });
    const r = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-retype': { new_type: 'no-backend', migration_policy: 'on-demand' } } });
    assert.equal(r.status, 202);
    assert.equal(await volumeStatus(s, id), 'retyping');
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    assert.equal((await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume.volume_type, '__DEFAULT__');
    const messages = await call('GET', `${s.volume}/messages`, { token: s.token, headers: mvh('3.3') });
    assert.ok(!messages.body.messages.some((m: { resource_uuid: string }) => m.resource_uuid === id));
  });

  it('metadata: PUT replaces, POST merges', async () => {
    const id = await availableVolume(s, { size: 1, metadata: { a: '1' } });
    const put = await call('PUT', `${s.volume}/volumes/${id}/metadata`, { token: s.token, body: { metadata: { b: '2' } } });
    assert.deepEqual(put.body, { metadata: { b: '2' } });
    const post = await call('POST', `${s.volume}/volumes/${id}/metadata`, { token: s.token, body: { metadata: { c: '3' } } });
    assert.deepEqual(post.body, { metadata: { b: '2', c: '3' } });
  });

  it('os-update_readonly_flag: only while available; shown in the metadata as True/False, not in GET metadata; schema errors as Cinder words them', async () => {
    const id = await availableVolume(s, { size: 1, metadata: { a: '1' } });
    const flag = (args: unknown, volumeId = id) => call('POST', `${s.volume}/volumes/${volumeId}/action`, { token: s.token, body: { 'os-update_readonly_flag': args } });
    const shown = async () => (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    const before = await shown();
    assert.deepEqual(before.metadata, { a: '1' }, 'no readonly key until the flag is first set');

    const set = await flag({ readonly: true });
    assert.equal(set.status, 202, set.text);
    const after = await shown();
    assert.deepEqual(after.metadata, { a: '1', readonly: 'True' });
    assert.equal(after.updated_at, before.updated_at, 'admin metadata does not touch updated_at');
    assert.deepEqual((await call('GET', `${s.volume}/volumes/${id}/metadata`, { token: s.token })).body, { metadata: { a: '1' } });
    const filtered = await call('GET', `${s.volume}/volumes/detail?metadata=${encodeURIComponent(JSON.stringify({ readonly: 'True' }))}`, { token: s.token });
    assert.deepEqual(filtered.body.volumes.map((v: { id: string }) => v.id), [id]);
    const v1 = await call('GET', `${s.volume.replace('/v3/', '/v1/')}/volumes/${id}`, { token: s.token });
    assert.equal(v1.status, 200, v1.text);
    assert.equal(v1.body.volume.metadata.readonly, 'True');

    assert.equal((await flag({ readonly: 'false' })).status, 202);
    assert.deepEqual((await shown()).metadata, { a: '1', readonly: 'False' });

    const errors: Array<[unknown, string]> = [
      [{}, "Invalid input for field/attribute os-update_readonly_flag. Value: {}. 'readonly' is a required property"],
      [{ readonly: true, extra: 1 }, "Invalid input for field/attribute os-update_readonly_flag. Value: {'readonly': True, 'extra': 1}. Additional properties are not allowed ('extra' was unexpected)"],
      [true, "Invalid input for field/attribute os-update_readonly_flag. Value: True. True is not of type 'object'"],
      [{ readonly: 2 }, "Invalid input for field/attribute readonly. Value: 2. 2 is not of type 'boolean', 'string'"],
      [{ readonly: null }, "Invalid input for field/attribute readonly. Value: None. None is not of type 'boolean', 'string'"],
      [
        { readonly: 'maybe' },
        "Invalid input for field/attribute readonly. Value: maybe. 'maybe' is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']",
      ],
    ];
    for (const [args, message] of errors) {
      const r = await flag(args);
      assert.equal(r.status, 400, JSON.stringify(args));
      assert.equal(r.body.badRequest.message, message);
    }
    // The schema is checked before the volume is looked up.
    assert.equal((await flag({}, '00000000-0000-4000-8000-000000000000')).status, 400);
    const unknown = await flag({ readonly: true }, '00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.itemNotFound.message, 'Volume 00000000-0000-4000-8000-000000000000 could not be found.');

    for (const status of ['in-use', 'reserved', 'extending', 'error']) {
      sim.control.setVolumeStatus(id, status);
      const r = await flag({ readonly: true });
      assert.equal(r.status, 400, status);
      assert.equal(r.body.badRequest.message, `Invalid volume: Volume ${id} status must be available to update readonly flag, but current status is: ${status}.`);
    }
    sim.control.setVolumeStatus(id, 'available');
    assert.deepEqual((await shown()).metadata, { a: '1', readonly: 'False' }, 'a refused update changes nothing');
  });

  it('delete is refused (400) for an in-use volume and for one with snapshots', async () => {
    const id = await availableVolume(s, { size: 1 });
    sim.control.setVolumeStatus(id, 'in-use');
    const inUse = await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token });
    assert.equal(inUse.status, 400);
    assert.match(inUse.body.badRequest.message, /^Invalid volume: Volume status must be available or error/);
    // A snapshot of an in-use volume needs force (before 3.66).
    const noForce = await call('POST', `${s.volume}/snapshots`, { token: s.token, body: { snapshot: { volume_id: id, name: 'x' } } });
    assert.equal(noForce.status, 400);
    const snap = await call('POST', `${s.volume}/snapshots`, { token: s.token, body: { snapshot: { volume_id: id, name: 'snap-a', force: true } } });
    assert.equal(snap.status, 202);
    assert.equal(snap.body.snapshot.status, 'creating');
    const snapId = snap.body.snapshot.id;
    sim.control.setVolumeStatus(id, 'available');
    const withSnap = await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token });
    assert.equal(withSnap.status, 400);
    const snapStatus = async () => (await call('GET', `${s.volume}/snapshots/${snapId}`, { token: s.token })).body?.snapshot?.status ?? 'gone';
    await waitFor(snapStatus, (st) => st === 'available');
    const list = await call('GET', `${s.volume}/snapshots/detail?volume_id=${id}`, { token: s.token });
    assert.deepEqual(list.body.snapshots.map((x: { id: string }) => x.id), [snapId]);
    // A volume from the snapshot: size at least the snapshot's.
    assert.equal((await createVolume(s, { snapshot_id: snapId, size: 0 })).status, 400);
    const fromSnap = await createVolume(s, { snapshot_id: snapId });
    assert.equal(fromSnap.status, 202);
    assert.equal(fromSnap.body.volume.snapshot_id, snapId);
    assert.equal((await call('DELETE', `${s.volume}/snapshots/${snapId}`, { token: s.token })).status, 202);
    await waitFor(snapStatus, (st) => st === 'gone');
    assert.equal((await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token })).status, 202);
  });

  it('backups: create answers the summary, the volume is backing-up meanwhile; restore; backup_id needs 3.47', async () => {
    const id = await availableVolume(s, { size: 1 });
    const b = await call('POST', `${s.volume}/backups`, { token: s.token, body: { backup: { volume_id: id, name: 'bk' } } });
    assert.equal(b.status, 202);
    assert.deepEqual(Object.keys(b.body.backup).sort(), ['id', 'links', 'name']);
    assert.equal(await volumeStatus(s, id), 'backing-up');
    const bStatus = async () => (await call('GET', `${s.volume}/backups/${b.body.backup.id}`, { token: s.token })).body?.backup?.status ?? 'gone';
    await waitFor(bStatus, (st) => st === 'available');
    assert.equal(await volumeStatus(s, id), 'available');
    const old = await createVolume(s, { size: 1, backup_id: b.body.backup.id }, '3.46');
    assert.equal(old.body.volume.status, 'creating');
    await waitFor(() => volumeStatus(s, old.body.volume.id), (st) => st === 'available');
    assert.equal(sim.control.volume(old.body.volume.id) !== undefined, true);
    assert.equal((sim.control.volume(old.body.volume.id) as { backupId: string | null }).backupId, null, 'below 3.47 Cinder ignores backup_id');
    const fromBackup = await createVolume(s, { size: 1, backup_id: b.body.backup.id }, '3.47');
    assert.equal(fromBackup.status, 202);
    assert.equal(await bStatus(), 'restoring');
    await waitFor(() => volumeStatus(s, fromBackup.body.volume.id), (st) => st === 'available');
    const restore = await call('POST', `${s.volume}/backups/${b.body.backup.id}/restore`, { token: s.token, body: { restore: { volume_id: id } } });
    assert.equal(restore.status, 202);
    assert.equal(restore.body.restore.volume_id, id);
    assert.equal(await volumeStatus(s, id), 'restoring-backup');
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    const detail = await call('GET', `${s.volume}/backups/detail?volume_id=${id}`, { token: s.token });
    assert.equal(detail.body.backups.length, 1);
    assert.equal((await call('DELETE', `${s.volume}/backups/${b.body.backup.id}`, { token: s.token })).status, 202);
    await waitFor(bStatus, (st) => st === 'gone');
  });

  it('incremental backups build on the newest backup, which must be available; a backup with incrementals is not deleted', async () => {
    const id = await availableVolume(s, { size: 1 });
    const backup = (incremental: boolean) => call('POST', `${s.volume}/backups`, { token: s.token, body: { backup: { volume_id: id, incremental } } });
    const show = async (backupId: string) => (await call('GET', `${s.volume}/backups/${backupId}`, { token: s.token })).body?.backup;
    const refused = async (r: Promise<HttpResult>, message: string) => {
      const res = await r;
      assert.equal(res.status, 400);
      assert.equal(res.body.badRequest.message, message);
    };
    await refused(backup(true), 'Invalid backup: No backups available to do an incremental backup.');
    const full = (await backup(false)).body.backup.id;
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
    sim.control.setBackupStatus(full, 'creating');
    await refused(backup(true), 'Invalid backup: The parent backup must be available for incremental backup.');
    sim.control.setBackupStatus(full, 'available');
    const incremental = await backup(true);
    assert.equal(incremental.status, 202);
    await waitFor(async () => (await show(incremental.body.backup.id)).status, (st) => st === 'available');
    assert.equal((await show(incremental.body.backup.id)).is_incremental, true);
    assert.deepEqual([(await show(full)).is_incremental, (await show(full)).has_dependent_backups], [false, true]);
    await refused(call('DELETE', `${s.volume}/backups/${full}`, { token: s.token }), 'Invalid backup: Incremental backups exist for this backup.');
    assert.equal((await call('DELETE', `${s.volume}/backups/${incremental.body.backup.id}`, { token: s.token })).status, 202);
    await waitFor(async () => (await show(incremental.body.backup.id))?.status ?? 'gone', (st) => st === 'gone');
    assert.equal((await show(full)).has_dependent_backups, false);
    assert.equal((await call('DELETE', `${s.volume}/backups/${full}`, { token: s.token })).status, 202);
  });

  // Cinder's backup drivers store the volume's metadata, name and description with the data and put them
  // back at the end of a restore (BackupMetadataAPI.put).
  it("a restore replaces the volume's metadata with the backed-up volume's, keeps its own when that had none, and keeps a name it has", async () => {
    const backupOf = async (volumeId: string): Promise<string> => {
      const b = await call('POST', `${s.volume}/backups`, { token: s.token, body: { backup: { volume_id: volumeId } } });
      const get = async () => (await call('GET', `${s.volume}/backups/${b.body.backup.id}`, { token: s.token })).body.backup.status;
      await waitFor(get, (st) => st === 'available');
      return b.body.backup.id;
    };
    const show = async (id: string) => (await call('GET', `${s.volume}/volumes/${id}`, { token: s.token })).body.volume;
    const restored = async (volume: Record<string, unknown>): Promise<any> => {
      const r = await createVolume(s, { size: 1, ...volume }, '3.47');
      await waitFor(() => volumeStatus(s, r.body.volume.id), (st) => st === 'available');
      return show(r.body.volume.id);
    };
    const marked = await backupOf(await availableVolume(s, { size: 1, name: 'backed-up', description: 'its description', metadata: { from: 'backed-up' } }));
    const bare = await backupOf(await availableVolume(s, { size: 1 }));

    const named = await restored({ backup_id: marked, name: 'new', description: 'mine', metadata: { mine: 'yes' } });
    assert.deepEqual(named.metadata, { from: 'backed-up' });
    assert.equal(named.name, 'new');
    assert.equal(named.description, 'mine');
    const unnamed = await restored({ backup_id: marked });
    assert.equal(unnamed.name, 'backed-up');
    assert.equal(unnamed.description, 'its description');
    assert.deepEqual((await restored({ backup_id: bare, name: 'kept', metadata: { mine: 'yes' } })).metadata, { mine: 'yes' });

    // A restore without a target volume makes one called restore_backup_<id>, which takes the backed-up name.
    const r = await call('POST', `${s.volume}/backups/${marked}/restore`, { token: s.token, body: { restore: {} } });
    await waitFor(() => volumeStatus(s, r.body.restore.volume_id), (st) => st === 'available');
    assert.equal((await show(r.body.restore.volume_id)).name, 'backed-up');
  });

  it('types with extra specs and availability zones', async () => {
    const types = await call('GET', `${s.volume}/types`, { token: s.token });
    const multi = types.body.volume_types.find((t: { name: string }) => t.name === 'multiattach');
    assert.deepEqual(multi.extra_specs, { multiattach: '<is> True' });
    // A project member sees only the user-visible extra specs (since Xena), never the backend's name.
    const hidden = types.body.volume_types.find((t: { name: string }) => t.name === 'no-backend');
    assert.deepEqual(hidden.extra_specs, {});
    const one = await call('GET', `${s.volume}/types/${multi.id}`, { token: s.token });
    assert.equal(one.body.volume_type.name, 'multiattach');
    const azs = await call('GET', `${s.volume}/os-availability-zone`, { token: s.token });
    assert.deepEqual(azs.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true } }] });
  });
});

describe('sim cinder quotas', () => {
  let sim: Simulator;
  let s: Session;
  before(async () => {
    sim = await startSimulator({ hypervisor: false, quotas: { volumes: 2, gigabytes: 5, per_volume_gigabytes: 4, gigabytes_multiattach: 1 }, durations: { create: 5, delete: 5 } });
    s = await login(sim);
  });
  after(() => sim.stop());

  it('usage per resource, per type and per volume; 413 overLimit with Retry-After when over', async () => {
    const pid = sim.credentials.projectId;
    await availableVolume(s, { size: 3 });
    const q = await call('GET', `${s.volume}/os-quota-sets/${pid}?usage=true`, { token: s.token });
    assert.equal(q.status, 200);
    const set = q.body.quota_set;
    assert.equal(set.id, pid);
    assert.deepEqual({ limit: set.volumes.limit, in_use: set.volumes.in_use, reserved: set.volumes.reserved }, { limit: 2, in_use: 1, reserved: 0 });
    assert.equal(set.gigabytes.in_use, 3);
    assert.equal(set.gigabytes___DEFAULT__.in_use, 3);
    assert.equal(set.volumes_multiattach.limit, -1);
    assert.equal(set.per_volume_gigabytes.limit, 4);
    assert.equal(set.snapshots_multiattach.in_use, 0);

    const tooBig = await createVolume(s, { size: 5 });
    assert.equal(tooBig.status, 413);
    // As the Zed testbed answers, on a create and on an extend (per_volume_gigabytes 5, size 10).
    assert.equal(tooBig.headers['retry-after'], '0');
    assert.deepEqual(tooBig.body, { overLimit: { code: 413, message: 'VolumeSizeExceedsLimit: Requested volume size 5G is larger than maximum allowed limit 4G.', retryAfter: '0' } });
    const small = await availableVolume(s, { size: 1 });
    const extend = await call('POST', `${s.volume}/volumes/${small}/action`, { token: s.token, body: { 'os-extend': { new_size: 5 } } });
    assert.equal(extend.status, 413);
    assert.equal(extend.headers['retry-after'], '0');
    assert.deepEqual(extend.body, tooBig.body);
    assert.equal((await call('DELETE', `${s.volume}/volumes/${small}`, { token: s.token })).status, 202);
    await waitFor(() => call('GET', `${s.volume}/volumes/${small}`, { token: s.token }), (r) => r.status === 404);
    const gb = await createVolume(s, { size: 3 });
    assert.equal(gb.status, 413);
    assert.equal(gb.headers['retry-after'], '0');
    assert.equal(gb.body.overLimit.message, 'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 3G, quota is 5G and 3G has been consumed.');
    const perType = await createVolume(s, { size: 2, volume_type: 'multiattach' });
    assert.equal(perType.status, 413);
    assert.match(perType.body.overLimit.message, /gigabytes_multiattach quota/);
    await availableVolume(s, { size: 1 });
    const count = await createVolume(s, { size: 1 });
    assert.equal(count.status, 413);
    assert.equal(count.body.overLimit.message, "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.");
    const plain = await call('GET', `${s.volume}/os-quota-sets/${pid}`, { token: s.token });
    assert.equal(plain.body.quota_set.volumes, 2);
  });
});
