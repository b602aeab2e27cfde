// The contract suite against a real cloud (npm run test:cloud): OS_* or
// clouds.yaml from the environment, TESTBED_SERVER_ID as the server to attach
// to. Skips with the reason when no cloud is configured.
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import { versionedAuthUrl, v3AuthBody } from '../../src/openstack/keystone';
import type { CloudConfig } from '../../src/openstack/types';
import { cloudConfigFromEnv, cloudSkipReason } from './cloud-env';
import { defineContractSuite, type ContractTarget } from './contract';

/** A token straight from Keystone (not through the module under test), with the user's ID. */
async function rawToken(config: CloudConfig): Promise<{ token: string; userId: string; projectId: string }> {
  const res = await fetch(`${versionedAuthUrl(config.auth)}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(v3AuthBody(config.auth)),
  });
  if (res.status !== 201) throw new Error(`keystone answered ${res.status}`);
  const body = (await res.json()) as { token: { user: { id: string }; project: { id: string } } };
  return { token: res.headers.get('x-subject-token')!, userId: body.token.user.id, projectId: body.token.project.id };
}

async function realTarget(): Promise<ContractTarget> {
  const config = cloudConfigFromEnv()!;
  const identityUrl = versionedAuthUrl(config.auth);
  const { token, userId, projectId } = await rawToken(config);

  // An application credential of our own, deleted at teardown.
  const appName = `contract-${randomUUID().slice(0, 8)}`;
  const made = await fetch(`${identityUrl}/users/${userId}/application_credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: JSON.stringify({ application_credential: { name: appName } }),
  });
  if (made.status !== 201) throw new Error(`creating an application credential: ${made.status}`);
  const app = ((await made.json()) as { application_credential: { id: string; secret: string } }).application_credential;

  const probe = createCloud(config, silentLogger);
  const quota = await probe.blockStorage.getQuotaUsage();
  await probe.close();
  const gib = quota.gigabytes;
  const perVolume = quota.per_volume_gigabytes;
  const overQuotaGiB =
    perVolume && perVolume.limit >= 0 ? perVolume.limit : gib && gib.limit >= 0 ? gib.limit - gib.inUse : undefined;

  const auth = config.auth;
  return {
    name: 'real cloud',
    config,
    serverId: process.env.TESTBED_SERVER_ID!,
    variants: {
      passwordById: { ...config, auth: { authUrl: auth.authUrl, authPlugin: 'password', userId, password: auth.password, projectId } },
      appCredential: {
        ...config,
        auth: { authUrl: auth.authUrl, authPlugin: 'v3applicationcredential', applicationCredentialId: app.id, applicationCredentialSecret: app.secret },
      },
      appCredentialByName: {
        ...config,
        auth: {
          authUrl: auth.authUrl,
          authPlugin: 'v3applicationcredential',
          applicationCredentialName: appName,
          applicationCredentialSecret: app.secret,
          username: auth.username,
          userDomainName: auth.userDomainName,
          userDomainId: auth.userDomainId,
        },
      },
      token: { ...config, auth: { authUrl: auth.authUrl, authPlugin: 'token', token, projectId } },
    },
    overQuotaGiB,
    backups: false,
    skip: {
      v2Password: 'Keystone v2.0 is gone from real clouds since Queens: runs on the simulator',
      rackspace: 'the Rackspace api-key extension exists only on Rackspace: runs on the simulator',
      backups: 'the testbed runs no cinder-backup: runs on the simulator',
      cinderVersions: 'a real cloud offers the APIs it offers: v1-only and v2-only detection runs on the simulator',
      faults: 'fault injection needs the simulator',
      tls: 'the testbed serves plain HTTP: TLS runs on the simulator',
      metadata: 'the testbed has no metadata service: runs on the simulator',
      overQuota: 'the project has no gigabytes quota',
    },
    async teardown() {
      await fetch(`${identityUrl}/users/${userId}/application_credentials/${app.id}`, {
        method: 'DELETE',
        headers: { 'x-auth-token': token },
      });
    },
  };
}

const skip = cloudSkipReason();
if (skip) {
  describe('openstack contract (real cloud)', () => {
    it('runs against a real cloud', (t) => t.skip(skip));
  });
} else {
  defineContractSuite(realTarget);
}
