// Regression tests for the differences conformance.cloud.ts found between the
// simulator and a real OpenStack (Zed): each asserts what the real cloud does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { availableVolume, call, login, passwordAuthBody, volumeStatus, waitFor, type Session } from './helpers';
import { compare, isSubsequence, shapeOf, type Observation } from './conformance';

describe('sim conformance fixes (found against a real cloud)', () => {
  let sim: Simulator;
  let s: Session;
  before(async () => {
    sim = await startSimulator({ hypervisor: false, durations: { create: 5, delete: 5, attach: 20, detach: 5, extend: 5, snapshot: 5 } });
    s = await login(sim);
  });
  after(() => sim.stop());

  const volRoot = (): string => s.volume.replace(/\/v3\/[^/]+$/, '');
  const mv = (v: string) => ({ 'openstack-api-version': `volume ${v}` });
  const nova = (v: string) => ({ 'openstack-api-version': `compute ${v}` });

  it('Keystone: a 401 carries WWW-Authenticate', async () => {
    const body = passwordAuthBody(sim) as { auth: { identity: { password: { user: { password: string } } } } };
    body.auth.identity.password.user.password = 'wrong';
    const r = await call('POST', `${sim.authUrl}/auth/tokens`, { body });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], `Keystone uri="${sim.url}/identity/v3"`);
  });

  it("Cinder and Nova 401s are keystonemiddleware's: {error: {code, title, message}}, Cinder without X-Compute-Request-Id", async () => {
    const v = await call('GET', `${s.volume}/volumes`);
    assert.deepEqual(v.body, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    assert.ok(v.headers['x-openstack-request-id']);
    assert.equal(v.headers['x-compute-request-id'], undefined);
    const n = await call('GET', `${s.compute}/servers`, { token: 'gAAAAAnope' });
    assert.equal(n.status, 401);
    assert.equal(n.body.error.title, 'Unauthorized');
  });

  it('Cinder root: no request ID, echoes volume 3.0; /v3/ needs a token', async () => {
    const root = await call('GET', `${volRoot()}/`);
    assert.equal(root.status, 300);
    assert.equal(root.headers['x-openstack-request-id'], undefined);
    assert.equal(root.headers['openstack-api-version'], 'volume 3.0');
    assert.equal((await call('GET', `${volRoot()}/v3/`)).status, 401);
    const v3 = await call('GET', `${volRoot()}/v3/`, { token: s.token });
    assert.equal(v3.status, 200);
    assert.equal(v3.body.versions[0].id, 'v3.0');
    assert.equal(v3.headers['openstack-api-version'], 'volume 3.0');
  });

  it('Nova root: no request ID', async () => {
    const root = await call('GET', s.compute.replace(/\/v2\.1$/, '/'));
    assert.equal(root.status, 200);
    assert.equal(root.headers['x-openstack-request-id'], undefined);
    assert.equal(root.headers['x-compute-request-id'], undefined);
  });

  // Seen on the Zed testbed: an unknown URL is never {"itemNotFound": ...}, which clients read as a missing object.
  it("a URL no route serves: webob's 404 by Accept (JSON, HTML, text), after the token check under Cinder's /v3/ and Nova's /v2.1/", async () => {
    const WEBOB_JSON = { message: 'The resource could not be found.<br /><br />\n\n\n', code: '404 Not Found', title: 'Not Found' };
    const cinder = await call('GET', `${s.volume}/volumez/x`, { token: s.token });
    assert.equal(cinder.status, 404);
    assert.deepEqual(cinder.body, WEBOB_JSON);
    assert.ok(cinder.headers['x-openstack-request-id']);
    assert.equal(cinder.headers['x-compute-request-id'], undefined);
    const html = await call('GET', `${s.volume}/volumez/x`, { token: s.token, headers: { accept: '*/*' } });
    assert.equal(html.headers['content-type'], 'text/html; charset=UTF-8');
    assert.match(html.text, /<title>404 Not Found<\/title>[\s\S]*The resource could not be found\./);
    const text = await call('GET', `${s.volume}/volumez/x`, { token: s.token, headers: { accept: 'text/plain' } });
    assert.equal(text.text, '404 Not Found\n\nThe resource could not be found.\n\n   ');
    assert.equal((await call('GET', `${s.volume}/volumez/x`)).status, 401);
    const novaNoRoute = await call('GET', `${s.compute}/serverz/x`, { token: s.token });
    assert.deepEqual(novaNoRoute.body, WEBOB_JSON);
    assert.ok(novaNoRoute.headers['x-compute-request-id']);
  });

  it('an API version Cinder does not serve: the bare webob 404, without request IDs or a token check', async () => {
    const v3only = await startSimulator({ hypervisor: false, cinderVersions: ['v3'] });
    try {
      const r = await call('GET', `${v3only.url}/volume/v2/${v3only.credentials.projectId}/volumes/x`);
      assert.equal(r.status, 404);
      assert.equal(r.body.code, '404 Not Found');
      assert.equal(r.headers['x-openstack-request-id'], undefined);
    } finally {
      await v3only.stop();
    }
  });

  it("Keystone: a URL no route serves is Flask's HTML 404, whatever the client accepts", async () => {
    const r = await call('GET', `${sim.authUrl}/no-such-route`);
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(r.text, /^<!doctype html>[\s\S]*The requested URL was not found on the server\./);
  });

  it("a route newer than the request's microversion: itemNotFound with webob's message (VersionNotFoundForAPIMethod)", async () => {
    const r = await call('GET', `${s.volume}/messages`, { token: s.token, headers: mv('3.0') });
    assert.deepEqual(r.body, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  });

  it('Cinder answers carry X-Compute-Request-Id too, except its bare DELETE responses', async () => {
    const list = await call('GET', `${s.volume}/volumes`, { token: s.token });
    assert.equal(list.headers['x-compute-request-id'], list.headers['x-openstack-request-id']);
    const id = await availableVolume(s, { size: 1 });
    const del = await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token });
    assert.equal(del.status, 202);
    assert.ok(del.headers['x-openstack-request-id']);
    assert.equal(del.headers['x-compute-request-id'], undefined);
  });

  it('406 echoes the version asked for (Cinder not for the bare 1.0 and 2.0); a malformed body is answered after negotiation', async () => {
    const high = await call('GET', `${s.volume}/volumes`, { token: s.token, headers: mv('3.999') });
    assert.equal(high.status, 406);
    assert.equal(high.headers['openstack-api-version'], 'volume 3.999');
    const two = await call('GET', `${s.volume}/volumes`, { token: s.token, headers: mv('2.0') });
    assert.equal(two.status, 406);
    assert.equal(two.headers['openstack-api-version'], undefined);
    assert.equal((await call('GET', `${s.volume}/volumes`, { token: s.token, headers: mv('2.5') })).headers['openstack-api-version'], 'volume 2.5');
    const n = await call('GET', `${s.compute}/servers`, { token: s.token, headers: nova('2.999') });
    assert.equal(n.status, 406);
    assert.equal(n.headers['openstack-api-version'], 'compute 2.999');
    assert.equal(n.headers['x-openstack-nova-api-version'], '2.999');
    const { request } = await import('undici');
    const bad = await request(`${s.volume}/volumes`, { method: 'POST', headers: { 'x-auth-token': s.token, 'content-type': 'application/json', ...mv('3.40') }, body: '{"volume": ' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers['openstack-api-version'], 'volume 3.40');
    assert.deepEqual(await bad.body.json(), { badRequest: { code: 400, message: 'Malformed request body' } });
  });

  it('volumes: name and description null when not given; create answers without os-vol-tenant-attr; service_uuid set once scheduled; host_name null', async () => {
    const r = await call('POST', `${s.volume}/volumes`, { token: s.token, headers: mv('3.48'), body: { volume: { size: 1 } } });
    assert.equal(r.status, 202);
    assert.equal(r.body.volume.name, null);
    assert.equal(r.body.volume.description, null);
    assert.ok(!('os-vol-tenant-attr:tenant_id' in r.body.volume));
    assert.equal(r.body.volume.service_uuid, null);
    const id = r.body.volume.id as string;
    await waitFor(() => volumeStatus(s, id), (x) => x === 'available');
    const got = await call('GET', `${s.volume}/volumes/${id}`, { token: s.token, headers: mv('3.48') });
    assert.equal(typeof got.body.volume['os-vol-tenant-attr:tenant_id'], 'string');
    assert.equal(typeof got.body.volume.service_uuid, 'string');
    const server = sim.instances[0].id;
    const att = await call('POST', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
    assert.equal(att.status, 200);
    await waitFor(() => volumeStatus(s, id), (x) => x === 'in-use');
    const inUse = await call('GET', `${s.volume}/volumes/${id}`, { token: s.token });
    assert.equal(inUse.body.volume.attachments[0].host_name, null);
    assert.equal(inUse.body.volume.attachments[0].server_id, server);
    // Sorting by name copes with the null names.
    assert.equal((await call('GET', `${s.volume}/volumes?sort=name:asc`, { token: s.token })).status, 200);
    await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(() => volumeStatus(s, id), (x) => x === 'available');
    await call('DELETE', `${s.volume}/volumes/${id}`, { token: s.token });
  });

  it('snapshots: the create answer has no os-extended-snapshot-attributes, show has them; description null', async () => {
    const id = await availableVolume(s, { size: 1 });
    const r = await call('POST', `${s.volume}/snapshots`, { token: s.token, body: { snapshot: { volume_id: id } } });
    assert.equal(r.status, 202);
    assert.ok(!('os-extended-snapshot-attributes:progress' in r.body.snapshot));
    assert.equal(r.body.snapshot.description, null);
    const got = await call('GET', `${s.volume}/snapshots/${r.body.snapshot.id}`, { token: s.token });
    assert.equal(typeof got.body.snapshot['os-extended-snapshot-attributes:progress'], 'string');
    assert.equal(typeof got.body.snapshot['os-extended-snapshot-attributes:project_id'], 'string');
  });

  it("quota usage has limit, in_use and reserved only; types show no admin-only qos_specs_id", async () => {
    const q = await call('GET', `${s.volume}/os-quota-sets/${sim.credentials.projectId}?usage=true`, { token: s.token });
    assert.deepEqual(Object.keys(q.body.quota_set.volumes).sort(), ['in_use', 'limit', 'reserved']);
    const t = await call('GET', `${s.volume}/types`, { token: s.token });
    assert.ok(t.body.volume_types.every((x: Record<string, unknown>) => !('qos_specs_id' in x)));
  });

  it("error messages as Cinder and Nova word them", async () => {
    const noSize = await call('POST', `${s.volume}/volumes`, { token: s.token, body: { volume: { name: 'x' } } });
    assert.deepEqual(noSize.body, { badRequest: { code: 400, message: 'The server could not comply with the request since it is either malformed or otherwise incorrect.' } });
    const id = await availableVolume(s, { size: 1 });
    const action = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-nope': {} } });
    assert.equal(action.body.badRequest.message, 'There is no such action: os-nope. Verify the request body and Content-Type header and try again.');
    const same = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-retype': { new_type: '__DEFAULT__' } } });
    assert.match(same.body.badRequest.message, /^Invalid volume: Retype needs volume to be in available or in-use state/);
    const server = sim.instances[0].id;
    const unknown = await call('GET', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    assert.equal(unknown.body.itemNotFound.message, `Instance ${server} is not attached to volume ${id}`);
    await call('POST', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
    await waitFor(() => volumeStatus(s, id), (x) => x === 'in-use');
    const again = await call('POST', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
    assert.equal(again.body.badRequest.message, `Invalid volume: volume ${id} is already attached to instances: ${server}`);
    const ext = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-extend': { new_size: 2 } } });
    assert.equal(ext.body.badRequest.message, `Invalid volume: Volume ${id} status must be '{'status': 'available'}' to extend, currently in-use.`);
    await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(() => volumeStatus(s, id), (x) => x === 'available');
  });

  it('Nova server view follows the microversion (2.3, 2.9, 2.19, 2.26, 2.47, 2.63, 2.71, 2.73, 2.90)', async () => {
    const server = sim.instances[0].id;
    const id = await availableVolume(s, { size: 1 });
    await call('POST', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
    await waitFor(() => volumeStatus(s, id), (x) => x === 'in-use');
    const old = (await call('GET', `${s.compute}/servers/${server}`, { token: s.token })).body.server;
    assert.deepEqual(old['os-extended-volumes:volumes_attached'], [{ id }]);
    assert.deepEqual(Object.keys(old.flavor).sort(), ['id', 'links']);
    for (const k of ['locked', 'description', 'tags', 'trusted_image_certificates', 'server_groups', 'locked_reason', 'OS-EXT-SRV-ATTR:hostname']) assert.ok(!(k in old), k);
    const v93 = (await call('GET', `${s.compute}/servers/${server}`, { token: s.token, headers: nova('2.93') })).body.server;
    assert.deepEqual(v93['os-extended-volumes:volumes_attached'], [{ id, delete_on_termination: false }]);
    assert.deepEqual(Object.keys(v93.flavor).sort(), ['disk', 'ephemeral', 'extra_specs', 'original_name', 'ram', 'swap', 'vcpus']);
    assert.equal(v93.locked, false);
    assert.equal(v93.locked_reason, null);
    assert.equal(v93.description, null);
    assert.deepEqual(v93.tags, []);
    assert.equal(v93.trusted_image_certificates, null);
    assert.deepEqual(v93.server_groups, []);
    assert.equal(v93['OS-EXT-SRV-ATTR:hostname'], sim.instances[0].name);
    await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token });
    await waitFor(() => volumeStatus(s, id), (x) => x === 'available');
  });
});

describe('conformance comparison', () => {
  const obs = (step: string, body: unknown, facts: Record<string, unknown> = {}, status = 200): Observation => ({ step, status, headers: {}, ...shapeOf(body), facts });

  it('reports key, type, status and fact differences, and not what is tolerated', () => {
    const a = obs('x', { v: { id: 'a', n: 1, md: null, metadata: { k: 'v' } } }, { seq: ['creating', 'available'] });
    const b = obs('x', { v: { id: 'b', n: '1', extra: true, metadata: {} } }, { seq: ['creating', 'error'] }, 202);
    const d = compare(a, b, []);
    assert.ok(d.some((x) => x.startsWith('status:')));
    assert.ok(d.some((x) => x.startsWith('v.n:')));
    assert.ok(d.some((x) => x.startsWith('v.md:')));
    assert.ok(d.some((x) => x.startsWith('v.extra:')));
    assert.ok(d.some((x) => x.startsWith('fact:seq:')));
    assert.ok(!d.some((x) => x.startsWith('v.id') || x.startsWith('v.metadata')), 'values and metadata contents are not compared');
    assert.deepEqual(compare(a, b, [{ step: /^x$/, path: /./, why: 'test' }]), []);
  });

  it('an empty list on one side hides nothing but its elements', () => {
    assert.deepEqual(compare(obs('x', { l: [] }), obs('x', { l: [{ a: 1 }] }), []), []);
    assert.equal(compare(obs('x', { l: [{ a: 1 }] }), obs('x', { l: [{ a: 's' }] }), []).length, 1);
  });

  it('a real state sequence may skip middle states of the sim, not ends or order', () => {
    assert.ok(isSubsequence(['reserved', 'in-use'], ['reserved', 'attaching', 'in-use']));
    assert.ok(!isSubsequence(['reserved', 'available'], ['reserved', 'attaching', 'in-use']));
    assert.ok(!isSubsequence(['attaching', 'reserved', 'in-use'], ['reserved', 'attaching', 'in-use']));
  });
});
