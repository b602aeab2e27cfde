// `cinder-csi demo`: one whole volume lifecycle, in the order Kubernetes calls
// the driver, with a timeline. Against a running driver (--endpoint), or, by
// default, against a driver and simulated OpenStack it starts in-process.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from '../csi/proto';
import { parseEndpoint } from './args';
import { createLogger } from '../log';
import { fromDocument } from '../config/config';
import { startDriver } from '../driver';
import { pointConfigAtSimulator } from './sim-config';

interface Step {
  name: string;
  ms: number;
  note?: string;
}

export async function runDemo(args: string[]): Promise<number> {
  let endpoint: string | undefined;
  const usage =
    'Usage: cinder-csi demo [--endpoint URL]\n' +
    '  One whole volume lifecycle, with a timeline: against the driver at URL (unix:///path or tcp://host:port),\n' +
    '  or, without --endpoint, against a driver and simulated OpenStack started in-process.\n';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--endpoint') endpoint = args[++i];
    else if (args[i] === '--help' || args[i] === '-h') {
      process.stdout.write(usage);
      return 0;
    } else {
      process.stderr.write(`cinder-csi demo: unknown argument '${args[i]}'\n${usage}`);
      return 2;
    }
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-demo-'));
  let stopLocal: (() => Promise<void>) | undefined;
  try {
    if (!endpoint) {
      const local = await startLocal(work);
      endpoint = local.endpoint;
      stopLocal = local.stop;
    }
    const parsed = parseEndpoint(endpoint);
    if (parsed.kind === 'unix' && !existsSync(parsed.path)) {
      process.stderr.write(
        `cinder-csi demo: nothing serves ${parsed.path}; start the driver first (npm start), or run 'cinder-csi demo' without --endpoint to start one in-process\n`,
      );
      return 1;
    }
    return await lifecycle(endpoint, work);
  } catch (e) {
    const err = e as grpc.ServiceError;
    // A socket file with no server behind it (a driver that was killed): grpc's own words are about channels.
    const nobody = err.code === grpc.status.UNAVAILABLE && /ECONNREFUSED|ENOENT|No connection established/.test(err.details ?? '');
    const message = nobody ? `nothing answers on ${endpoint}; start the driver first (npm start)` : (err.details ?? err.message);
    process.stderr.write(`cinder-csi demo: ${message}\n`);
    return 1;
  } finally {
    await stopLocal?.().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function startLocal(work: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const { startSimulator } = await import('../sim');
  // Devices where root can make loop devices; otherwise the APIs only, and the demo skips the node steps.
  const sim = await startSimulator({ stateDir: path.join(work, 'sim') });
  const instance = sim.instances[0];
  const config = fromDocument({}, 'the demo', {});
  pointConfigAtSimulator(config, sim, instance, path.join(work, 'node-state'));
  const socket = path.join(work, 'csi.sock');
  const driver = await startDriver({
    mode: sim.hypervisor ? 'all' : 'controller',
    endpoint: { kind: 'unix', path: socket },
    config,
    logger: createLogger({ level: 'warn' }),
  });
  return {
    endpoint: `unix://${socket}`,
    stop: async () => {
      await driver.stop(5000);
      await sim.stop();
    },
  };
}

async function lifecycle(endpoint: string, work: string): Promise<number> {
  const csi = loadCsi().csi.v1;
  const address = endpoint.startsWith('tcp://') ? endpoint.slice('tcp://'.length) : endpoint;
  const creds = grpc.credentials.createInsecure();
  const identity = new csi.Identity(address, creds);
  const controller = new csi.Controller(address, creds);
  const node = new csi.Node(address, creds);
  const steps: Step[] = [];
  const t0 = performance.now();
  /** The step running now: named when it fails. */
  let current = '';
  const step = async <T>(name: string, fn: () => Promise<T>, note?: (r: T) => string): Promise<T> => {
    current = name;
    const start = performance.now();
    const result = await fn();
    steps.push({ name, ms: performance.now() - start, note: note?.(result) });
    const s = steps[steps.length - 1];
    process.stdout.write(`${(performance.now() - t0).toFixed(0).padStart(7)} ms  ${name.padEnd(28)} ${s.ms.toFixed(0).padStart(6)} ms  ${s.note ?? ''}\n`);
    return result;
  };
  const rpc = <T = any>(client: grpc.Client, method: string, req: unknown) =>
    new Promise<T>((resolve, reject) => {
      (client as any)[method](req, { deadline: new Date(Date.now() + 120_000) }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(err) : resolve(res),
      );
    });
  /**
   * What a CO would undo if a later step failed, newest first: each step that
   * makes something registers the call that takes it away, and the lifecycle's
   * own call of it takes the entry off.
   */
  const undo: Array<{ name: string; run: () => Promise<unknown> }> = [];
  const undoWith = (name: string, run: () => Promise<unknown>) => undo.unshift({ name, run });
  const undone = async <T>(name: string, fn: () => Promise<T>, note?: (r: T) => string): Promise<T> => {
    const result = await step(name, fn, note);
    const at = undo.findIndex((u) => u.name === name);
    if (at >= 0) undo.splice(at, 1);
    return result;
  };

  try {
    await step('GetPluginInfo', () => rpc(identity, 'GetPluginInfo', {}), (r: any) => `${r.name} ${r.vendor_version}`);
    const caps = await rpc<any>(identity, 'GetPluginCapabilities', {});
    // Why there is no node side, when there is none: a controller-only driver, or a node side that cannot serve.
    const nodeProblem = await rpc(node, 'NodeGetCapabilities', {}).then(
      () => undefined,
      (e: grpc.ServiceError) =>
        e.code === grpc.status.UNIMPLEMENTED
          ? 'no node service at this endpoint (a driver serving the controller only: --mode controller, or npm start without root or where loop devices cannot be made)'
          : `the node service answered ${grpc.status[e.code]}: ${e.details}`,
    );
    const hasNode = nodeProblem === undefined;
    const hasController = caps.capabilities.some((c: any) => c.service?.type === 'CONTROLLER_SERVICE');
    if (!hasController) throw new Error('the driver at this endpoint runs no controller; start it with --mode all or controller');
    const nodeInfo = hasNode ? await step('NodeGetInfo', () => rpc<any>(node, 'NodeGetInfo', {}), (r) => `node ${r.node_id}`) : undefined;
    const mountCap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    const created = await step(
      'CreateVolume',
      () => rpc<any>(controller, 'CreateVolume', { name: `demo-${process.pid}-${Date.now()}`, capacity_range: { required_bytes: 1024 ** 3 }, volume_capabilities: [mountCap] }),
      (r) => `volume ${r.volume.volume_id}`,
    );
    const volumeId: string = created.volume.volume_id;
    undoWith('DeleteVolume', () => rpc(controller, 'DeleteVolume', { volume_id: volumeId }));
    if (nodeInfo) {
      const published = await step('ControllerPublishVolume', () =>
        rpc<any>(controller, 'ControllerPublishVolume', { volume_id: volumeId, node_id: nodeInfo.node_id, volume_capability: mountCap }),
        (r) => JSON.stringify(r.publish_context),
      );
      undoWith('ControllerUnpublishVolume', () => rpc(controller, 'ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeInfo.node_id }));
      const staging = path.join(work, 'staging');
      const target = path.join(work, 'target');
      await mkdir(staging, { recursive: true }); // the CO's job: it creates the staging directory
      await step('NodeStageVolume', () =>
        rpc(node, 'NodeStageVolume', { volume_id: volumeId, publish_context: published.publish_context, staging_target_path: staging, volume_capability: mountCap, volume_context: created.volume.volume_context }),
      );
      undoWith('NodeUnstageVolume', () => rpc(node, 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging }));
      await step('NodePublishVolume', () =>
        rpc(node, 'NodePublishVolume', { volume_id: volumeId, publish_context: published.publish_context, staging_target_path: staging, target_path: target, volume_capability: mountCap }),
      );
      undoWith('NodeUnpublishVolume', () => rpc(node, 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target }));
      await step('write and read a file', async () => {
        await writeFile(path.join(target, 'hello.txt'), 'hello from cinder-csi\n');
        return readFile(path.join(target, 'hello.txt'), 'utf8');
      }, (s) => JSON.stringify(s.trim()));
      await step('NodeGetVolumeStats', () => rpc<any>(node, 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: target }), (r) =>
        r.usage.map((u: any) => `${u.unit} ${u.used}/${u.total}`).join(', '),
      );
      await undone('NodeUnpublishVolume', () => rpc(node, 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target }));
      await undone('NodeUnstageVolume', () => rpc(node, 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging }));
      await undone('ControllerUnpublishVolume', () => rpc(controller, 'ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeInfo.node_id }));
    } else {
      process.stdout.write(`          (${nodeProblem}; skipping attach, mount and I/O)\n`);
    }
    await step('ControllerExpandVolume', () =>
      rpc<any>(controller, 'ControllerExpandVolume', { volume_id: volumeId, capacity_range: { required_bytes: 2 * 1024 ** 3 }, volume_capability: mountCap }),
      (r) => `${r.capacity_bytes / 1024 ** 3} GiB`,
    );
    const snap = await step('CreateSnapshot', () => rpc<any>(controller, 'CreateSnapshot', { source_volume_id: volumeId, name: `demo-snap-${Date.now()}` }), (r) =>
      `snapshot ${r.snapshot.snapshot_id} ready=${r.snapshot.ready_to_use}`,
    );
    undoWith('DeleteSnapshot', () => rpc(controller, 'DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id }));
    await step('wait for the snapshot', async () => {
      for (;;) {
        const r = await rpc<any>(controller, 'ListSnapshots', { snapshot_id: snap.snapshot.snapshot_id });
        if (r.entries[0]?.snapshot?.ready_to_use) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
    });
    await undone('DeleteSnapshot', () => rpc(controller, 'DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id }));
    await undone('DeleteVolume', () => rpc(controller, 'DeleteVolume', { volume_id: volumeId }));
    process.stdout.write(`\nlifecycle complete in ${(performance.now() - t0).toFixed(0)} ms\n`);
    return 0;
  } catch (e) {
    // Nothing made yet: said as any other failure (runDemo).
    if (undo.length === 0) throw e;
    // The step's own error first, then the clean-up a CO would do, so nothing is left attached or mounted.
    const failed = current;
    process.stderr.write(`cinder-csi demo: ${failed} failed: ${describe(e)}\n`);
    if (undo.length > 0) process.stdout.write('cleaning up:\n');
    for (const u of [...undo]) {
      await step(u.name, u.run).catch((err: unknown) => process.stderr.write(`cinder-csi demo: clean-up ${u.name} failed too: ${describe(err)}\n`));
    }
    return 1;
  } finally {
    identity.close();
    controller.close();
    node.close();
  }
}

/** A gRPC status as its code name and message; anything else as its message. */
function describe(e: unknown): string {
  const err = e as grpc.ServiceError;
  return typeof err.code === 'number' && err.details !== undefined ? `${grpc.status[err.code]}: ${err.details}` : (err as Error).message;
}
