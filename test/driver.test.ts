// The driver as a whole: what start-up does beyond serving (the services
// themselves are tested under test/controller, test/node and test/identity).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecReady, csiMessageTypes } from '../src/csi/proto';
import { startTestDriver } from './helpers/driver';

test('after start-up the driver generates the codec of every message its services carry, before any call', async (t) => {
  const driver = await startTestDriver({ mode: 'controller' });
  t.after(() => driver.stop());
  const served = csiMessageTypes(['Identity', 'Controller']);
  const deadline = Date.now() + 5_000;
  while (!served.every(codecReady) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(served.filter((type) => !codecReady(type)).map((type) => type.fullName), []);
  // A node-only message is not the controller's to prepare.
  assert.equal(csiMessageTypes(['Node']).some((type) => type.name === 'NodeStageVolumeRequest' && codecReady(type)), false);
});
