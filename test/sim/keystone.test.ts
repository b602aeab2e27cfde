import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { call, login, passwordAuthBody } from './helpers';

describe('sim keystone', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ hypervisor: false });
  });
  after(() => sim.stop());

  const v3 = (identity: unknown, scope?: unknown) => call('POST', `${sim.authUrl}/auth/tokens`, { body: { auth: scope ? { identity, scope } : { identity } } });

  it('v3 password by name and domain issues a scoped token with the v3 catalog', async () => {
    const r = await call('POST', `${sim.authUrl}/auth/tokens`, { body: passwordAuthBody(sim) });
    assert.equal(r.status, 201);
    assert.match(String(r.headers['x-subject-token']), /^gAAAAA/);
    const t = r.body.token;
    assert.equal(t.project.id, sim.credentials.projectId);
    assert.match(t.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const types = t.catalog.map((s: { type: string }) => s.type).sort();
    assert.deepEqual(types, ['block-storage', 'compute', 'identity', 'volume', 'volumev2', 'volumev3']);
    const ep = t.catalog.find((s: { type: string }) => s.type === 'volumev3').endpoints;
    assert.deepEqual(ep.map((e: { interface: string }) => e.interface).sort(), ['admin', 'internal', 'public']);
    assert.equal(ep[0].region_id, 'RegionOne');
    assert.equal(ep[0].url, `${sim.url}/volume/v3/${sim.credentials.projectId}`);
  });

  it('a cloud of several regions lists every endpoint once per region, with region and region_id (v3) or region (v2.0)', async () => {
    const multi = await startSimulator({ hypervisor: false, regions: ['RegionOne', 'RegionTwo'] });
    try {
      const t = (await call('POST', `${multi.authUrl}/auth/tokens`, { body: passwordAuthBody(multi) })).body.token;
      const ep = t.catalog.find((s: { type: string }) => s.type === 'compute').endpoints as Array<{ id: string; interface: string; region: string; region_id: string }>;
      assert.deepEqual(ep.map((e) => `${e.region_id}/${e.interface}`).sort(), ['RegionOne/admin', 'RegionOne/internal', 'RegionOne/public', 'RegionTwo/admin', 'RegionTwo/internal', 'RegionTwo/public']);
      assert.ok(ep.every((e) => e.region === e.region_id));
      assert.equal(new Set(ep.map((e) => e.id)).size, ep.length, 'endpoint IDs are unique');
      assert.equal(multi.cloudConfig().region, 'RegionOne');
      const c = multi.credentials;
      const v2 = await call('POST', `${multi.url}/identity/v2.0/tokens`, { body: { auth: { passwordCredentials: { username: c.username, password: c.password }, tenantName: c.projectName } } });
      const v2ep = v2.body.access.serviceCatalog.find((s: { type: string }) => s.type === 'compute').endpoints as Array<{ region: string }>;
      assert.deepEqual(v2ep.map((e) => e.region), ['RegionOne', 'RegionTwo']);
    } finally {
      await multi.stop();
    }
  });

  it('v3 password by user ID and project ID', async () => {
    const c = sim.credentials;
    const r = await v3({ methods: ['password'], password: { user: { id: c.userId, password: c.password } } }, { project: { id: c.projectId } });
    assert.equal(r.status, 201);
  });

  it('v3 application credential by ID, and by name with the user', async () => {
    const c = sim.credentials;
    const byId = await v3({ methods: ['application_credential'], application_credential: { id: c.applicationCredentialId, secret: c.applicationCredentialSecret } });
    assert.equal(byId.status, 201);
    assert.equal(byId.body.token.application_credential.id, c.applicationCredentialId);
    const byName = await v3({
      methods: ['application_credential'],
      application_credential: { name: c.applicationCredentialName, secret: c.applicationCredentialSecret, user: { name: c.username, domain: { id: 'default' } } },
    });
    assert.equal(byName.status, 201);
    const wrong = await v3({ methods: ['application_credential'], application_credential: { id: c.applicationCredentialId, secret: 'nope' } });
    assert.equal(wrong.status, 401);
  });

  // Real Keystone (Zed) looks an application credential up by its ID first: an unknown one is 404, not 401.
  it('v3 application credential: an unknown ID is 404 Not Found; once deleted, its tokens are revoked, by ID 404 and by name 401', async () => {
    const own = await startSimulator({ hypervisor: false });
    try {
      const c = own.credentials;
      const byId = () =>
        call('POST', `${own.authUrl}/auth/tokens`, {
          body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: c.applicationCredentialId, secret: c.applicationCredentialSecret } } } },
        });
      const unknown = await call('POST', `${own.authUrl}/auth/tokens`, {
        body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: 'f'.repeat(32), secret: c.applicationCredentialSecret } } } },
      });
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.body, { error: { code: 404, message: `Could not find Application Credential: ${'f'.repeat(32)}.`, title: 'Not Found' } });
      const made = await byId();
      assert.equal(made.status, 201);
      const s = await login(own);
      own.control.deleteApplicationCredential();
      assert.equal((await call('GET', `${s.volume}/types`, { token: String(made.headers['x-subject-token']) })).status, 401, 'its tokens are revoked');
      assert.equal((await call('GET', `${s.volume}/types`, { token: s.token })).status, 200, 'a password token lives on');
      const deleted = await byId();
      assert.equal(deleted.status, 404);
      assert.equal(deleted.body.error.message, `Could not find Application Credential: ${c.applicationCredentialId}.`);
      const byName = await call('POST', `${own.authUrl}/auth/tokens`, {
        body: {
          auth: {
            identity: {
              methods: ['application_credential'],
              application_credential: { name: c.applicationCredentialName, secret: c.applicationCredentialSecret, user: { name: c.username, domain: { id: 'default' } } },
            },
          },
        },
      });
      assert.equal(byName.status, 401);
    } finally {
      await own.stop();
    }
  });

  it('v3 token method exchanges a valid token; one it cannot validate is 404 Not Found (not 401), as on real Keystone', async () => {
    const s = await login(sim);
    const ok = await v3({ methods: ['token'], token: { id: s.token } }, { project: { id: sim.credentials.projectId } });
    assert.equal(ok.status, 201);
    const bad = await v3({ methods: ['token'], token: { id: 'gAAAAAunknown' } });
    assert.equal(bad.status, 404);
    assert.deepEqual(bad.body, { error: { code: 404, message: 'Could not recognize Fernet token', title: 'Not Found' } });
  });

  it('v3 token method on an expired or revoked token: 404 "Failed to validate token"', async () => {
    const own = await startSimulator({ hypervisor: false });
    try {
      const s = await login(own);
      own.control.expireTokens();
      const dead = await call('POST', `${own.authUrl}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: s.token } } } } });
      assert.equal(dead.status, 404);
      assert.deepEqual(dead.body, { error: { code: 404, message: 'Failed to validate token', title: 'Not Found' } });
    } finally {
      await own.stop();
    }
  });

  it('401 with Keystone error body for a wrong password or a foreign project', async () => {
    const c = sim.credentials;
    const r = await v3({ methods: ['password'], password: { user: { name: c.username, domain: { name: 'Default' }, password: 'wrong' } } });
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } });
    const p = await v3({ methods: ['password'], password: { user: { id: c.userId, password: c.password } } }, { project: { id: 'someone-else' } });
    assert.equal(p.status, 401);
  });

  it('GET /v3/auth/tokens validates a subject token (404 for an unknown one)', async () => {
    const s = await login(sim);
    const ok = await call('GET', `${sim.authUrl}/auth/tokens`, { token: s.token, headers: { 'x-subject-token': s.token } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.token.project.id, sim.credentials.projectId);
    const missing = await call('GET', `${sim.authUrl}/auth/tokens`, { token: s.token, headers: { 'x-subject-token': 'gAAAAAnope' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.title, 'Not Found');
  });

  it('v2.0 password and RAX-KSKEY api key, with the v2 catalog shape', async () => {
    const c = sim.credentials;
    const v2 = `${sim.url}/identity/v2.0/tokens`;
    const pw = await call('POST', v2, { body: { auth: { passwordCredentials: { username: c.username, password: c.password }, tenantName: c.projectName } } });
    assert.equal(pw.status, 200);
    const access = pw.body.access;
    assert.equal(access.token.tenant.id, c.projectId);
    assert.match(access.token.expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const vol = access.serviceCatalog.find((s: { type: string }) => s.type === 'volumev3');
    assert.equal(vol.endpoints[0].region, 'RegionOne');
    assert.equal(vol.endpoints[0].publicURL, `${sim.url}/volume/v3/${c.projectId}`);
    assert.ok(vol.endpoints[0].internalURL && vol.endpoints[0].adminURL);
    const rax = await call('POST', v2, { body: { auth: { 'RAX-KSKEY:apiKeyCredentials': { username: c.username, apiKey: c.apiKey } } } });
    assert.equal(rax.status, 200);
    const token = rax.body.access.token.id;
    const types = await call('GET', `${vol.endpoints[0].publicURL}/types`, { token });
    assert.equal(types.status, 200);
    const badKey = await call('POST', v2, { body: { auth: { 'RAX-KSKEY:apiKeyCredentials': { username: c.username, apiKey: 'nope' } } } });
    assert.equal(badKey.status, 401);
    assert.equal(badKey.body.error.code, 401);
  });

  it('version document at /identity/ answers 300', async () => {
    const r = await call('GET', `${sim.url}/identity/`);
    assert.equal(r.status, 300);
    assert.deepEqual(r.body.versions.values.map((v: { id: string }) => v.id), ['v3.14', 'v2.0']);
    assert.equal(r.headers.location, `${sim.url}/identity/v3/`);
  });

  it('expireTokens makes every service answer 401 until the client authenticates again; auths are counted', async () => {
    sim.control.resetCounters();
    const s = await login(sim);
    assert.equal((await call('GET', `${s.volume}/types`, { token: s.token })).status, 200);
    sim.control.expireTokens();
    const vol = await call('GET', `${s.volume}/types`, { token: s.token });
    assert.equal(vol.status, 401);
    // keystonemiddleware answers for Cinder and Nova, in Keystone's error shape.
    assert.deepEqual(vol.body, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    assert.match(String(vol.headers['www-authenticate']), /^Keystone uri=/);
    assert.equal((await call('GET', `${s.compute}/servers`, { token: s.token })).status, 401);
    const again = await login(sim);
    assert.equal((await call('GET', `${again.volume}/types`, { token: again.token })).status, 200);
    assert.equal(sim.control.counters()['identity.auth'], 2);
  });

  it('tokens expire after their lifetime', async () => {
    const short = await startSimulator({ hypervisor: false, tokenLifetimeSeconds: 1 });
    try {
      const s = await login(short);
      assert.equal((await call('GET', `${s.volume}/types`, { token: s.token })).status, 200);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await call('GET', `${s.volume}/types`, { token: s.token })).status, 401);
    } finally {
      await short.stop();
    }
  });
});
