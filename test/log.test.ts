// Logging (issue 2, item 3): secrets never reach the output. `scrub` removes
// them at any depth before an object is logged; pino's redaction catches the
// same keys near the top when a caller forgets to scrub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, holdsSecret, isSecretKey, scrub } from '../src/log';
import { captureLog } from './helpers/server';

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
