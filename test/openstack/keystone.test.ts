// The shared Keystone token: when it is refreshed, what a refresh that fails
// does to the calls the current token still serves, and how its lifetime is
// read when the local clock and Keystone's disagree. Keystone is a fake here
// (the clock is mocked, so Keystone's Date header is whatever the test says).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { silentLogger } from '../../src/log';
import { OpenStackError } from '../../src/openstack/errors';
import type { HttpClient, HttpRequest, HttpResponse } from '../../src/openstack/http';
import { Identity, KEEP_USING_MS, localExpiry, REFRESH_RETRY_MS } from '../../src/openstack/keystone';
import type { CloudConfig } from '../../src/openstack/types';

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

/** A Keystone issuing tokens of `lifetimeMs` on a clock `skewMs` ahead of the local one; `down` makes it answer 503. */
function fakeKeystone(lifetimeMs: number, skewMs = 0) {
  const k = {
    down: false,
    issued: 0,
    asked: 0,
    async request<T>(_req: HttpRequest): Promise<HttpResponse<T>> {
      k.asked++;
      if (k.down) throw new OpenStackError('unavailable', 'POST /v3/auth/tokens: 503 Service Unavailable', { status: 503 });
      const now = Date.now() + skewMs;
      k.issued++;
      const body = { token: { expires_at: new Date(now + lifetimeMs).toISOString(), project: { id: 'p1' }, catalog: [] } };
      return { status: 201, headers: { 'x-subject-token': `token-${k.issued}`, date: new Date(now).toUTCString() }, body: body as T };
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

  it('reads the lifetime as expires_at less Date, a second short for its whole seconds, and trusts expires_at without a Date', () => {
    const expires = new Date('2030-01-01T01:00:00.000Z');
    assert.equal(localExpiry(expires, 'Tue, 01 Jan 2030 00:00:00 GMT', 5_000), 5_000 + HOUR - 1_000);
    assert.equal(localExpiry(expires, undefined, 5_000), expires.getTime());
    assert.equal(localExpiry(expires, 'not a date', 5_000), expires.getTime());
  });
});
