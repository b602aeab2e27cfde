// The driver under test runs as its own process, started exactly as the image
// and the manifests start it (`bin/cinder-csi serve --mode M --config FILE`;
// the launcher picks Node's flags for the mode), so its CPU time and memory are
// its own. The benchmark talks to it over real gRPC on a unix socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, type Stats } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import yaml from 'js-yaml';
import { loadCsi } from '../src/csi/proto';
import type { Simulator } from '../src/sim';
import { sampleProcess, type ProcSample } from './proc-stats';

export type DriverMode = 'controller' | 'node' | 'all';

export interface DriverProcessOptions {
  sim: Simulator;
  /** Working directory for the config, socket, logs and node state. */
  dir: string;
  mode: DriverMode;
  /** Which emulated instance the node side is. */
  instance?: number;
  logLevel?: 'debug' | 'info' | 'warn';
  /** Write a V8 CPU profile into this directory when the process exits. */
  cpuProfileDir?: string;
}

export interface CsiClients {
  identity: grpc.Client;
  controller: grpc.Client;
  node: grpc.Client;
}

/** Driver processes started and not yet exited: killed if the benchmark itself is interrupted. */
const live = new Set<ChildProcess>();

/** SIGTERM every driver still running (for an interrupted benchmark: they would outlive it). */
export function killAllDrivers(): void {
  for (const child of live) child.kill('SIGTERM');
}

export class DriverProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly socketPath: string,
    readonly logFile: string,
    readonly clients: CsiClients,
    /** ms from spawn until Probe first answered ready. */
    readonly readyAfterMs: number,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(opts: DriverProcessOptions): Promise<DriverProcess> {
    await mkdir(opts.dir, { recursive: true });
    const configFile = await writeDriverConfig(opts);
    const socketPath = path.join(opts.dir, 'csi.sock');
    const logFile = path.join(opts.dir, 'driver.log');
    const launcher = path.resolve(__dirname, '..', '..', 'bin', 'cinder-csi');
    const out = openSync(logFile, 'a');
    // Only our own variables: an OS_* from the caller's shell must not pick another cloud.
    // The launcher runs `node` from PATH: this Node's directory first, so it is the same Node.
    const env: NodeJS.ProcessEnv = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME };
    // NODE_OPTIONS refuses --cpu-prof; the launcher passes these on.
    if (opts.cpuProfileDir) env.CINDER_CSI_NODE_FLAGS = `--cpu-prof --cpu-prof-dir=${opts.cpuProfileDir}`;
    // A socket left by a driver that was killed: the new one replaces it, and only that one answers.
    const stale = await socketIdentity(socketPath);
    const started = performance.now();
    const child = spawn(
      launcher,
      ['serve', '--endpoint', `unix://${socketPath}`, '--mode', opts.mode, '--config', configFile, '--log-level', opts.logLevel ?? 'info'],
      { stdio: ['ignore', out, out], env },
    );
    closeSync(out);
    live.add(child);
    child.once('exit', () => live.delete(child));
    let clients: CsiClients;
    try {
      clients = await whenServing(child, socketPath, logFile, connect, closeClients, stale);
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
    return new DriverProcess(child, socketPath, logFile, clients, performance.now() - started);
  }

  sample(): ProcSample {
    return sampleProcess(this.pid);
  }

  /** Log lines written so far, parsed (the driver logs pino JSON). */
  async logLines(): Promise<Array<Record<string, unknown>>> {
    const text = await readFile(this.logFile, 'utf8');
    const lines: Array<Record<string, unknown>> = [];
    for (const l of text.split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(l));
      } catch {
        // a line cut by a concurrent write; not needed
      }
    }
    return lines;
  }

  /**
   * SIGKILL, as a crash or an OOM kill: nothing in the driver runs after it.
   * The signal goes before the clients close, so no call in flight is
   * cancelled first (a cancel would let the driver stop its work cleanly).
   */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGKILL');
      await done;
    }
    closeClients(this.clients);
  }

  /** SIGTERM and wait for a clean exit (the CPU profile is written then). */
  async stop(): Promise<void> {
    closeClients(this.clients);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await done;
    clearTimeout(timer);
  }
}

/**
 * Wait until a driver just spawned serves on `socketPath` (Probe answers ready) and return clients
 * opened on it; rejects if the process exits first (the caller kills it on a rejection).
 */
export async function whenServing<C extends { identity: grpc.Client }>(
  child: ChildProcess,
  socketPath: string,
  logFile: string,
  open: (address: string) => C,
  close: (clients: C) => void,
  /** socketIdentity() of the socket a killed driver left there, read before the spawn: not the new one. */
  stale?: string,
): Promise<C> {
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`driver exited during start-up (code ${code}, signal ${signal}); see ${logFile}`))),
  );
  exited.catch(() => undefined);
  let clients: C | undefined;
  try {
    // Connect only once the socket exists: a gRPC channel that fails to connect backs off
    // for a second, which would be counted as the driver's start-up time.
    await Promise.race([waitForFile(socketPath, 30_000, stale), exited]);
    clients = open(`unix://${socketPath}`);
    await Promise.race([waitReady(clients.identity, 30_000), exited]);
    return clients;
  } catch (e) {
    if (clients) close(clients);
    throw e;
  }
}

export function connect(address: string): CsiClients {
  const csi = loadCsi().csi.v1;
  const creds = grpc.credentials.createInsecure();
  // An unbounded ListVolumes over 10,000 volumes is larger than grpc's 4 MiB default.
  const options = { 'grpc.max_receive_message_length': -1 };
  return {
    identity: new csi.Identity(address, creds, options),
    controller: new csi.Controller(address, creds, options),
    node: new csi.Node(address, creds, options),
  };
}

function closeClients(c: CsiClients): void {
  c.identity.close();
  c.controller.close();
  c.node.close();
}

/** A unary RPC as a promise; rejects with the grpc ServiceError. */
export function rpc<Res = any>(client: grpc.Client, method: string, request: unknown, deadlineMs = 120_000): Promise<Res> {
  const fn = (client as unknown as Record<string, Function>)[method];
  const deadline = new Date(Date.now() + deadlineMs);
  return new Promise((resolve, reject) => {
    fn.call(client, request, { deadline }, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

/** Tells a file made again at the same path from the one before (the inode alone may be reused). */
const fileIdentity = (s: Stats): string => `${s.ino}:${s.ctimeMs}`;

/** The identity of the socket file at `socketPath` now (undefined when there is none), for whenServing's `stale`. */
export function socketIdentity(socketPath: string): Promise<string | undefined> {
  return stat(socketPath).then(fileIdentity, () => undefined);
}

/** Wait until the file exists (and is not the `stale` one). */
async function waitForFile(file: string, timeoutMs: number, stale?: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await stat(file).then((s) => fileIdentity(s) !== stale, () => false)) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`);
}

/** Probe until it says ready: the socket may not exist yet, and readiness needs a token. */
async function waitReady(identity: grpc.Client, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < until) {
    try {
      const res = await rpc<{ ready?: { value?: boolean } | null }>(identity, 'Probe', {}, 1000);
      if (res.ready?.value) return;
      last = 'not ready';
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`driver not ready after ${timeoutMs} ms: ${last}`);
}

/** The driver's YAML config: the simulator's clouds.yaml plus the node settings for one emulated instance. */
async function writeDriverConfig(opts: DriverProcessOptions): Promise<string> {
  const clientDir = path.join(opts.dir, 'client');
  await opts.sim.writeClientFiles(clientDir);
  const clouds = yaml.load(await readFile(path.join(clientDir, 'clouds.yaml'), 'utf8')) as { clouds: Record<string, unknown> };
  const instance = opts.sim.instances[opts.instance ?? 0];
  const doc = {
    clouds: clouds.clouds,
    driver: {
      node: {
        instance_id: instance.id,
        availability_zone: instance.availabilityZone,
        device_root: instance.deviceRoot,
        state_dir: path.join(opts.dir, 'node-state'),
        metadata_search_order: ['metadataService'],
        metadata_url: instance.metadataUrl,
      },
    },
  };
  const file = path.join(opts.dir, 'driver.yaml');
  await writeFile(file, yaml.dump(doc));
  return file;
}
