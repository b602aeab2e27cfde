// csi-sanity's Identity Service cases, for any target: the simulator
// (identity.test.ts) or a real cloud (controller.cloud.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { suiteOf, titled, withTest, type SuiteTarget } from './harness';

export function defineIdentityCases(target: SuiteTarget): void {
  describe(titled('Identity Service', target), () => {
    const ctx = suiteOf(target);

    it('GetPluginCapabilities returns only known services and expansion modes', () =>
      withTest(ctx.suite, async (r) => {
        const res = await r.identity('GetPluginCapabilities', {});
        assert.ok(res);
        for (const cap of res.capabilities ?? []) {
          if (cap.service) assert.ok(['CONTROLLER_SERVICE', 'VOLUME_ACCESSIBILITY_CONSTRAINTS'].includes(cap.service.type), `unknown service ${cap.service.type}`);
          else if (cap.volume_expansion) assert.ok(['ONLINE', 'OFFLINE'].includes(cap.volume_expansion.type), `unknown expansion mode ${cap.volume_expansion.type}`);
          else assert.fail(`unknown capability ${JSON.stringify(cap)}`);
        }
      }));

    it('Probe answers without error; ready, when present, is a boolean', () =>
      withTest(ctx.suite, async (r) => {
        const res = await r.identity('Probe', {});
        assert.ok(res);
        if (res.ready) assert.equal(typeof res.ready.value, 'boolean');
      }));

    it('GetPluginInfo returns a name of 1..63 characters of the allowed form', () =>
      withTest(ctx.suite, async (r) => {
        const res = await r.identity('GetPluginInfo', {});
        assert.ok(res.name.length > 0 && res.name.length <= 63, `name length ${res.name.length}`);
        assert.match(res.name, /^[a-zA-Z][A-Za-z0-9\-._]{0,61}[a-zA-Z]$/);
      }));
  });
}
