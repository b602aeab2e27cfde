// Start the whole driver the way `cinder-csi serve --sim` does, on a unix
// socket in a temp directory, against a simulated OpenStack, with real gRPC
// clients. Controller and end-to-end tests use this.
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { createLogger, type LogLevel } from '../../src/log';
import { fromDocument, type DriverConfig } from '../../src/config/config';
import { startDriver, type IdentityRetry, type RunningDriver } from '../../src/driver';
import type { Mode } from '../../src/cli/args';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim';
import { pointConfigAtSimulator } from '../../src/cli/sim-config';
import { call, connect, type CallOptions, type CsiClients } from './grpc';

export interface TestDriverOptions {
  mode?: Mode;
  /** Options for a simulator started for this driver (ignored when `simulator` is given). */
  sim?: SimOptions;
  /** Use an existing simulator (not stopped by stop()). */
  simulator?: Simulator;
  /** Which emulated instance the node side is (index into sim.instances), default 0. */
  instance?: number;
  /** Adjust the config after it is built from the simulator. */
  configure?: (config: DriverConfig) => void;
  logLevel?: LogLevel;
  /** Passed to startDriver. */
  identityTimeoutMs?: number;
  identityRetry?: IdentityRetry;
}

export interface TestDriver {
  socketPath: string;
  sim: Simulator;
  config: DriverConfig;
  driver: RunningDriver;
  identity: grpc.Client;
  controller: grpc.Client;
  node: grpc.Client;
  /** Every log line the driver wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** The same lines as written (JSON.parse hides a key written twice). */
  rawLogs: string[];
  call<Res = any>(client: grpc.Client, method: string, request: unknown, opts?: CallOptions): Promise<Res>;
  stop(): Promise<void>;
}

export async function startTestDriver(opts: TestDriverOptions = {}): Promise<TestDriver> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-test-'));
  const ownSim = !opts.simulator;
  const sim = opts.simulator ?? (await startSimulator({ stateDir: path.join(dir, 'sim'), ...opts.sim }));
  const instance = sim.instances[opts.instance ?? 0];
  const config = fromDocument({}, 'test', {});
  pointConfigAtSimulator(config, sim, instance, path.join(dir, 'node-state'));
  opts.configure?.(config);

  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        rawLogs.push(line);
        logs.push(JSON.parse(line));
      }
      cb();
    },
  });
  const logger = createLogger({ level: opts.logLevel ?? 'info', destination });
  const socketPath = path.join(dir, 'csi.sock');
  let driver: RunningDriver;
  try {
    driver = await startDriver({
      mode: opts.mode ?? 'all',
      endpoint: { kind: 'unix', path: socketPath },
      config,
      logger,
      ...(opts.identityTimeoutMs !== undefined ? { identityTimeoutMs: opts.identityTimeoutMs } : {}),
      ...(opts.identityRetry ? { identityRetry: opts.identityRetry } : {}),
    });
  } catch (e) {
    if (ownSim) await sim.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const clients: CsiClients = connect(`unix://${socketPath}`);
  return {
    socketPath,
    sim,
    config,
    driver,
    rawLogs,
    identity: clients.identity,
    controller: clients.controller,
    node: clients.node,
    logs,
    call: (client, method, request, o) => call(client, method, request, o),
    async stop() {
      clients.close();
      await driver.stop(5000);
      if (ownSim) await sim.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
