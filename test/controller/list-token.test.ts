import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '../../src/csi/errors';
import { decodeListToken, encodeListToken } from '../../src/controller/list-token';

const aborted = (e: any) => e.code === Code.ABORTED && /start the listing again/.test(e.message);

describe('list tokens', () => {
  const key = 'k1';
  it('round-trips a position', () => {
    const pos = { list: 'snapshots' as const, cloud: 'east', collection: 'backup' as const, marker: 'abc' };
    const token = encodeListToken(pos, key);
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeListToken(token, 'snapshots', key), pos);
  });

  it('refuses tokens it did not issue with ABORTED', () => {
    const token = encodeListToken({ list: 'volumes', cloud: 'main', marker: 'm' }, key);
    assert.throws(() => decodeListToken(token, 'volumes', 'k2'), aborted);
    assert.throws(() => decodeListToken(token, 'snapshots', key), aborted);
    const [payload, mac] = token.split('.');
    const tampered = Buffer.from(JSON.stringify({ list: 'volumes', cloud: 'main', marker: 'other' })).toString('base64url');
    assert.throws(() => decodeListToken(`${tampered}.${mac}`, 'volumes', key), aborted);
    assert.throws(() => decodeListToken(payload, 'volumes', key), aborted);
    assert.throws(() => decodeListToken(`${token}.x`, 'volumes', key), aborted);
    assert.throws(() => decodeListToken('42', 'volumes', key), aborted);
  });
});
