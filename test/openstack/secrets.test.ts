// No error message carries the cloud's password, secrets or token, whatever
// a service (or a proxy, or something posing as Keystone) answers: those
// messages go to logs, Probe's reason and gRPC status details, which the
// sidecars turn into PVC events that namespace users read.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REDACTED, silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import { isOpenStackError } from '../../src/openstack/errors';
import { redactSecrets } from '../../src/openstack/http-errors';
import { tokenRefusalMessage } from '../../src/openstack/keystone';
import { startSimulator, type Simulator } from '../../src/sim';
import { passwordAuthBody } from '../sim/helpers';

const TOKEN_REQUEST = { service: 'identity' as const, method: 'POST', pathPattern: '/auth/tokens$', times: Infinity };

describe('redactSecrets', () => {
  it('replaces each secret as written, JSON-escaped and percent-encoded, and leaves the rest', () => {
    const pw = 'pa"ss w/rd';
    assert.equal(redactSecrets(`a ${pw} b`, [pw]), `a ${REDACTED} b`);
    assert.equal(redactSecrets(`{"password": "pa\\"ss w/rd"}`, [pw]), `{"password": "${REDACTED}"}`);
    assert.equal(redactSecrets('password=pa%22ss%20w%2Frd&x=1', [pw]), `password=${REDACTED}&x=1`);
    assert.equal(redactSecrets('tok tok', ['tok', undefined, '']), `${REDACTED} ${REDACTED}`);
    assert.equal(redactSecrets('nothing to hide', ['secret']), 'nothing to hide');
  });

  it('replaces a secret only where it stands alone: a short or common password leaves IDs and words whole', () => {
    const id = '0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    assert.equal(redactSecrets(`volume ${id} is not secretive; "password": "secret"`, ['secret', 'a', '1']), `volume ${id} is not secretive; "password": "${REDACTED}"`);
    assert.equal(redactSecrets('user=a&password=a', ['a']), `user=${REDACTED}&password=${REDACTED}`);
  });
});

describe("what is shown of a refused token request", () => {
  // As Keystone (Zed testbed) answers them.
  it("Keystone's fixed messages, as they are", () => {
    for (const [status, message] of [
      [401, 'The request you have made requires authentication.'],
      [404, 'Could not find Application Credential: 0123456789abcdef0123456789abcdef.'],
      [404, 'Could not recognize Fernet token'],
      [404, 'Failed to validate token'],
      [401, 'The password is expired and needs to be changed for user: 0123456789abcdef0123456789abcdef.'],
      [400, 'Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.'],
    ] as const) {
      assert.equal(tokenRefusalMessage({ error: { code: status, message, title: 'T' } }, status), message);
    }
  });

  it('anything else only as its title, or the status reason, never its text', () => {
    // Keystone's own schema error quotes the value (a password that is not a string; Zed testbed).
    const quoted = "Invalid input for field 'identity/password/user/password': 12345678 is not of type 'string'";
    assert.equal(tokenRefusalMessage({ error: { code: 400, message: quoted, title: 'Bad Request' } }, 400), "Bad Request (the identity service's own message is not shown: it may quote the credentials)");
    assert.match(tokenRefusalMessage('<html>echo: password=hunter2</html>', 502), /^Bad Gateway \(/);
    assert.match(tokenRefusalMessage({ error: { title: 'hunter2 {"password": "hunter2"}' } }, 401), /^Unauthorized \(/);
    assert.doesNotMatch(tokenRefusalMessage({ error: { message: 'The request you have made requires authentication. hunter2' } }, 401), /hunter2/);
  });
});

describe('error messages from the simulated cloud', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ hypervisor: false });
  });
  after(() => sim.stop());

  it('a Keystone that echoes the token request: no password in the error or in health, the title is', async () => {
    const echoed = JSON.stringify(passwordAuthBody(sim));
    sim.control.addFault({ ...TOKEN_REQUEST, status: 400, body: { error: { code: 400, title: 'Bad Request', message: `Invalid input: ${echoed}` } } });
    const cloud = createCloud(sim.cloudConfig(), silentLogger);
    try {
      await assert.rejects(cloud.blockStorage.listVolumes({}), (e) => {
        assert.ok(isOpenStackError(e, 'config'), String(e));
        assert.match(e.message, /POST \/identity\/v3\/auth\/tokens: 400 Bad Request \(the identity service's own message is not shown/);
        assert.ok(!e.message.includes(sim.credentials.password), e.message);
        assert.ok(!String(e.stack).includes(sim.credentials.password));
        return true;
      });
      assert.ok(!(cloud.health().lastError ?? '').includes(sim.credentials.password));
      assert.match(cloud.health().lastError ?? '', /400 Bad Request/);
    } finally {
      sim.control.clearFaults();
      await cloud.close();
    }
  });

  it('refused credentials: the message names the Keystone and the identity asked for, never the password or the secret', async () => {
    const c = sim.credentials;
    const base = sim.cloudConfig();
    const host = new URL(base.auth.authUrl).host;
    const cases: Array<[Partial<typeof base.auth>, string, string]> = [
      [{ password: 'Wr0ng-PASSWORD' }, 'Wr0ng-PASSWORD', `Keystone at ${host}/identity/v3 refused user '${c.username}' (domain '${c.userDomainName}') with a password, for project`],
      [
        { authPlugin: 'v3applicationcredential', applicationCredentialId: c.applicationCredentialId, applicationCredentialSecret: 'Wr0ng-SECRET', password: undefined },
        'Wr0ng-SECRET',
        `Keystone at ${host}/identity/v3 refused application credential ID ${c.applicationCredentialId}: the application credential has expired, its secret is wrong, or its user is disabled`,
      ],
    ];
    for (const [auth, secret, words] of cases) {
      const cloud = createCloud(sim.cloudConfig({ auth: { ...base.auth, ...auth } }), silentLogger);
      try {
        await assert.rejects(cloud.blockStorage.listVolumes({}), (e) => {
          assert.ok(isOpenStackError(e, 'unauthorized'), String(e));
          assert.ok(e.message.includes(words), e.message);
          assert.ok(!String(e.stack).includes(secret), e.message);
          assert.ok(!e.message.includes(c.password), e.message);
          return true;
        });
        assert.ok((cloud.health().lastError ?? '').includes(words));
        assert.ok(!(cloud.health().lastError ?? '').includes(secret));
      } finally {
        await cloud.close();
      }
    }
  });

  it('a service that echoes the token, the password or a secret: each is redacted', async () => {
    const c = sim.credentials;
    const cloud = createCloud(
      sim.cloudConfig({ auth: { ...sim.cloudConfig().auth, applicationCredentialSecret: c.applicationCredentialSecret, apiKey: c.apiKey } }),
      silentLogger,
    );
    try {
      const { token } = await cloud.internals.identity.auth();
      const echo = `X-Auth-Token: ${token}; password=${encodeURIComponent(c.password)}; secret ${c.applicationCredentialSecret}; key ${c.apiKey}`;
      sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: '/volumes/detail$', status: 400, body: { badRequest: { code: 400, message: echo } } });
      await assert.rejects(cloud.blockStorage.listVolumes({}), (e) => {
        assert.ok(isOpenStackError(e, 'bad_request'), String(e));
        for (const secret of [token, c.password, c.applicationCredentialSecret, c.apiKey]) assert.ok(!String(e.stack).includes(secret), e.message);
        assert.equal(e.message.split(REDACTED).length - 1, 4, e.message);
        assert.equal(e.status, 400);
        return true;
      });
    } finally {
      sim.control.clearFaults();
      await cloud.close();
    }
  });
});
