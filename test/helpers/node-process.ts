// The node plugin as its own process, started as the DaemonSet starts it
// (`bin/cinder-csi serve --mode node --config FILE`, a config holding only a
// `driver:` section), and crashed as a pod dies: SIGKILL to its whole process
// group, so the mkfs or mount it is running dies with it, as every process of
// a container dies with it. A restart with the same directory keeps the
// state directory and the socket path, as a restarted pod does.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yaml from 'js-yaml';
import type { SimInstance } from '../../src/sim';
import { socketIdentity, whenServing } from '../../bench/driver-process';
import { call, connect, type CsiClients } from './grpc';

export interface NodePluginOptions {
  instance: SimInstance;
  /** Config, socket, log and state directory; the same one for a restart. */
  dir: string;
  /** Directories put first on the plugin's PATH (for test doubles of the commands it runs). */
  pathPrefix?: string[];
}

export class NodePluginProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    private readonly clients: CsiClients,
    /** Where its output goes, for a look after a failure. */
    readonly logFile: string,
  ) {}

  static async start(opts: NodePluginOptions): Promise<NodePluginProcess> {
    await mkdir(opts.dir, { recursive: true });
    const config = path.join(opts.dir, 'node.yaml');
    const node = {
      instance_id: opts.instance.id,
      availability_zone: opts.instance.availabilityZone,
      device_root: opts.instance.deviceRoot,
      state_dir: path.join(opts.dir, 'node-state'),
      metadata_search_order: ['metadataService'],
      metadata_url: opts.instance.metadataUrl,
    };
    await writeFile(config, yaml.dump({ driver: { node } }));
    const socket = path.join(opts.dir, 'csi.sock');
    const logFile = path.join(opts.dir, 'plugin.log');
    const launcher = path.resolve(__dirname, '..', '..', '..', 'bin', 'cinder-csi');
    const out = openSync(logFile, 'a');
    const stale = await socketIdentity(socket); // a restart after crash(): the killed plugin's socket is still there
    const PATH = [...(opts.pathPrefix ?? []), path.dirname(process.execPath), process.env.PATH ?? ''].join(':');
    // detached: its own process group, so that crash() takes its children with it.
    const child = spawn(launcher, ['serve', '--endpoint', `unix://${socket}`, '--mode', 'node', '--config', config, '--log-level', 'debug'], {
      stdio: ['ignore', out, out],
      env: { PATH, HOME: process.env.HOME },
      detached: true,
    });
    closeSync(out);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let clients: CsiClients;
    try {
      clients = await whenServing(child, socket, logFile, connect, (c) => c.close(), stale);
    } catch (e) {
      killGroup(child, 'SIGKILL');
      throw e;
    }
    return new NodePluginProcess(child, exited, clients, logFile);
  }

  /** A Node RPC; rejects with the gRPC error. */
  call<Res = any>(method: string, request: unknown, deadlineMs = 60_000): Promise<Res> {
    return call<Res>(this.clients.node, method, request, { deadlineMs });
  }

  /** SIGKILL the plugin and everything it started, and wait until it is gone. */
  async crash(): Promise<void> {
    // The signal before the clients close: a cancelled call would let the plugin tidy up first.
    killGroup(this.child, 'SIGKILL');
    await this.exited;
    this.closeClients();
  }

  /** A clean stop (SIGTERM), or a crash if that takes too long. Safe to call twice. */
  async stop(): Promise<void> {
    this.closeClients();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    killGroup(this.child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  private closeClients(): void {
    this.clients.close();
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}
