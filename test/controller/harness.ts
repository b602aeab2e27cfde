// Shared set-up for the controller tests: the driver in controller mode on a
// real unix socket with real gRPC clients, against the simulator, plus an
// OpenStack client of our own to look at what really exists in the
// simulated Cinder (through its HTTP API, as an operator would).
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import type { Cloud, Volume } from '../../src/openstack/types';
import type { SimOptions, Simulator } from '../../src/sim';
import type { DriverConfig } from '../../src/config/config';
import { GiB } from '../../src/csi/constants';
import { startTestDriver, type TestDriver } from '../helpers/driver';
import { expectCode } from '../helpers/grpc';

export { expectCode, GiB };
export const Code = grpc.status;

export interface ControllerHarness {
  driver: TestDriver;
  /** Our own client of the simulated cloud. */
  cloud: Cloud;
  /** Call a Controller RPC over gRPC. */
  rpc<Res = any>(method: string, request: unknown, deadlineMs?: number): Promise<Res>;
  /** Every volume in the simulated Cinder called `name`. */
  volumesNamed(name: string): Promise<Volume[]>;
  /** Create a volume through CreateVolume and return its ID. */
  createVolume(name: string, extra?: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

export const MOUNT_RWO = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
export const BLOCK_RWO = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
export const BLOCK_RWX = { block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };

export async function startController(
  opts: { sim?: SimOptions; simulator?: Simulator; configure?: (config: DriverConfig) => void } = {},
): Promise<ControllerHarness> {
  const driver = await startTestDriver({ mode: 'controller', sim: { hypervisor: false, ...opts.sim }, simulator: opts.simulator, configure: opts.configure });
  const cloud = createCloud(driver.sim.cloudConfig(), silentLogger);
  const rpc = <Res>(method: string, request: unknown, deadlineMs?: number) =>
    driver.call<Res>(driver.controller, method, request, { deadlineMs });
  return {
    driver,
    cloud,
    rpc,
    async volumesNamed(name) {
      const page = await cloud.blockStorage.listVolumes({ name });
      return page.items.filter((v) => v.name === name);
    },
    async createVolume(name, extra = {}) {
      const res = await rpc<any>('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB }, ...extra });
      return res.volume.volume_id as string;
    },
    async stop() {
      await cloud.close();
      await driver.stop();
    },
  };
}
