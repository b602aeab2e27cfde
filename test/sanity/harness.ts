// The shared machinery of the conformance suite that mirrors csi-sanity
// (kubernetes-csi/csi-test, pkg/sanity): one driver, in 'all' mode against its
// own simulated OpenStack (startSuite) or in 'controller' mode against a real
// cloud (cloud.ts), the per-test staging and target directories
// csi-sanity makes, the IDs it invents for objects that do not exist, and a
// resource tracker that undoes everything a test created, in reverse order,
// the way csi-sanity's cleanup does (and fails the test when that undoing
// fails).
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startTestDriver } from '../helpers/driver';
import { expectCode, type CallOptions } from '../helpers/grpc';
import { run } from '../../src/util/exec';

export const GiB = 1024 ** 3;
export const Code = grpc.status;
export const isRoot = process.getuid?.() === 0;
export const NEEDS_ROOT = 'needs root: the node side uses loop devices and mounts';

/** csi-sanity's TestVolumeSize default (10 GiB). */
export const VOLUME_SIZE = 10 * GiB;
/** csi-sanity's default expansion target: the test size plus 1 GiB. */
export const EXPAND_SIZE = VOLUME_SIZE + GiB;
/**
 * csi-sanity's TestVolumeMutableParameters on the simulator: our only mutable
 * parameter is the Cinder type, and this is one that `cinder-csi serve --sim`
 * has too, so the same file works against the real binary.
 */
const SIM_MUTABLE_PARAMETERS = { type: 'multiattach' };
/** csi-sanity's IdempotentCount default. */
export const IDEMPOTENT_COUNT = 10;
/** csi-sanity's limit on the length of names it sends. */
export const MAX_NAME_LENGTH = 128;

/** A mount capability without fs_type or flags, as csi-sanity sends it. */
export function mountCapability(mode = 'SINGLE_NODE_WRITER'): Record<string, unknown> {
  return { mount: {}, access_mode: { mode } };
}

const suffix = `-${randomBytes(4).toString('hex').toUpperCase()}-${randomBytes(4).toString('hex').toUpperCase()}`;

/** A name unique to this run: the prefix and a random suffix. */
export function uniqueName(prefix: string): string {
  return prefix + suffix;
}

/** A unique name of exactly `length` characters (the prefix padded with 'X', the random part last). */
export function uniqueNameOfLength(prefix: string, length: number): string {
  const tail = suffix;
  return (prefix + 'X'.repeat(Math.max(0, length))).slice(0, length - tail.length) + tail;
}

/** The IDs csi-sanity's default generator makes for objects that do not exist. */
export const fakeIds = {
  volume: () => `fake-vol-id-${randomUUID().slice(0, 10)}`,
  invalidVolume: () => 'fake-vol-id',
  node: () => `fake-node-id-${randomUUID().slice(0, 10)}`,
};

/** The request csi-sanity's MakeCreateVolumeReq builds. */
export function createVolumeRequest(name: string): Record<string, any> {
  return {
    name,
    volume_capabilities: [mountCapability()],
    capacity_range: { required_bytes: VOLUME_SIZE, limit_bytes: VOLUME_SIZE },
    parameters: {},
  };
}

/** The RPC failed with this code and no response came back. */
export function expectError(promise: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  return expectCode(promise, code);
}

/** The driver as the suite talks to it: gRPC clients on its socket. */
export interface SanityDriver {
  identity: grpc.Client;
  controller: grpc.Client;
  node: grpc.Client;
  call<Res = any>(client: grpc.Client, method: string, request: unknown, opts?: CallOptions): Promise<Res>;
  stop(): Promise<void>;
}

/** What NodeGetInfo answers (or, without a node service, the node to publish to). */
export interface NodeInfo {
  node_id: string;
  accessible_topology?: { segments: Record<string, string> } | null;
  /** int64 on the wire: a string or a number, as the client decodes it. */
  max_volumes_per_node?: number | string;
}

export interface Suite {
  driver: SanityDriver;
  controllerCaps: Set<string>;
  nodeCaps: Set<string>;
  pluginServices: Set<string>;
  /** Whether the driver serves the Node service (not in controller mode). */
  nodeService: boolean;
  /** The node ControllerPublishVolume is given, with its topology: NodeGetInfo where there is a node service. */
  nodeInfo(): Promise<NodeInfo>;
  /** csi-sanity's TestVolumeMutableParameters, or a reason why this target has none. */
  mutableParameters: Record<string, string> | { skip: string };
  /** Where each test's directories go. */
  workDir: string;
  stop(): Promise<void>;
}

/** How a set of cases gets its suite: a name for the describe titles ('' for the simulator) and a starter. */
export interface SuiteTarget {
  name: string;
  start(): Promise<Suite>;
}

/** The target's suite, started before the enclosing describe's tests and stopped after them. */
export function suiteOf(target: SuiteTarget): { readonly suite: Suite } {
  const holder = { suite: undefined as unknown as Suite };
  before(async () => {
    holder.suite = await target.start();
  });
  after(() => holder.suite?.stop());
  return holder;
}

/** A describe title for this target. */
export function titled(title: string, target: SuiteTarget): string {
  return target.name ? `${title} (${target.name})` : title;
}

/** The capabilities the driver advertises, read as csi-sanity reads them. */
export async function capabilitiesOf(driver: SanityDriver, nodeService: boolean): Promise<Pick<Suite, 'controllerCaps' | 'nodeCaps' | 'pluginServices'>> {
  const c = await driver.call(driver.controller, 'ControllerGetCapabilities', {});
  const n = nodeService ? await driver.call(driver.node, 'NodeGetCapabilities', {}) : { capabilities: [] };
  const p = await driver.call(driver.identity, 'GetPluginCapabilities', {});
  return {
    controllerCaps: new Set((c.capabilities ?? []).map((x: any) => x.rpc?.type)),
    nodeCaps: new Set((n.capabilities ?? []).map((x: any) => x.rpc?.type)),
    pluginServices: new Set((p.capabilities ?? []).map((x: any) => x.service?.type).filter(Boolean)),
  };
}

/** The driver in 'all' mode against its own simulator. */
export async function startSuite(): Promise<Suite> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sanity-'));
  let driver: SanityDriver;
  try {
    driver = await startTestDriver({
      mode: 'all',
      sim: { hypervisor: isRoot },
    });
  } catch (e) {
    await rm(workDir, { recursive: true, force: true });
    throw e;
  }
  return {
    driver,
    ...(await capabilitiesOf(driver, true)),
    nodeService: true,
    nodeInfo: () => driver.call<NodeInfo>(driver.node, 'NodeGetInfo', {}),
    mutableParameters: SIM_MUTABLE_PARAMETERS,
    workDir,
    async stop() {
      try {
        await driver.stop();
      } finally {
        await forceUnmountUnder(workDir);
        await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}

export const simulatorTarget: SuiteTarget = { name: '', start: startSuite };

/** Mount points under dir, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
}

async function forceUnmountUnder(dir: string): Promise<void> {
  if (!isRoot) return;
  for (const m of await mountsUnder(dir)) await run('umount', ['-l', m]).catch(() => undefined);
}

type ResourceEntry = { kind: 'volume'; id: string; nodeId?: string } | { kind: 'snapshot'; id: string };

/**
 * What one test created. Every successful create or publish is recorded, the
 * way csi-sanity records it (a volume created twice is recorded twice), and
 * cleanup() undoes them newest first: for a volume NodeUnpublishVolume on
 * the target, NodeUnstageVolume on the staging path (NOT_FOUND tolerated for
 * both), ControllerUnpublishVolume when it was published, DeleteVolume; for a
 * snapshot DeleteSnapshot. Any other failure fails the test.
 */
export class Resources {
  private entries: ResourceEntry[] = [];

  constructor(
    readonly suite: Suite,
    readonly paths: TestPaths,
  ) {}

  get driver(): SanityDriver {
    return this.suite.driver;
  }

  controller<Res = any>(method: string, request: unknown): Promise<Res> {
    return this.driver.call<Res>(this.driver.controller, method, request);
  }

  node<Res = any>(method: string, request: unknown): Promise<Res> {
    return this.driver.call<Res>(this.driver.node, method, request);
  }

  identity<Res = any>(method: string, request: unknown): Promise<Res> {
    return this.driver.call<Res>(this.driver.identity, method, request);
  }

  async createVolume(req: Record<string, unknown>): Promise<any> {
    const res = await this.controller('CreateVolume', req);
    if (res?.volume?.volume_id) this.entries.push({ kind: 'volume', id: res.volume.volume_id });
    return res;
  }

  async mustCreateVolume(req: Record<string, unknown>): Promise<any> {
    const res = await this.createVolume(req);
    assert.ok(res?.volume, 'CreateVolume returned a volume');
    assert.ok(res.volume.volume_id, 'the volume has an ID');
    return res;
  }

  async deleteVolume(req: { volume_id: string }): Promise<any> {
    const res = await this.controller('DeleteVolume', req);
    this.forget(req.volume_id);
    return res;
  }

  async controllerPublish(req: { volume_id?: string; node_id?: string } & Record<string, unknown>): Promise<any> {
    const res = await this.controller('ControllerPublishVolume', req);
    if (req.volume_id && req.node_id) this.entries.push({ kind: 'volume', id: req.volume_id, nodeId: req.node_id });
    return res;
  }

  async createSnapshot(req: Record<string, unknown>): Promise<any> {
    const res = await this.controller('CreateSnapshot', req);
    if (res?.snapshot?.snapshot_id) this.entries.push({ kind: 'snapshot', id: res.snapshot.snapshot_id });
    return res;
  }

  async mustCreateSnapshot(req: Record<string, unknown>): Promise<any> {
    const res = await this.createSnapshot(req);
    verifySnapshot(res?.snapshot);
    return res;
  }

  /** A volume from volReq, then a snapshot of it called snapshotName. */
  async mustCreateSnapshotFromVolume(volReq: Record<string, unknown>, snapshotName: string): Promise<{ snapshot: any; volume: any }> {
    const volume = await this.mustCreateVolume(volReq);
    const snapshot = await this.mustCreateSnapshot({ name: snapshotName, source_volume_id: volume.volume.volume_id, parameters: {} });
    return { snapshot, volume };
  }

  async deleteSnapshot(req: { snapshot_id: string }): Promise<any> {
    const res = await this.controller('DeleteSnapshot', req);
    this.forget(req.snapshot_id);
    return res;
  }

  private forget(id: string): void {
    const i = this.entries.findIndex((e) => e.id === id);
    if (i >= 0) this.entries.splice(i, 1);
  }

  async cleanup(): Promise<void> {
    const failures: string[] = [];
    // A failure is recorded unless it is NOT_FOUND and that is tolerated (node-side undo of something never done).
    const attempt = async (what: string, p: Promise<unknown>, tolerateNotFound = false) => {
      try {
        await p;
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (!(tolerateNotFound && err.code === Code.NOT_FOUND)) failures.push(`${what}: ${grpc.status[err.code] ?? err.code} ${err.details ?? err.message}`);
      }
    };
    const entries = this.entries;
    this.entries = [];
    for (const e of entries.reverse()) {
      if (e.kind === 'snapshot') {
        await attempt(`DeleteSnapshot ${e.id}`, this.controller('DeleteSnapshot', { snapshot_id: e.id }));
        continue;
      }
      if (this.suite.nodeService) {
        await attempt(`NodeUnpublishVolume ${e.id}`, this.node('NodeUnpublishVolume', { volume_id: e.id, target_path: this.paths.target }), true);
      }
      if (this.suite.nodeService && this.suite.nodeCaps.has('STAGE_UNSTAGE_VOLUME')) {
        await attempt(`NodeUnstageVolume ${e.id}`, this.node('NodeUnstageVolume', { volume_id: e.id, staging_target_path: this.paths.staging }), true);
      }
      if (e.nodeId) await attempt(`ControllerUnpublishVolume ${e.id}`, this.controller('ControllerUnpublishVolume', { volume_id: e.id, node_id: e.nodeId }));
      await attempt(`DeleteVolume ${e.id}`, this.controller('DeleteVolume', { volume_id: e.id }));
    }
    if (failures.length > 0) throw new Error(`resource cleanup failed:\n  ${failures.join('\n  ')}`);
  }
}

export function verifySnapshot(snapshot: any): void {
  assert.ok(snapshot, 'a snapshot is returned');
  assert.ok(snapshot.snapshot_id, 'the snapshot has an ID');
  assert.ok(snapshot.source_volume_id, 'the snapshot names its source volume');
  assert.ok(snapshot.creation_time && (Number(snapshot.creation_time.seconds) > 0 || snapshot.creation_time.nanos > 0), 'the snapshot has a creation time');
}

export interface TestPaths {
  /** csi-sanity's TargetPath: the parent of the target, made by the test. */
  targetParent: string;
  /** What NodePublishVolume is given: `<TargetPath>/target`, which the driver makes. */
  target: string;
  /** csi-sanity's StagingPath: made by the test. */
  staging: string;
}

let serial = 0;

/**
 * Run one csi-sanity case: make the target's parent and the staging
 * directory (mkdir, not recursive, as csi-sanity does), run the body with a
 * fresh resource tracker, then clean up the resources and remove both
 * directories. A mount the driver left under them fails the test (and is
 * undone so the next test starts clean).
 */
export async function withTest(suite: Suite, body: (r: Resources) => Promise<void>): Promise<void> {
  const base = path.join(suite.workDir, `t${++serial}`);
  await mkdir(base);
  const paths: TestPaths = {
    targetParent: path.join(base, 'csi-mount'),
    target: path.join(base, 'csi-mount', 'target'),
    staging: path.join(base, 'csi-staging'),
  };
  await mkdir(paths.targetParent);
  await mkdir(paths.staging);
  const r = new Resources(suite, paths);
  let failure: unknown;
  try {
    await body(r);
  } catch (e) {
    failure = e;
  }
  try {
    await r.cleanup();
  } catch (e) {
    failure ??= e;
  }
  if (isRoot) {
    const left = await mountsUnder(base);
    if (left.length > 0) {
      await forceUnmountUnder(base);
      failure ??= new Error(`mounts left behind after cleanup: ${left.join(', ')}`);
    }
  }
  // csi-sanity removes both directories with a plain rmdir and ignores a failure, but it makes them
  // at fixed paths with a plain mkdir before each test: whatever the driver left in them (the target
  // it made, a file) fails every test after this one. Here it fails this one.
  for (const dir of [paths.targetParent, paths.staging]) {
    await rmdir(dir).catch(async (e: NodeJS.ErrnoException) => {
      const left = e.code === 'ENOTEMPTY' ? await readdir(dir).catch(() => []) : [];
      failure ??= new Error(`cannot remove ${dir} after the test (${e.code}${left.length > 0 ? `: ${left.join(', ')} left in it` : ''}); csi-sanity's next test could not make it`);
    });
  }
  await rm(base, { recursive: true, force: true }).catch(() => undefined);
  if (failure !== undefined) throw failure;
}

export const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Why this suite cannot run a case that needs csi-sanity's TestVolumeMutableParameters, or false. */
export function mutableParametersSkip(suite: Suite): string | false {
  return 'skip' in suite.mutableParameters ? suite.mutableParameters.skip : false;
}

/** csi-sanity's TestVolumeMutableParameters for this suite (the case checked mutableParametersSkip first). */
export function mutableParameters(suite: Suite): Record<string, string> {
  const p = suite.mutableParameters;
  if ('skip' in p) throw new Error(`no mutable parameters: ${p.skip}`);
  return p;
}
