// The shared Keystone token: when it is refreshed, what a refresh that fails
// does to the calls the current token still serves, and how its lifetime is
// read when the local clock and Keystone's disagree. Keystone is a fake here
// (the clock is mocked, so Keystone's Date header and issued_at are whatever
// the test says).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError, OpenStackError } from '../../src/openstack/errors';
import type { HttpClient, HttpRequest, HttpResponse } from '../../src/openstack/http';
import { errorFromResponse } from '../../src/openstack/http-errors';
import { Identity, KEEP_USING_MS, localExpiry, REFRESH_RETRY_MS } from '../../src/openstack/keystone';
import type { CloudConfig, CloudCredentials } from '../../src/openstack/types';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;

const config: CloudConfig = {
  name: 'fake',
  auth: { authUrl: 'http://keystone.invalid/v3', authPlugin: 'password', username: 'u', password: 'p', projectId: 'p1', identityApiVersion: '3' },
  interface: 'public',
  tls: { verify: true },
  blockStorageApiVersion: 'auto',
  requestTimeoutMs: 1_000,
};

/** A catalog with Cinder and Nova in RegionOne, on every interface. */
const CATALOG = ['volumev3', 'compute'].map((type) => ({
  type,
  endpoints: ['public', 'internal', 'admin'].map((iface) => ({ interface: iface, region_id: 'RegionOne', url: `http://${type}.invalid/` })),
}));

/**
 * A Keystone issuing tokens of `lifetimeMs` on a clock `skewMs` ahead of the
 * local one; `down` makes it answer 503. Its answers carry a Date header and
 * the token's issued_at unless told otherwise (Keystone under uwsgi sends no
 * Date with a token).
 */
function fakeKeystone(lifetimeMs: number, skewMs = 0, says: { date?: boolean; issuedAt?: boolean } = {}) {
  const k = {
    catalog: CATALOG as unknown[],
    down: false,
    issued: 0,
    asked: 0,
    async request<T>(_req: HttpRequest): Promise<HttpResponse<T>> {
      k.asked++;
      if (k.down) throw new OpenStackError('unavailable', 'POST /v3/auth/tokens: 503 Service Unavailable', { status: 503 });
      const now = Date.now() + skewMs;
      k.issued++;
      // Keystone's times are whole seconds.
      const issuedAt = Math.floor(now / 1000) * 1000;
      const token = { expires_at: new Date(issuedAt + lifetimeMs).toISOString(), project: { id: 'p1' }, catalog: k.catalog };
      const body = { token: says.issuedAt === false ? token : { ...token, issued_at: new Date(issuedAt).toISOString() } };
      const headers: Record<string, string> = { 'x-subject-token': `token-${k.issued}` };
      if (says.date !== false) headers.date = new Date(now).toUTCString();
      return { status: 201, headers, body: body as T };
    },
  };
  return k;
}

function identityWith(t: TestContext, keystone: ReturnType<typeof fakeKeystone>): Identity {
  t.mock.timers.enable({ apis: ['Date'], now: T0 });
  return new Identity(config, keystone as unknown as HttpClient, silentLogger);
}

/** Until the refresh under way has settled (a failing one spends a few seconds in retries). */
async function settled(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), 'the refresh did not settle');
}

describe('keystone token refresh', () => {
  it('in the refresh window, a Keystone that is down does not fail calls the current token still serves', async (t) => {
    const keystone = fakeKeystone(HOUR);
    const id = identityWith(t, keystone);
    assert.equal((await id.auth()).token, 'token-1');
    // Four minutes left: inside the five-minute refresh window.
    t.mock.timers.setTime(T0 + HOUR - 4 * 60_000);
    keystone.down = true;
    assert.equal((await id.auth()).token, 'token-1');
    await settled(() => id.health().lastError !== undefined);
    const h = id.health();
    assert.equal(h.ready, true, 'the current token is still good');
    assert.match(h.lastError ?? '', /503/, 'health says the refresh failed');
    assert.equal((await id.auth()).token, 'token-1');
  });

  it(`after a failed refresh, calls in the next ${REFRESH_RETRY_MS / 1000} s start no other one (an outage is not hammered)`, async (t) => {
    const keystone = fakeKeystone(HOUR);
    const id = identityWith(t, keystone);
    await id.auth();
    t.mock.timers.setTime(T0 + HOUR - 4 * 60_000);
    keystone.down = true;
    await id.auth();
    await settled(() => id.health().lastError !== undefined);
    const askedByOneRefresh = keystone.asked - 1;
    for (let i = 0; i < 20; i++) assert.equal((await id.auth()).token, 'token-1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(keystone.asked - 1, askedByOneRefresh, 'no refresh started within the pause');
    keystone.down = false;
    t.mock.timers.setTime(T0 + HOUR - 4 * 60_000 + REFRESH_RETRY_MS);
    assert.equal((await id.auth()).token, 'token-1');
    await settled(() => id.authentications === 2);
    assert.equal((await id.auth()).token, 'token-2');
  });

  it('in the refresh window, calls go on with the current token while the new one is fetched', async (t) => {
    const keystone = fakeKeystone(HOUR);
    const id = identityWith(t, keystone);
    await id.auth();
    t.mock.timers.setTime(T0 + HOUR - 4 * 60_000);
    assert.equal((await id.auth()).token, 'token-1');
    await settled(() => id.authentications === 2);
    assert.equal((await id.auth()).token, 'token-2');
  });

  it(`with ${KEEP_USING_MS / 1000} s or less left, calls wait for the new token, and fail if Keystone does`, async (t) => {
    const keystone = fakeKeystone(HOUR);
    const id = identityWith(t, keystone);
    await id.auth();
    t.mock.timers.setTime(T0 + HOUR - KEEP_USING_MS + 1_000);
    assert.equal((await id.auth()).token, 'token-2');
    t.mock.timers.setTime(T0 + 2 * HOUR - KEEP_USING_MS + 1_000);
    keystone.down = true;
    await assert.rejects(id.auth(), (e) => e instanceof OpenStackError && e.kind === 'unavailable');
  });
});

describe('keystone token lifetime on a skewed clock', () => {
  it('a local clock two hours ahead of Keystone does not re-authenticate on every call', async (t) => {
    const keystone = fakeKeystone(HOUR, -2 * HOUR);
    const id = identityWith(t, keystone);
    await id.auth();
    await id.auth();
    t.mock.timers.setTime(T0 + 30 * 60_000);
    await id.auth();
    assert.equal(keystone.issued, 1);
    assert.equal(id.health().ready, true);
  });

  it('a local clock two hours behind Keystone refreshes before the token dies', async (t) => {
    const keystone = fakeKeystone(HOUR, 2 * HOUR);
    const id = identityWith(t, keystone);
    await id.auth();
    // Keystone's clock says the token is dead; expires_at read on the local clock would say it has two hours left.
    t.mock.timers.setTime(T0 + HOUR);
    assert.equal(id.health().ready, false);
    assert.equal((await id.auth()).token, 'token-2');
  });

  // Keystone under uwsgi (the Zed testbed) sends no Date header with a token: the token's own issued_at serves.
  for (const [what, says] of [
    ['without a Date header', { date: false }],
    ['without issued_at (a Date header only)', { issuedAt: false }],
  ] as const) {
    it(`${what}, a local clock 13 hours ahead does not re-authenticate on every call, and health is ready`, async (t) => {
      const keystone = fakeKeystone(12 * HOUR, -13 * HOUR, says);
      const id = identityWith(t, keystone);
      await id.auth();
      await id.auth();
      t.mock.timers.setTime(T0 + 6 * HOUR);
      await id.auth();
      assert.equal(keystone.issued, 1);
      assert.equal(id.health().ready, true);
    });
  }

  it('reads the lifetime as expires_at less issued_at, else less Date, a second short for their whole seconds; else trusts expires_at', () => {
    const expires = new Date('2030-01-01T01:00:00.000Z');
    const issued = '2030-01-01T00:00:00.000000Z';
    const date = 'Tue, 01 Jan 2030 00:30:00 GMT';
    assert.equal(localExpiry(expires, issued, date, 5_000), 5_000 + HOUR - 1_000, 'issued_at first');
    assert.equal(localExpiry(expires, undefined, date, 5_000), 5_000 + HOUR / 2 - 1_000);
    assert.equal(localExpiry(expires, 'not a time', date, 5_000), 5_000 + HOUR / 2 - 1_000);
    assert.equal(localExpiry(expires, undefined, undefined, 5_000), expires.getTime());
    assert.equal(localExpiry(expires, undefined, 'not a date', 5_000), expires.getTime());
  });

  it("reads Keystone v2.0's issued_at, written without a zone, as UTC whatever this process's time zone", (t) => {
    const tz = process.env.TZ;
    process.env.TZ = 'Asia/Tokyo';
    t.after(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });
    const expires = new Date('2030-01-01T01:00:00Z');
    assert.equal(localExpiry(expires, '2030-01-01T00:00:00.819584', undefined, 5_000), 5_000 + HOUR - 1_000 - 819);
  });
});

describe('keystone health and the catalog', () => {
  it('a catalog without the Cinder or Nova endpoint the config asks for keeps the token, and health is not ready, saying why', async (t) => {
    const keystone = fakeKeystone(HOUR);
    keystone.catalog = CATALOG.filter((s) => s.type !== 'volumev3');
    const id = identityWith(t, keystone);
    const state = await id.auth();
    assert.equal(state.token, 'token-1');
    const h = id.health();
    assert.equal(h.ready, false);
    assert.match(h.catalogError ?? '', /no volumev3 or block-storage or volumev2 or volume service at all \(the cloud has no Cinder, .*in region RegionOne on interfaces public, internal, admin:/);
    assert.equal(h.lastError, undefined, 'the authentication itself succeeded');
  });

  it('a region typo (regionone for RegionOne) is not ready; the region named right is', async (t) => {
    const wrong = new Identity({ ...config, region: 'regionone' }, fakeKeystone(HOUR) as unknown as HttpClient, silentLogger);
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    await wrong.auth();
    assert.equal(wrong.health().ready, false);
    assert.match(wrong.health().catalogError ?? '', /in region regionone .*case-sensitive/);
    const right = new Identity({ ...config, region: 'RegionOne' }, fakeKeystone(HOUR) as unknown as HttpClient, silentLogger);
    await right.auth();
    assert.equal(right.health().ready, true);
  });

  it('a configured endpoint stands in for the one the catalog lacks', async (t) => {
    const keystone = fakeKeystone(HOUR);
    keystone.catalog = CATALOG.filter((s) => s.type !== 'compute');
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    const id = new Identity({ ...config, endpointOverrides: { compute: 'http://nova.example/v2.1' } }, keystone as unknown as HttpClient, silentLogger);
    await id.auth();
    assert.equal(id.health().ready, true);
  });
});

describe('no region configured on a cloud of several regions', () => {
  /** Cinder and Nova in RegionOne and RegionTwo (each region with its own URLs), on every interface. */
  const TWO_REGIONS = ['volumev3', 'compute'].map((type) => ({
    type,
    endpoints: ['RegionTwo', 'RegionOne'].flatMap((region) =>
      ['public', 'internal', 'admin'].map((iface) => ({ interface: iface, region_id: region, url: `http://${type}.${region}.invalid/` })),
    ),
  }));
  const identity = (t: TestContext, catalog: unknown[], more: Partial<CloudConfig> = {}) => {
    const keystone = fakeKeystone(HOUR);
    keystone.catalog = catalog;
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    return new Identity({ ...config, ...more }, keystone as unknown as HttpClient, silentLogger);
  };

  // Each service's first match could be in a different region: Nova's 404 for our server would make a live attachment look stale.
  it('is refused (config), naming the regions and the setting; health is not ready', async (t) => {
    const id = identity(t, TWO_REGIONS);
    const state = await id.auth();
    assert.equal(id.health().ready, false);
    assert.match(id.health().catalogError ?? '', /no region is configured, and the service catalog offers the volume or compute service on interface public in 2 regions \(RegionOne, RegionTwo\): set the cloud's region/);
    for (const types of [['volumev3'], ['compute']]) {
      assert.throws(() => id.endpoint(state, types), (e) => isOpenStackError(e, 'config') && /RegionOne, RegionTwo/.test(e.message));
    }
  });

  it('also when Cinder is in one region and Nova in another', async (t) => {
    const split = [
      { type: 'volumev3', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://cinder.invalid/' }] },
      { type: 'compute', endpoints: [{ interface: 'public', region_id: 'RegionTwo', url: 'http://nova.invalid/' }] },
    ];
    const id = identity(t, split);
    await id.auth();
    assert.match(id.health().catalogError ?? '', /in 2 regions \(RegionOne, RegionTwo\)/);
  });

  it('with the region set, each service is taken from that region', async (t) => {
    const id = identity(t, TWO_REGIONS, { region: 'RegionOne' });
    const state = await id.auth();
    assert.equal(id.health().ready, true);
    assert.equal(id.endpoint(state, ['volumev3']).url, 'http://volumev3.RegionOne.invalid');
    assert.equal(id.endpoint(state, ['compute']).url, 'http://compute.RegionOne.invalid');
  });

  it('other services and other interfaces in other regions do not count', async (t) => {
    const elsewhere = (type: string, iface: string) => ({ type, endpoints: [{ interface: iface, region_id: 'RegionTwo', url: `http://${type}.two.invalid/` }] });
    const id = identity(t, [...CATALOG, elsewhere('image', 'public'), elsewhere('volumev3', 'internal')]);
    await id.auth();
    assert.equal(id.health().ready, true, id.health().catalogError);
  });

  it('nor does an endpoint registered without a region, or a leftover older volume type in another region', async (t) => {
    const id = identity(t, [
      { type: 'volumev3', endpoints: [{ interface: 'public', url: 'http://cinder.invalid/v3/' }] },
      { type: 'volumev2', endpoints: [{ interface: 'public', region_id: 'RegionTwo', url: 'http://old-cinder.invalid/v2/' }] },
      { type: 'compute', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://nova.invalid/' }] },
    ]);
    await id.auth();
    assert.equal(id.health().ready, true, id.health().catalogError);
  });

  it('nor does a service whose endpoint is configured', async (t) => {
    const overridden = identity(t, [CATALOG[0], ...TWO_REGIONS.filter((s) => s.type === 'compute')], { endpointOverrides: { compute: 'http://nova.example/v2.1' } });
    await overridden.auth();
    assert.equal(overridden.health().ready, true, overridden.health().catalogError);
  });
});

describe('keystone refusals are never not_found', () => {
  /** An Identity whose Keystone answers every token request with `status` and Keystone's error body. */
  const refusedWith = (status: number, message: string, auth: Partial<CloudCredentials> = {}) => {
    const keystone = {
      asked: 0,
      async request(): Promise<never> {
        keystone.asked++;
        throw errorFromResponse('POST', '/v3/auth/tokens', status, { 'x-openstack-request-id': 'req-k' }, { error: { code: status, message, title: 'Refused' } });
      },
    };
    const identity = new Identity({ ...config, auth: { ...config.auth, ...auth } }, keystone as unknown as HttpClient, silentLogger);
    return { identity, keystone };
  };

  // Seen on the Zed testbed: POST /v3/auth/tokens answers 404, not 401, for these.
  it('an application credential Keystone no longer has (404) is unauthorized, naming the credential to replace', async () => {
    const { identity, keystone } = refusedWith(404, 'Could not find Application Credential: 2c4c.', {
      authPlugin: 'v3applicationcredential',
      applicationCredentialId: '2c4c',
      applicationCredentialSecret: 's',
    });
    await assert.rejects(identity.auth(), (e) => {
      assert.ok(isOpenStackError(e, 'unauthorized'), String(e));
      assert.equal(e.status, 404);
      assert.equal(e.requestId, 'req-k');
      assert.match(e.message, /Could not find Application Credential: 2c4c\./);
      assert.match(e.message, /Keystone at keystone\.invalid\/v3 has no application credential 2c4c \(deleted, or replaced by a rotation\)/);
      return true;
    });
    assert.equal(keystone.asked, 1, 'a refusal is not retried');
    assert.match(identity.health().lastError ?? '', /application credential 2c4c/);
  });

  it('an expired or revoked token given in the config (404) is unauthorized, saying a static token is never renewed', async () => {
    const { identity } = refusedWith(404, 'Failed to validate token', { authPlugin: 'token', token: 'gAAAAAold' });
    await assert.rejects(identity.auth(), (e) => isOpenStackError(e, 'unauthorized') && /expired or was revoked.*never renewed/.test(e.message));
  });

  it("a 401 names the Keystone asked (host and path) and the identity refused, never a secret", async () => {
    const AUTH = 'The request you have made requires authentication.';
    const cases: Array<[Partial<CloudCredentials>, string]> = [
      [
        { username: 'alice', userDomainName: 'corp', password: 'pw-1', projectId: undefined, projectName: 'team', projectDomainId: 'd42' },
        "Keystone at keystone.invalid/v3 refused user 'alice' (domain 'corp') with a password, for project 'team' (domain ID d42): a wrong password, user, project or domain",
      ],
      [{ userId: 'u77', password: 'pw-2' }, 'Keystone at keystone.invalid/v3 refused user ID u77 with a password, for project ID p1: '],
      [{ username: 'bob', password: 'pw-3', projectId: undefined, domainName: 'both' }, "refused user 'bob' (domain 'both') with a password, for no project (an unscoped token)"],
      [
        { authPlugin: 'v3applicationcredential', applicationCredentialId: 'ac-9', applicationCredentialSecret: 'sec-4' },
        "Keystone at keystone.invalid/v3 refused application credential ID ac-9: the application credential has expired, its secret is wrong, or its user is disabled",
      ],
      [
        { authPlugin: 'v3applicationcredential', applicationCredentialName: 'csi', username: 'carol', applicationCredentialSecret: 'sec-5' },
        "refused application credential 'csi' of user 'carol' (domain 'Default'): ",
      ],
      [{ authPlugin: 'token', token: 'gAAAA-tok-6' }, 'refused the token in the config, for project ID p1: the token has expired or was revoked'],
      [
        { authUrl: 'https://rax.invalid:5000/', authPlugin: 'rackspace', username: 'dave', apiKey: 'key-7', identityApiVersion: undefined },
        "Keystone at rax.invalid:5000/v2.0 refused user 'dave' with an API key, for tenant ID p1: a wrong API key",
      ],
    ];
    for (const [auth, words] of cases) {
      const { identity } = refusedWith(401, AUTH, auth);
      await assert.rejects(identity.auth(), (e) => {
        assert.ok(isOpenStackError(e, 'unauthorized'), String(e));
        assert.ok(e.message.startsWith(`POST /v3/auth/tokens: 401 ${AUTH}; `), e.message);
        assert.ok(e.message.includes(words), `${e.message}\n  lacks: ${words}`);
        assert.match(e.message, /; or auth_url does not point at Keystone \(\S+ answered\)$/);
        for (const secret of ['pw-', 'sec-', 'tok-', 'key-']) assert.ok(!e.message.includes(secret), e.message);
        return true;
      });
    }
    // A name that happens to be the password is not shown either.
    const { identity } = refusedWith(401, AUTH, { username: 'same-as-pw', password: 'same-as-pw' });
    await assert.rejects(identity.auth(), (e) => isOpenStackError(e, 'unauthorized') && !e.message.includes('same-as-pw') && /refused user '\[REDACTED\]'/.test(e.message));
  });

  it('a request Keystone calls malformed (400) is config; 403 stays forbidden; 401 unauthorized', async () => {
    await assert.rejects(refusedWith(400, "'identity' is a required property").identity.auth(), (e) => isOpenStackError(e, 'config') && e.status === 400);
    await assert.rejects(refusedWith(403, 'not allowed').identity.auth(), (e) => isOpenStackError(e, 'forbidden'));
    await assert.rejects(refusedWith(401, 'The request you have made requires authentication.').identity.auth(), (e) => isOpenStackError(e, 'unauthorized'));
  });

  it('no 4xx from the token endpoint is not_found, conflict or bad_request (which callers read as facts about a volume)', async () => {
    for (let status = 400; status < 500; status++) {
      const { identity } = refusedWith(status, 'refused');
      await assert.rejects(identity.auth(), (e) => {
        assert.ok(e instanceof OpenStackError);
        assert.ok(['unauthorized', 'forbidden', 'config', 'rate_limited'].includes(e.kind), `${status} -> ${e.kind}`);
        return true;
      });
    }
  });

  it('a config the auth plugin cannot use is config, before anything is sent', async () => {
    const { identity, keystone } = refusedWith(500, 'unused', { authPlugin: 'v3applicationcredential', applicationCredentialId: undefined, applicationCredentialSecret: 's' });
    await assert.rejects(identity.auth(), (e) => isOpenStackError(e, 'config') && /application_credential_id or _name/.test(e.message));
    assert.equal(keystone.asked, 0);
  });
});
