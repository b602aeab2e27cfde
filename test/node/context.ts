// A CallContext for calling node handlers directly, without gRPC.
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { CallContext } from '../../src/csi/context';
import { CsiError } from '../../src/csi/errors';
import { silentLogger } from '../../src/log';

export function testContext(method: string, timeoutMs = 60_000): CallContext {
  return {
    requestId: randomUUID().slice(0, 8),
    method,
    signal: AbortSignal.timeout(timeoutMs),
    deadline: Date.now() + timeoutMs,
    log: silentLogger,
    annotate: () => undefined,
  };
}

/** Awaits `p`, expecting a CsiError with `code`; returns it so the test can check the message. */
export async function rejectsWithCode(p: Promise<unknown>, code: status, message?: RegExp): Promise<CsiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CsiError, `expected a CsiError, got ${String(e)}`);
    assert.equal(status[e.code], status[code], e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${status[code]}, but the call succeeded`);
}
