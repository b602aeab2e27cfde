// Something posing as Keystone (or a proxy in front of it) that echoes the
// token request in its refusal: the password must reach neither the gRPC
// status that CreateVolume answers (the provisioner makes it a PVC event,
// which namespace users read), nor Probe's reason, nor the driver's log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../../src/sim';
import { passwordAuthBody } from '../sim/helpers';
import { Code, expectCode, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('a Keystone that echoes the password in its refusal', () => {
  let sim: Simulator;
  let h: ControllerHarness;
  before(async () => {
    sim = await startSimulator({ hypervisor: false });
    const echoed = JSON.stringify(passwordAuthBody(sim));
    sim.control.addFault({
      service: 'identity',
      method: 'POST',
      pathPattern: '/auth/tokens$',
      status: 400,
      body: { error: { code: 400, title: 'Bad Request', message: `Invalid input for field 'auth': ${echoed} is not valid` } },
      times: Infinity,
    });
    h = await startController({ simulator: sim });
  });
  after(async () => {
    await h?.stop();
    await sim?.stop();
  });

  it('CreateVolume fails without the password in its answer', async () => {
    const err = await expectCode(
      h.rpc('CreateVolume', { name: 'pvc-echo', volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } }),
      Code.FAILED_PRECONDITION,
    );
    assert.match(err.details, /400 Bad Request/);
    assert.ok(!err.details.includes(sim.credentials.password), err.details);
  });

  it("Probe's reason and the log have no password either", async () => {
    const res = await h.driver.call(h.driver.identity, 'Probe', {});
    assert.equal(res.ready.value, false);
    const line = h.driver.logs.findLast((l) => l.method === 'Probe');
    assert.match(String(line?.not_ready), /400 Bad Request/);
    const leaked = h.driver.logs.filter((l) => JSON.stringify(l).includes(sim.credentials.password));
    assert.deepEqual(leaked, []);
  });
});
