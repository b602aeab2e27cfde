// The node service called directly, on a Sandbox: request builders, a fixture
// that makes a service over the sandbox's device root, state directory and
// kubelet directory, a blank attached volume, a stand-in for one command, and
// what kubelet does with a raw block publish. Shared by the node tests that
// call the handlers without gRPC.
import { mkdir, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { run } from '../../src/util/exec';
import { createNodeService, type NodeService } from '../../src/node/service';
import { resolveNodeSettings, type NodeSettingsInput } from '../../src/node/settings';
import type { VolumeCapability__Output } from '../../src/gen/csi/v1/VolumeCapability';
import type { NodeStageVolumeRequest__Output } from '../../src/gen/csi/v1/NodeStageVolumeRequest';
import type { NodePublishVolumeRequest__Output } from '../../src/gen/csi/v1/NodePublishVolumeRequest';
import { Sandbox, type LoopDevice } from './loop';
import { testContext } from './context';

export const MiB = 1024 ** 2;

export type Mode = NonNullable<VolumeCapability__Output['access_mode']>['mode'];

export const mountCap = (fs_type = '', mode: Mode = 'SINGLE_NODE_WRITER', mount_flags: string[] = []): VolumeCapability__Output => ({
  access_type: 'mount',
  mount: { fs_type, mount_flags, volume_mount_group: '' },
  access_mode: { mode },
});
export const blockCap = (mode: Mode = 'SINGLE_NODE_WRITER'): VolumeCapability__Output => ({ access_type: 'block', block: {}, access_mode: { mode } });

export function stageReq(volume_id: string, staging: string, cap: VolumeCapability__Output, volume_context: Record<string, string> = {}): NodeStageVolumeRequest__Output {
  return { volume_id, publish_context: {}, staging_target_path: staging, volume_capability: cap, secrets: {}, volume_context };
}

export function publishReq(volume_id: string, staging: string, target: string, cap: VolumeCapability__Output, readonly = false): NodePublishVolumeRequest__Output {
  return { volume_id, publish_context: {}, staging_target_path: staging, target_path: target, volume_capability: cap, readonly, secrets: {}, volume_context: {} };
}

export interface Fixture {
  box: Sandbox;
  node: NodeService;
}

/**
 * A node service over `box`; a second one over the same box is the plugin after a restart (the same state).
 * `settings` changes what the node's config would (kubeletRoot, confinePaths).
 */
export function nodeServiceOn(box: Sandbox, settings: Partial<NodeSettingsInput> = {}): NodeService {
  return createNodeService(
    resolveNodeSettings({
      nodeId: 'instance-1',
      availabilityZone: 'az-1',
      deviceRoot: box.deviceRoot,
      sysfsRoot: '/sys',
      stateDir: box.stateDir,
      kubeletRoot: box.kubeletDir, // where kubeletMapBlock maps raw block volumes
      discoveryTimeoutMs: 1_000,
      ...settings,
    }),
  );
}

export async function fixture(t: Parameters<typeof Sandbox.create>[0]): Promise<Fixture> {
  const box = await Sandbox.create(t);
  return { box, node: nodeServiceOn(box) };
}

/** A blank attached volume: loop device plus its virtio by-id link. */
export async function attach(box: Sandbox, sizeBytes = 64 * MiB): Promise<{ volumeId: string; loop: LoopDevice }> {
  const loop = await box.loopDevice(sizeBytes);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, loop);
  return { volumeId, loop };
}

export const ctx = (method: string) => testContext(method);

/**
 * A shell script named `name` in a directory of the sandbox; the function returned runs `fn` with that
 * directory first on PATH (the node service's commands look it up at each run), and restores PATH after.
 */
export async function fakeCommand(box: Sandbox, name: string, script: string): Promise<(fn: () => Promise<void>) => Promise<void>> {
  const bin = path.join(box.root, `bin-${name}`);
  await mkdir(bin);
  await writeFile(path.join(bin, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return async (fn) => {
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
      await fn();
    } finally {
      process.env.PATH = saved;
    }
  };
}

/**
 * What kubelet's MapBlockVolume does after our NodePublishVolume of a raw block volume:
 * bind the published device file onto <kubelet-root>/plugins/kubernetes.io/csi/volumeDevices/<pv>/dev/<podUID>.
 */
export async function kubeletMapBlock(kubeletRoot: string, pv: string, target: string, podUid: string = randomUUID()): Promise<string> {
  const dir = path.join(kubeletRoot, 'plugins', 'kubernetes.io', 'csi', 'volumeDevices', pv, 'dev');
  await mkdir(dir, { recursive: true });
  const mapPath = path.join(dir, podUid);
  await writeFile(mapPath, '');
  await run('mount', ['--bind', target, mapPath]);
  return mapPath;
}
