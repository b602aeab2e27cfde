// csi-sanity's Identity Service cases.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSuite, withTest, type Suite } from './harness';

describe('Identity Service', () => {
  let suite: Suite;
  before(async () => {
    suite = await startSuite();
  });
  after(() => suite?.stop());

  it('GetPluginCapabilities returns only known services and expansion modes', () =>
    withTest(suite, async (r) => {
      const res = await r.identity('GetPluginCapabilities', {});
      assert.ok(res);
      for (const cap of res.capabilities ?? []) {
        if (cap.service) assert.ok(['CONTROLLER_SERVICE', 'VOLUME_ACCESSIBILITY_CONSTRAINTS'].includes(cap.service.type), `unknown service ${cap.service.type}`);
        else if (cap.volume_expansion) assert.ok(['ONLINE', 'OFFLINE'].includes(cap.volume_expansion.type), `unknown expansion mode ${cap.volume_expansion.type}`);
        else assert.fail(`unknown capability ${JSON.stringify(cap)}`);
      }
    }));

  it('Probe answers without error; ready, when present, is a boolean', () =>
    withTest(suite, async (r) => {
      const res = await r.identity('Probe', {});
      assert.ok(res);
      if (res.ready) assert.equal(typeof res.ready.value, 'boolean');
    }));

  it('GetPluginInfo returns a name of 1..63 characters of the allowed form', () =>
    withTest(suite, async (r) => {
      const res = await r.identity('GetPluginInfo', {});
      assert.ok(res.name.length > 0 && res.name.length <= 63, `name length ${res.name.length}`);
      assert.match(res.name, /^[a-zA-Z][A-Za-z0-9\-._]{0,61}[a-zA-Z]$/);
    }));
});
