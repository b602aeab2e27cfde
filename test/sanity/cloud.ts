// The sanity suite's target on a real cloud: the driver in 'controller' mode
// (as `cinder-csi serve --mode controller` runs it) against the cloud the
// environment names (OS_* or clouds.yaml, read by the driver's own config
// loader: see test/openstack/cloud-env.ts). There is no node service on a
// real cloud here, so ControllerPublishVolume is given $TESTBED_SERVER_ID,
// with the topology of its availability zone. csi-sanity's
// TestVolumeMutableParameters name a volume type the suite makes as the admin
// (TESTBED_ADMIN_*) and removes at the end; without an admin those cases skip.
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createLogger, silentLogger } from '../../src/log';
import { fromDocument } from '../../src/config/config';
import { startDriver } from '../../src/driver';
import { createCloud } from '../../src/openstack/cloud';
import { TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { CLUSTER_METADATA_KEY } from '../../src/controller/params';
import { call, connect } from '../helpers/grpc';
import { adminSkipReason, adminVolumeApi, cloudConfigFromEnv } from '../openstack/cloud-env';
import { capabilitiesOf, type NodeInfo, type SanityDriver, type Suite, type SuiteTarget } from './harness';

/** Real Cinder and Nova take seconds, not milliseconds. */
const DEADLINE_MS = 120_000;
const RUN = randomUUID().slice(0, 8);
let started = 0;

async function startCloudSuite(): Promise<Suite> {
  const cloudConfig = cloudConfigFromEnv();
  const serverId = process.env.TESTBED_SERVER_ID;
  if (!cloudConfig || !serverId) throw new Error('no cloud configured (see cloudSkipReason)');
  const n = ++started;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sanity-cloud-'));
  const config = fromDocument({}, 'sanity on a real cloud', {});
  config.clouds = [cloudConfig];
  // Every volume and snapshot this suite makes carries it: what the sweep at stop() looks for.
  config.clusterId = `sanity-${RUN}-${n}`;
  const socketPath = path.join(workDir, 'csi.sock');
  const running = await startDriver({
    mode: 'controller',
    endpoint: { kind: 'unix', path: socketPath },
    config,
    logger: createLogger({ level: process.env.CINDER_CSI_TEST_LOG === 'debug' ? 'debug' : 'silent' }),
  });
  const clients = connect(`unix://${socketPath}`);
  const cloud = createCloud(cloudConfig, silentLogger);

  let typeId: string | undefined;
  let mutableParameters: Suite['mutableParameters'];
  const noAdmin = adminSkipReason();
  if (noAdmin) mutableParameters = { skip: noAdmin };
  else {
    // A second type on the same backend: the retype needs no migration.
    const admin = await adminVolumeApi();
    try {
      const name = `sanity-fast-${RUN}-${n}`;
      // With a description, as every type the conformance scenario (which may run meanwhile) compares with the simulator's.
      const made = await admin.call('POST', '/types', { volume_type: { name, description: 'csi-sanity mutable parameters', 'os-volume-type-access:is_public': true } });
      typeId = made.volume_type.id;
      mutableParameters = { type: name };
    } finally {
      await admin.close();
    }
  }

  const driver: SanityDriver = {
    identity: clients.identity,
    controller: clients.controller,
    node: clients.node,
    call: (client, method, request, o) => call(client, method, request, { deadlineMs: DEADLINE_MS, ...o }),
    async stop() {
      clients.close();
      await running.stop(5_000);
    },
  };

  /** What a failed case left behind, removed through Cinder and Nova directly. */
  const sweep = async () => {
    const signal = () => AbortSignal.timeout(60_000);
    const left = (await cloud.blockStorage.listVolumes({ metadata: { [CLUSTER_METADATA_KEY]: config.clusterId } })).items;
    for (const v of left) {
      for (const s of (await cloud.blockStorage.listSnapshots({ volumeId: v.id })).items) {
        await cloud.blockStorage.deleteSnapshot(s.id).catch(() => undefined);
        await cloud.waiter.snapshot(s.id, { target: [], transient: ['deleting', 'available', 'error', 'creating'], goneIsTarget: true }, { signal: signal() }).catch(() => undefined);
      }
      if (v.attachments.length > 0) {
        await cloud.compute.detachVolume(serverId, v.id).catch(() => undefined);
        await cloud.waiter.volume(v.id, { target: ['available', 'error'], transient: ['in-use', 'detaching', 'attaching', 'reserved', 'extending'] }, { signal: signal() }).catch(() => undefined);
      }
      await cloud.blockStorage.deleteVolume(v.id).catch(() => undefined);
      await cloud.waiter.volume(v.id, { target: [], transient: ['deleting', 'available', 'error', 'error_deleting'], goneIsTarget: true }, { signal: signal() }).catch(() => undefined);
    }
  };

  return {
    driver,
    ...(await capabilitiesOf(driver, false)),
    nodeService: false,
    async nodeInfo(): Promise<NodeInfo> {
      const server = await cloud.compute.getServer(serverId);
      return { node_id: serverId, accessible_topology: server.availabilityZone ? { segments: { [TOPOLOGY_ZONE_KEY]: server.availabilityZone } } : null };
    },
    mutableParameters,
    workDir,
    async stop() {
      try {
        await driver.stop();
        await sweep();
        if (typeId) {
          const admin = await adminVolumeApi();
          await admin.call('DELETE', `/types/${typeId}`).finally(() => admin.close());
        }
      } finally {
        await cloud.close();
        await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}

export const cloudTarget: SuiteTarget = { name: 'real cloud', start: startCloudSuite };
