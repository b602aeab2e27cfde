// Logging (issue 2, item 3): secrets never reach the output. `scrub` removes
// them at any depth before an object is logged; the logger catches the same
// keys at any depth, in logged objects and in child bindings, when a caller
// forgets to scrub, and takes the credentials out of any URL in a line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, holdsSecret, isSecretKey, scrub, scrubUrlCredentials } from '../src/log';
import { captureLog } from './helpers/server';
import { createCloud } from '../src/openstack/cloud';
import { startSimulator } from '../src/sim';

test('scrub replaces the value of every secret-named key, at any depth, case-insensitively', () => {
  const input = {
    name: 'pvc-1',
    secrets: { password: 'p' },
    parameters: { type: 'ssd' },
    auth: { Password: 'p2', 'X-Auth-Token': 't', OS_APPLICATION_CREDENTIAL_SECRET: 's', api_key: 'k', user: 'alice' },
    list: [{ token: 't2', id: 'x' }],
    data: Buffer.from('raw bytes'),
  };
  assert.deepEqual(scrub(input), {
    name: 'pvc-1',
    secrets: REDACTED,
    parameters: { type: 'ssd' },
    auth: { Password: REDACTED, 'X-Auth-Token': REDACTED, OS_APPLICATION_CREDENTIAL_SECRET: REDACTED, api_key: REDACTED, user: 'alice' },
    list: [{ token: REDACTED, id: 'x' }],
    data: '<9 bytes>',
  });
  assert.equal(input.secrets.password, 'p', 'the input is not changed');
  for (const k of ['secrets', 'password', 'token', 'api_key', 'application_credential_secret', 'x-subject-token']) assert.ok(isSecretKey(k), k);
  for (const k of ['name', 'volume_id', 'parameters', 'username']) assert.ok(!isSecretKey(k), k);
});

test('scrub never hands back a secret hidden deeper than it looks', () => {
  let deep: Record<string, unknown> = { password: 'deep-SECRET' };
  for (let i = 0; i < 30; i++) deep = { nested: deep };
  assert.ok(!JSON.stringify(scrub(deep)).includes('deep-SECRET'));
});

test("the logger's own redaction hides secret keys a caller forgot to scrub", () => {
  const log = captureLog('debug');
  log.logger.info({ password: 'top-SECRET', request: { secrets: { a: 'one-SECRET' }, auth: { token: 'two-SECRET' } } }, 'careless');
  const text = log.text();
  assert.ok(!text.includes('SECRET'), text);
  const [line] = log.lines();
  assert.equal(line.password, REDACTED);
  assert.equal((line.request as any).secrets, REDACTED);
  assert.equal((line.request as any).auth.token, REDACTED);
});

test("the logger's redaction reaches any depth, keeps errors readable, and leaves secret-free objects as they are", () => {
  const log = captureLog('debug');
  const err = Object.assign(new Error('boom'), { code: 'E_TEST' });
  log.logger.info({ a: { b: { c: { d: { password: 'deep-SECRET', keep: 'yes' } } } }, err }, 'deep');
  log.logger.info({ volume_id: 'v-1', nested: { list: [{ id: 1 }] } }, 'plain');
  const text = log.text();
  assert.ok(!text.includes('SECRET'), text);
  const [deep, plain] = log.lines();
  assert.equal((deep.a as any).b.c.d.password, REDACTED);
  assert.equal((deep.a as any).b.c.d.keep, 'yes');
  assert.equal((deep.err as any).message, 'boom');
  assert.equal((deep.err as any).code, 'E_TEST');
  assert.match(String((deep.err as any).stack), /boom/);
  assert.deepEqual(plain.nested, { list: [{ id: 1 }] });
  assert.equal(plain.volume_id, 'v-1');
});

test('holdsSecret finds secret keys at any depth without false alarms', () => {
  assert.equal(holdsSecret({ a: [{ b: { Token: 'x' } }] }), true);
  assert.equal(holdsSecret({ a: [{ b: { id: 'x' } }], buf: Buffer.alloc(4096) }), false);
  assert.equal(holdsSecret('password'), false);
});

test('a key names a secret by the words in it, whatever its case, dashes and underscores', () => {
  for (const k of [
    'applicationCredentialSecret', // CloudCredentials, in memory
    'authorization', 'Authorization', 'proxy-authorization', 'Proxy-Authorization',
    'cookie', 'Set-Cookie', 'x-auth-token', 'X-Auth-Token', 'X-Subject-Token', 'authToken', 'X-Auth-Key',
    'OS_PASSWORD', 'passwd', 'passphrase', 'credentials', 'credential', 'private_key', 'apiKey', 'client_key', 'key',
  ]) {
    assert.ok(isSecretKey(k), k);
  }
  // Paging positions hold 'token' and no secret; 'key' inside a name is too common to mean one.
  for (const k of ['name', 'volume_id', 'username', 'user_id', 'parameters', 'starting_token', 'next_token', 'sortKey', 'expiresAt', 'url']) {
    assert.ok(!isSecretKey(k), k);
  }
});

test('secrets that leaked when logged directly stay out: more names, child bindings at any depth, URLs', () => {
  const log = captureLog('debug');
  log.logger.info({ applicationCredentialSecret: 'ac-SECRET' }, 'credentials');
  log.logger.info({ headers: { authorization: 'Bearer a-SECRET', 'proxy-authorization': 'Basic p-SECRET', cookie: 'c-SECRET' } }, 'headers');
  log.logger.child({ 'x-auth-token': 't-SECRET' }).info('child');
  log.logger.child({ auth: { password: 'n-SECRET', user: 'alice' } }).info('nested child');
  log.logger.child({ component: 'c' }).child({ list: [{ secret: 'g-SECRET' }] }).warn('grandchild');
  log.logger.info({ proxy: 'http://proxyuser:u-SECRET@proxy.example.com:3128' }, 'through https://bob:m-SECRET@proxy.example.com/ and on');
  log.logger.error({ err: new Error('CONNECT via http://carol:e-SECRET@10.0.0.1:3128 refused') }, 'failed');
  const text = log.text();
  assert.ok(!text.includes('SECRET'), text);
  assert.ok(!/proxyuser|bob|carol/.test(text), 'the user names go with the passwords');
  const lines = log.lines(); // each still JSON
  assert.equal(lines.length, 7);
  assert.equal(lines[0]!.applicationCredentialSecret, REDACTED);
  assert.deepEqual(lines[1]!.headers, { authorization: REDACTED, 'proxy-authorization': REDACTED, cookie: REDACTED });
  assert.equal(lines[2]!['x-auth-token'], REDACTED);
  assert.deepEqual(lines[3]!.auth, { password: REDACTED, user: 'alice' });
  assert.deepEqual(lines[4]!.list, [{ secret: REDACTED }]);
  assert.equal(lines[4]!.component, 'c');
  assert.equal(lines[5]!.proxy, `http://${REDACTED}@proxy.example.com:3128`);
  assert.equal(lines[5]!.msg, `through https://${REDACTED}@proxy.example.com/ and on`);
  assert.match(String((lines[6]!.err as any).message), /^CONNECT via http:\/\/\[REDACTED\]@10\.0\.0\.1:3128 refused$/);
});

test('URL credentials: up to the last @ before the host; nothing else in the text changes', () => {
  assert.equal(scrubUrlCredentials('http://u:p@ss@proxy:3128/x?mail=a@b'), `http://${REDACTED}@proxy:3128/x?mail=a@b`);
  assert.equal(scrubUrlCredentials('socks5://tok@h and ftp://u@h2'), `socks5://${REDACTED}@h and ftp://${REDACTED}@h2`);
  for (const same of ['no URL, a@b', 'https://keystone.example.com/v3?user=a@b', 'mailto:a@b', 'http://h/path@x']) {
    assert.equal(scrubUrlCredentials(same), same);
  }
  // On a JSON line it never runs past the end of a string.
  const line = JSON.stringify({ a: 'http://host', b: 'x@y' });
  assert.equal(scrubUrlCredentials(line), line);
});

test("a refused authentication's log lines name the user and Keystone, never the password", async () => {
  const sim = await startSimulator({ hypervisor: false });
  const log = captureLog('debug');
  const base = sim.cloudConfig();
  const cloud = createCloud({ ...base, auth: { ...base.auth, password: 'n0t-the-PASSWORD' } }, log.logger);
  try {
    await assert.rejects(cloud.blockStorage.listVolumes({}));
    const text = log.text();
    assert.ok(!text.includes('n0t-the-PASSWORD'), text);
    assert.ok(!text.includes(sim.credentials.password), text);
    const failed = log.lines().find((l) => l.msg === 'keystone authentication failed');
    assert.match(String(failed?.err), new RegExp(`refused user '${sim.credentials.username}' \\(domain '${sim.credentials.userDomainName}'\\) with a password`));
  } finally {
    await cloud.close();
    await sim.stop();
  }
});
