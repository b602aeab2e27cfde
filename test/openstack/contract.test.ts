// The contract suite against the simulator: every capability, including the
// ones a real cloud cannot offer on demand (faults, v1/v2-only Cinder,
// Keystone v2.0 and Rackspace, TLS, the metadata service).
import { startSimulator, type Simulator } from '../../src/sim';
import { versionedAuthUrl, v3AuthBody } from '../../src/openstack/keystone';
import type { CloudConfig } from '../../src/openstack/types';
import { defineContractSuite, type ContractTarget } from './contract';

const durations = { create: 150, delete: 100, attach: 150, detach: 100, extend: 100, snapshot: 100, backup: 200, restore: 150, retype: 100 };
const QUOTA_GIB = 500;

async function token(config: CloudConfig): Promise<string> {
  const res = await fetch(`${versionedAuthUrl(config.auth)}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(v3AuthBody(config.auth)),
  });
  if (res.status !== 201) throw new Error(`simulated keystone answered ${res.status}`);
  return res.headers.get('x-subject-token')!;
}

async function simTarget(): Promise<ContractTarget> {
  const sim = await startSimulator({ hypervisor: false, durations, quotas: { gigabytes: QUOTA_GIB } });
  const tlsSim: Simulator = await startSimulator({ hypervisor: false, tls: true, durations });
  const c = sim.credentials;
  const config = sim.cloudConfig();
  const v2Url = `${sim.url}/identity/v2.0`;
  const base = { authUrl: sim.authUrl };
  const instance = sim.instances[0]!;
  return {
    name: 'simulator',
    config,
    serverId: instance.id,
    variants: {
      passwordById: sim.cloudConfig({ auth: { ...base, authPlugin: 'password', userId: c.userId, password: c.password, projectId: c.projectId } }),
      appCredential: sim.cloudConfig({
        auth: { ...base, authPlugin: 'v3applicationcredential', applicationCredentialId: c.applicationCredentialId, applicationCredentialSecret: c.applicationCredentialSecret },
      }),
      appCredentialByName: sim.cloudConfig({
        auth: {
          ...base,
          authPlugin: 'v3applicationcredential',
          applicationCredentialName: c.applicationCredentialName,
          applicationCredentialSecret: c.applicationCredentialSecret,
          username: c.username,
          userDomainName: c.userDomainName,
        },
      }),
      token: sim.cloudConfig({ auth: { ...base, authPlugin: 'token', token: await token(config), projectId: c.projectId } }),
      v2Password: sim.cloudConfig({ auth: { authUrl: v2Url, authPlugin: 'password', username: c.username, password: c.password, projectName: c.projectName } }),
      rackspace: sim.cloudConfig({ auth: { authUrl: v2Url, authPlugin: 'rackspace', username: c.username, apiKey: c.apiKey } }),
    },
    overQuotaGiB: QUOTA_GIB,
    backups: true,
    control: sim.control,
    cinderVersion: async (v) => {
      const only = await startSimulator({ hypervisor: false, durations, cinderVersions: [`v${v}`] });
      return { config: only.cloudConfig(), close: async () => void (await only.stop()) };
    },
    tls: {
      verified: tlsSim.cloudConfig({ tls: { verify: true, caFile: tlsSim.caFile } }),
      insecure: tlsSim.cloudConfig({ tls: { verify: false } }),
      noCa: tlsSim.cloudConfig({ tls: { verify: true } }),
    },
    metadata: { url: instance.metadataUrl, instanceId: instance.id, availabilityZone: instance.availabilityZone },
    skip: {},
    async teardown() {
      await sim.stop();
      await tlsSim.stop();
    },
  };
}

defineContractSuite(simTarget);
