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

test("the Identity service offers zone topology as the parsed config's driver.controller.topology says", async (t) => {
  const caps = async (topology: boolean | undefined, mode: 'controller' | 'node'): Promise<string[]> => {
    const driver = await startTestDriver({
      mode,
      sim: { hypervisor: false },
      configure: (config) => {
        if (topology !== undefined) config.controller.topology = topology;
      },
    });
    t.after(() => driver.stop());
    const res = await driver.call(driver.identity, 'GetPluginCapabilities', {});
    return (res.capabilities as Array<{ service?: { type: string } }>).flatMap((c) => (c.service ? [c.service.type] : []));
  };
  assert.ok((await caps(undefined, 'controller')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'on by default');
  assert.ok(!(await caps(false, 'controller')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'controller, topology: false');
  assert.ok(!(await caps(false, 'node')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'node, topology: false');
});
