import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GiB } from '../../src/csi/constants';
import { Code } from '../../src/csi/errors';
import { fitsRange, sizeForRange } from '../../src/controller/size';

describe('sizes', () => {
  it('rounds required_bytes up to whole GiB, 1 GiB when absent', () => {
    assert.equal(sizeForRange(null), 1);
    assert.equal(sizeForRange({ required_bytes: 0, limit_bytes: 0 }), 1);
    assert.equal(sizeForRange({ required_bytes: 1, limit_bytes: 0 }), 1);
    assert.equal(sizeForRange({ required_bytes: GiB, limit_bytes: 0 }), 1);
    assert.equal(sizeForRange({ required_bytes: GiB + 1, limit_bytes: 0 }), 2);
    assert.equal(sizeForRange({ required_bytes: 0, limit_bytes: 3 * GiB }), 1);
  });

  it('is OUT_OF_RANGE when the limit is below the rounded size', () => {
    assert.throws(() => sizeForRange({ required_bytes: GiB + 1, limit_bytes: 1.5 * GiB }), (e: any) => e.code === Code.OUT_OF_RANGE);
    assert.throws(() => sizeForRange({ required_bytes: 0, limit_bytes: GiB - 1 }), (e: any) => e.code === Code.OUT_OF_RANGE);
    assert.equal(sizeForRange({ required_bytes: GiB + 1, limit_bytes: 2 * GiB }), 2);
    assert.throws(() => sizeForRange({ required_bytes: -1, limit_bytes: 0 }), (e: any) => e.code === Code.INVALID_ARGUMENT);
  });

  it('tells whether an existing size satisfies a range', () => {
    assert.equal(fitsRange(2, { required_bytes: 2 * GiB, limit_bytes: 0 }), true);
    assert.equal(fitsRange(2, { required_bytes: 3 * GiB, limit_bytes: 0 }), false);
    assert.equal(fitsRange(3, { required_bytes: GiB, limit_bytes: 2 * GiB }), false);
    assert.equal(fitsRange(1, null), true);
  });
});
