// The CSI Identity service: who we are, what we offer, and whether we are ready.
import type { Handler } from '../csi/context';
import type { GetPluginInfoResponse } from '../gen/csi/v1/GetPluginInfoResponse';
import type { GetPluginCapabilitiesResponse } from '../gen/csi/v1/GetPluginCapabilitiesResponse';
import type { PluginCapability } from '../gen/csi/v1/PluginCapability';
import type { ProbeResponse } from '../gen/csi/v1/ProbeResponse';

export interface Readiness {
  ready: boolean;
  /** Why not, for the log and the operator. */
  reason?: string;
}

export interface IdentityOptions {
  driverName: string;
  vendorVersion: string;
  controller: boolean;
  /**
   * Whether the driver reports and honours zones (`driver.controller.topology`
   * in the parsed config). Off, VOLUME_ACCESSIBILITY_CONSTRAINTS is not
   * offered, so the external-provisioner sends no topology and does not
   * require a zone key on each node's CSINode.
   */
  topology: boolean;
  /** Whether volumes can be expanded while published (Cinder 3.42); false means offline only. */
  onlineExpansion: () => boolean;
  /** Answers from cached state only: Probe must never wait on OpenStack. */
  readiness: () => Readiness;
}

export interface IdentityService {
  GetPluginInfo: Handler<unknown, GetPluginInfoResponse>;
  GetPluginCapabilities: Handler<unknown, GetPluginCapabilitiesResponse>;
  Probe: Handler<unknown, ProbeResponse>;
}

export function createIdentityService(opts: IdentityOptions): IdentityService {
  return {
    async GetPluginInfo() {
      return { name: opts.driverName, vendor_version: opts.vendorVersion, manifest: {} };
    },

    async GetPluginCapabilities() {
      const capabilities: PluginCapability[] = [];
      if (opts.controller) capabilities.push({ service: { type: 'CONTROLLER_SERVICE' } });
      if (opts.topology) capabilities.push({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
      capabilities.push({ volume_expansion: { type: opts.onlineExpansion() ? 'ONLINE' : 'OFFLINE' } });
      return { capabilities };
    },

    async Probe(_req, ctx) {
      const r = opts.readiness();
      if (!r.ready) ctx.annotate({ not_ready: r.reason });
      return { ready: { value: r.ready } };
    },
  };
}
