// The Go cinder-csi-plugin's cloud.conf against a real cloud (npm run test:cloud):
// a cloud.conf written the way that plugin's docs write one, from the same OS_*
// variables the other cloud tests use, must load and reach Keystone and Cinder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';

const env = process.env;
const skip = env.OS_AUTH_URL && env.OS_USERNAME && env.OS_PASSWORD ? false : 'needs OS_AUTH_URL, OS_USERNAME and OS_PASSWORD (the openrc of ../shared/openstack-testbed)';

test("a cloud.conf in the Go plugin's format authenticates and reaches Cinder", { skip }, async () => {
  const lines = [
    '[Global]',
    `auth-url = ${env.OS_AUTH_URL}`,
    `username = ${env.OS_USERNAME}`,
    // Quoted, as gcfg allows, so that any character of the password survives.
    `password = "${env.OS_PASSWORD!.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
    env.OS_PROJECT_ID ? `tenant-id = ${env.OS_PROJECT_ID}` : `tenant-name = ${env.OS_PROJECT_NAME}`,
    `user-domain-name = ${env.OS_USER_DOMAIN_NAME ?? 'Default'}`,
    `tenant-domain-name = ${env.OS_PROJECT_DOMAIN_NAME ?? 'Default'}`,
    ...(env.OS_REGION_NAME ? [`region = ${env.OS_REGION_NAME}`] : []),
    '',
    '[BlockStorage]',
    'rescan-on-resize = true',
    'ignore-volume-az = true',
  ];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-cloud-conf-'));
  try {
    const file = path.join(dir, 'cloud.yaml'); // the Secret key deploy/ mounts; the content decides the format
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    const config = loadConfig({ file, env: {} });
    assert.equal(config.controller.topology, false);
    const cloud = createCloud(config.clouds[0], silentLogger);
    try {
      const features = await cloud.blockStorage.features();
      assert.ok(['2', '3'].includes(features.apiVersion));
      await cloud.blockStorage.listVolumes({ limit: 1 });
      assert.equal(cloud.health().ready, true);
    } finally {
      await cloud.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
