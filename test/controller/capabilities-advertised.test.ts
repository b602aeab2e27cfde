import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capabilityProblem, controllerCapabilities } from '../../src/controller/capabilities';

const types = (caps: ReturnType<typeof controllerCapabilities>) => caps.map((c) => c.rpc?.type);

test('GET_SNAPSHOT is advertised only when the config asks for it', () => {
  assert.ok(!types(controllerCapabilities()).includes('GET_SNAPSHOT'));
  assert.ok(types(controllerCapabilities(true)).includes('GET_SNAPSHOT'));
  assert.equal(controllerCapabilities(true).length, controllerCapabilities().length + 1);
});

test('SINGLE_NODE_MULTI_WRITER is advertised, and both of its access modes are accepted for any volume', () => {
  assert.ok(types(controllerCapabilities()).includes('SINGLE_NODE_MULTI_WRITER'));
  for (const mode of ['SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER']) {
    for (const access of ['mount', 'block'] as const) {
      assert.equal(capabilityProblem({ access_mode: { mode }, access_type: access, [access]: {} } as any, false), null, `${mode} ${access}`);
    }
  }
});
