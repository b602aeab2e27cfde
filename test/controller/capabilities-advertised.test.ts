import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controllerCapabilities } from '../../src/controller/capabilities';

const types = (caps: ReturnType<typeof controllerCapabilities>) => caps.map((c) => c.rpc?.type);

test('GET_SNAPSHOT is advertised only when the config asks for it', () => {
  assert.ok(!types(controllerCapabilities()).includes('GET_SNAPSHOT'));
  assert.ok(types(controllerCapabilities(true)).includes('GET_SNAPSHOT'));
  assert.equal(controllerCapabilities(true).length, controllerCapabilities().length + 1);
});
