// The node path is crash-safe: the node plugin runs as its own process (as the
// DaemonSet runs it) and is SIGKILLed, with the mkfs or mount it is running,
// in the middle of NodeStageVolume, NodePublishVolume, NodeUnpublishVolume and
// NodeUnstageVolume. A new plugin process on the same state directory (a pod
// restart) is then asked the same RPC until it answers OK, as kubelet does.
// Afterwards: one staging mount of the device, one bind per target, data
// written earlier still there (a device that holds a filesystem is never
// formatted), and once the volume is unpublished and unstaged nothing is left:
// no mount of the device, no read-only loop view, no staging record.
//
// The kill points are reached deterministically: mkfs is watched for in /proc,
// and for the others a stand-in for one command (first on the plugin's PATH)
// runs the real command, or not, then says so in a marker file and waits to be
// killed with the plugin.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { startSimulator, type Simulator } from '../../src/sim';
import { run, which } from '../../src/util/exec';
import { deviceNumber } from '../../src/node/mount';
import { startTestDriver, type TestDriver } from '../helpers/driver';
import { NodePluginProcess } from '../helpers/node-process';
import { loopDevicesBackedBy, toolsSkip } from './loop';

const GiB = 1024 ** 3;
const skip = toolsSkip('losetup', 'strace');
const xfsSkip = skip || toolsSkip('mkfs.xfs', 'xfs_repair');

const mountCap = (fs_type: string) => ({ mount: { fs_type, mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } });
const blockCap = { block: {}, access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' } };

let work: string;
let sim: Simulator | undefined;
let controller: TestDriver | undefined;

before(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-crash-'));
  sim = await startSimulator({ stateDir: path.join(work, 'sim'), hypervisor: true, durations: { create: 0, attach: 0, detach: 0, delete: 0 } });
  controller = await startTestDriver({ mode: 'controller', simulator: sim });
});

after(async () => {
  if (skip) return;
  await controller?.stop();
  await sim?.stop();
  const attached = await loopDevicesBackedBy(work);
  await rm(work, { recursive: true, force: true });
  assert.deepEqual(attached, [], 'loop devices left attached');
});

// ---- the volume, the plugin, and what the kernel shows ---------------------------

interface Volume {
  id: string;
  /** The attached disk, e.g. /dev/loop7. */
  device: string;
  majMin: string;
  publishContext: Record<string, string>;
  staging: string;
  target: string;
}

interface Scenario {
  vol: Volume;
  /** Start a (new) plugin process on the scenario's state directory; `doubles` are stand-ins put first on its PATH. */
  plugin(...doubles: Stand[]): Promise<NodePluginProcess>;
  dir: string;
}

/** A fresh volume, attached to the node by the controller; everything undone after the test, whatever happened. */
async function scenario(t: { after(fn: () => Promise<void>): void }, name: string): Promise<Scenario> {
  const dir = path.join(work, name);
  await mkdir(path.join(dir, 'kubelet'), { recursive: true });
  const node = sim!.instances[0];
  const c = controller!;
  const created = await c.call(c.controller, 'CreateVolume', { name, capacity_range: { required_bytes: GiB }, volume_capabilities: [mountCap('')] });
  const id: string = created.volume.volume_id;
  let current: NodePluginProcess | undefined;
  let device = '';
  t.after(async () => {
    await current?.crash();
    await unmountUnder(dir);
    if (device) for (const view of await viewsOf(device)) await run('losetup', ['--detach', view]).catch(() => undefined);
    await c.call(c.controller, 'ControllerUnpublishVolume', { volume_id: id, node_id: node.id }).catch(() => undefined);
    await c.call(c.controller, 'DeleteVolume', { volume_id: id }).catch(() => undefined);
  });
  const published = await c.call(c.controller, 'ControllerPublishVolume', { volume_id: id, node_id: node.id, volume_capability: mountCap(''), readonly: false });
  const link = path.join(node.deviceRoot, 'disk', 'by-id', `virtio-${id.slice(0, 20)}`);
  await waitFor(() => stat(link).then(() => true, () => false), `the by-id link of ${id}`);
  device = await realpath(link);
  const staging = path.join(dir, 'kubelet', 'globalmount');
  await mkdir(staging); // the CO makes the staging directory
  const vol = { id, device, majMin: await deviceNumber(device), publishContext: published.publish_context, staging, target: path.join(dir, 'kubelet', 'pod-target') };
  return {
    vol,
    dir,
    async plugin(...doubles) {
      await current?.stop();
      current = await NodePluginProcess.start({ instance: node, dir: path.join(dir, 'plugin'), pathPrefix: doubles.map((d) => d.bin) });
      return current;
    },
  };
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Ask until the answer is OK, as kubelet does after an error; the errors seen on the way. */
async function untilOk(plugin: NodePluginProcess, method: string, request: unknown, attempts = 20): Promise<string[]> {
  const errors: string[] = [];
  for (;;) {
    try {
      await plugin.call(method, request);
      return errors;
    } catch (e) {
      errors.push(`${status[(e as ServiceError).code]}: ${(e as ServiceError).details}`);
      if (errors.length >= attempts) assert.fail(`${method} never answered OK: ${errors.join('; ')}`);
      await sleep(100);
    }
  }
}

/** Start an RPC that the test will cut short by crashing the plugin (its error is expected and ignored). */
function interrupted(plugin: NodePluginProcess, method: string, request: unknown): void {
  plugin.call(method, request).catch(() => undefined);
}

interface MountLine {
  majMin: string;
  target: string;
  fstype: string;
}

async function mountLines(): Promise<MountLine[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const target = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      return { majMin: f[2], target, fstype: f[f.indexOf('-') + 1] };
    });
}

/** Every mount at exactly `target` (mounts can stack): the test wants exactly one. */
async function mountsAt(target: string): Promise<MountLine[]> {
  return (await mountLines()).filter((m) => m.target === target);
}

/** Mounts of the filesystem on `majMin`, anywhere. */
async function mountsOfDevice(majMin: string): Promise<string[]> {
  return (await mountLines()).filter((m) => m.majMin === majMin).map((m) => m.target);
}

async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const left = (await mountLines()).map((m) => m.target).filter((t) => t.startsWith(`${dir}/`));
    if (left.length === 0) return;
    for (const target of left.sort((a, b) => b.length - a.length)) await run('umount', ['--', target]).catch(() => undefined);
  }
}

/** Loop devices reading from `device`: the read-only views of raw block publishes. */
async function viewsOf(device: string): Promise<string[]> {
  const { stdout } = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']);
  const rows = stdout.trim() ? (JSON.parse(stdout) as { loopdevices: { name: string; 'back-file': string | null }[] }).loopdevices : [];
  return rows.filter((r) => r['back-file']?.trim() === device).map((r) => r.name);
}

async function blkid(device: string, tag: string): Promise<string> {
  const { stdout } = await run('blkid', ['-p', '-o', 'value', '-s', tag, '--', device], { okCodes: [2] });
  return stdout.trim();
}

/** What is in the plugin's directory of staging records (raw block volumes): records, and temporary files a write left. */
async function stagingRecords(s: Scenario): Promise<string[]> {
  return readdir(path.join(s.dir, 'plugin', 'node-state', 'block-staging')).catch(() => []);
}

// ---- stand-ins for the commands the plugin runs ---------------------------------

interface Stand {
  bin: string;
  /** The real command's exit status at the kill point ('' when it does not run). */
  expect: string;
  /** Resolves once the plugin has reached the kill point: with the exit status of the real command, if it ran. */
  reached(): Promise<string>;
}

let stands = 0;

/**
 * A stand-in for `command`: the first call whose arguments contain `match`
 * stops there (`before`: without running the command; `after`: once the real
 * command has finished) and waits to be killed; every other call runs the real
 * command. `real` replaces the real command's path (e.g. to run it under strace).
 */
async function stand(command: string, match: string, when: 'before' | 'after', real?: string, expect = when === 'before' ? '' : '0'): Promise<Stand> {
  const bin = path.join(work, `stand-${++stands}`);
  await mkdir(bin);
  const marker = path.join(bin, 'reached');
  const realCommand = real ?? (await which(command));
  assert.ok(realCommand, `${command} is on PATH`);
  for (const p of [marker, realCommand, match]) assert.match(p, /^[\w/.,= :-]+$/, 'quoted below without escaping');
  const stop = when === 'before' ? `: > '${marker}'` : `${realCommand} "$@"; echo $? > '${marker}'`;
  const script = [
    '#!/bin/sh',
    `case " $* " in *'${match}'*) if [ ! -e '${marker}' ]; then ${stop}; exec sleep 600; fi ;; esac`,
    `exec ${realCommand} "$@"`,
    '',
  ].join('\n');
  await writeFile(path.join(bin, command), script, { mode: 0o755 });
  return {
    bin,
    expect,
    async reached() {
      // The marker is made, then written: wait for its line.
      const text = () => readFile(marker, 'utf8').catch(() => null);
      await waitFor(async () => { const t = await text(); return t !== null && (when === 'before' || t.endsWith('\n')); }, `${command} ${match} (${when})`);
      return (await text())!.trim();
    },
  };
}

/** Crash the plugin at the kill point `at`, reached by `method`, and start a new one (with `next` on its PATH). */
async function crashAt(s: Scenario, plugin: NodePluginProcess, at: Stand, method: string, request: unknown, ...next: Stand[]): Promise<NodePluginProcess> {
  interrupted(plugin, method, request);
  const code = await at.reached();
  // A stand-in that runs the command pauses only once it succeeded (the mkfs one, once strace killed mkfs).
  assert.equal(code, at.expect, `exit status of the command at the kill point`);
  await plugin.crash();
  return s.plugin(...next);
}

// ---- filesystems -----------------------------------------------------------------

function stageRequest(vol: Volume, cap: unknown) {
  return { volume_id: vol.id, publish_context: vol.publishContext, staging_target_path: vol.staging, volume_capability: cap, volume_context: {} };
}

function publishRequest(vol: Volume, cap: unknown, target = vol.target, readonly = false) {
  return { ...stageRequest(vol, cap), target_path: target, readonly };
}

async function assertStagedOnce(vol: Volume, fsType: string): Promise<void> {
  const staged = await mountsAt(vol.staging);
  assert.equal(staged.length, 1, `one mount at the staging path, not ${JSON.stringify(staged)}`);
  assert.equal(staged[0].majMin, vol.majMin, 'of the volume device');
  assert.equal(staged[0].fstype, fsType);
}

async function assertNothingMounted(vol: Volume): Promise<void> {
  assert.deepEqual(await mountsOfDevice(vol.majMin), [], 'no mount of the device remains');
  assert.deepEqual(await viewsOf(vol.device), [], 'no read-only view of the device remains');
}

/** The filesystem is consistent: fsck, read-only, finds nothing to fix. */
async function assertClean(device: string, fsType: string): Promise<void> {
  if (fsType === 'xfs') await run('xfs_repair', ['-n', device]);
  else await run('e2fsck', ['-f', '-n', device]);
}

/**
 * A crash while mkfs runs: mkfs dies (strace kills it) at its `write`-th write, and the plugin with it. For
 * ext4 the 100th of its ~150 writes: inode tables and journal written, not yet its superblocks. For xfs the
 * 2nd, before it writes a superblock (an xfs superblock written and not finished is another test's case).
 */
const MKFS_KILL_WRITE: Record<string, number> = { ext4: 100, xfs: 2 };

async function mkfsDiesAt(device: string, fsType: string, write: number): Promise<Stand> {
  const mkfs = `mkfs.${fsType}`;
  const real = `strace -f -qq -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=SIGKILL:when=${write} ${await which(mkfs)}`;
  return stand(mkfs, device, 'after', real, '137'); // 128 + SIGKILL
}

for (const fsType of ['ext4', 'xfs']) {
  test(
    `${fsType}: crashes in every step from stage to unstage; each retry ends with one mount per path, data written once survives, and nothing is left`,
    { skip: fsType === 'xfs' ? xfsSkip : skip, timeout: 60_000 },
    async (t) => {
      const s = await scenario(t, `fs-${fsType}`);
      const { vol } = s;
      const cap = mountCap(fsType);

      // NodeStageVolume, crashed while mkfs runs: the retry makes a filesystem and mounts it once.
      const bind = await stand('mount', vol.target, 'after');
      const mkfs = await mkfsDiesAt(vol.device, fsType, MKFS_KILL_WRITE[fsType]);
      let plugin = await crashAt(s, await s.plugin(mkfs), mkfs, 'NodeStageVolume', stageRequest(vol, cap), bind);
      await untilOk(plugin, 'NodeStageVolume', stageRequest(vol, cap));
      await assertStagedOnce(vol, fsType);
      assert.equal(await blkid(vol.device, 'TYPE'), fsType);
      const uuid = await blkid(vol.device, 'UUID');

      // NodePublishVolume, crashed after the bind: one bind at the target.
      const unbind = await stand('umount', vol.target, 'after');
      plugin = await crashAt(s, plugin, bind, 'NodePublishVolume', publishRequest(vol, cap), unbind);
      await untilOk(plugin, 'NodePublishVolume', publishRequest(vol, cap));
      const binds = await mountsAt(vol.target);
      assert.equal(binds.length, 1, `one bind at the target, not ${JSON.stringify(binds)}`);
      assert.equal(binds[0].majMin, vol.majMin);
      await writeFile(path.join(vol.target, 'data.txt'), 'written after the first stage');

      // NodeUnpublishVolume, crashed after the unmount: the retry removes the target.
      const unstage = await stand('umount', vol.staging, 'after');
      plugin = await crashAt(s, plugin, unbind, 'NodeUnpublishVolume', { volume_id: vol.id, target_path: vol.target }, unstage);
      await untilOk(plugin, 'NodeUnpublishVolume', { volume_id: vol.id, target_path: vol.target });
      assert.deepEqual(await mountsAt(vol.target), []);
      await assert.rejects(stat(vol.target), { code: 'ENOENT' });

      // NodeUnstageVolume, crashed after the unmount.
      const beforeMount = await stand('mount', vol.staging, 'before');
      plugin = await crashAt(s, plugin, unstage, 'NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging }, beforeMount);
      await untilOk(plugin, 'NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
      assert.deepEqual(await mountsOfDevice(vol.majMin), []);

      // Staged again, crashed after the probe found the filesystem and before the mount, then after the mount:
      // neither retry formats it.
      const afterMount = await stand('mount', vol.staging, 'after');
      plugin = await crashAt(s, plugin, beforeMount, 'NodeStageVolume', stageRequest(vol, cap), afterMount);
      plugin = await crashAt(s, plugin, afterMount, 'NodeStageVolume', stageRequest(vol, cap));
      await untilOk(plugin, 'NodeStageVolume', stageRequest(vol, cap));
      await assertStagedOnce(vol, fsType);
      assert.equal(await blkid(vol.device, 'UUID'), uuid, 'never formatted again');
      await untilOk(plugin, 'NodePublishVolume', publishRequest(vol, cap));
      assert.equal(await readFile(path.join(vol.target, 'data.txt'), 'utf8'), 'written after the first stage');

      for (let i = 0; i < 2; i++) {
        await plugin.call('NodeUnpublishVolume', { volume_id: vol.id, target_path: vol.target });
        await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
      }
      await assertNothingMounted(vol);
      assert.deepEqual(await stagingRecords(s), []);
      await assertClean(vol.device, fsType);
    },
  );
}

test(
  'xfs: a crash that leaves mkfs.xfs unfinished after its superblock is refused on every retry, saying so and how to recover; nothing formats it until the operator wipes it',
  { skip: xfsSkip, timeout: 60_000 },
  async (t) => {
    const s = await scenario(t, 'xfs-unfinished');
    const { vol } = s;
    const cap = mountCap('xfs');
    // mkfs.xfs writes its primary superblock marked "in progress" at its 3rd write and clears the mark at the end.
    const mkfs = await mkfsDiesAt(vol.device, 'xfs', 10);
    const plugin = await crashAt(s, await s.plugin(mkfs), mkfs, 'NodeStageVolume', stageRequest(vol, cap));
    assert.equal(await blkid(vol.device, 'TYPE'), 'xfs', 'libblkid calls the unfinished superblock xfs');
    const uuid = await blkid(vol.device, 'UUID');

    for (let attempt = 0; attempt < 3; attempt++) {
      const err = await plugin.call('NodeStageVolume', stageRequest(vol, cap)).then(
        () => assert.fail('an unfinished filesystem was staged'),
        (e: ServiceError) => e,
      );
      assert.equal(status[err.code], 'FAILED_PRECONDITION', err.details);
      assert.match(err.details, /mkfs .*never finished/);
      assert.match(err.details, new RegExp(`wipefs --all ${vol.device}`));
      assert.deepEqual(await mountsAt(vol.staging), []);
      assert.equal(await blkid(vol.device, 'UUID'), uuid, 'not formatted');
    }

    // The operator, told the volume never held data, wipes it: the next stage formats it.
    await run('wipefs', ['--all', '--quiet', vol.device]);
    await untilOk(plugin, 'NodeStageVolume', stageRequest(vol, cap));
    await assertStagedOnce(vol, 'xfs');
    assert.notEqual(await blkid(vol.device, 'UUID'), uuid);
    await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
    await assertNothingMounted(vol);
    await assertClean(vol.device, 'xfs');
  },
);

// ---- raw block ---------------------------------------------------------------------

test(
  'raw block: crashes in publish (after the bind; after making the read-only view), unpublish and unstage; each retry ends with one bind per target, and no view, record or mount is left, even of a publish never retried',
  { skip, timeout: 60_000 },
  async (t) => {
    const s = await scenario(t, 'block');
    const { vol } = s;
    const roTarget = `${vol.target}-ro`;
    const bind = await stand('mount', vol.target, 'after');
    let plugin = await s.plugin(bind);
    await untilOk(plugin, 'NodeStageVolume', stageRequest(vol, blockCap));

    // A read-write publish, crashed after the bind and before the record was written.
    const view = await stand('losetup', '--read-only', 'after');
    plugin = await crashAt(s, plugin, bind, 'NodePublishVolume', publishRequest(vol, blockCap), view);
    await untilOk(plugin, 'NodePublishVolume', publishRequest(vol, blockCap));
    assert.equal((await mountsAt(vol.target)).length, 1, 'one bind at the target');
    assert.equal(await deviceNumber(vol.target), vol.majMin, 'of the disk itself');

    // A read-only publish, crashed after its view was made and before it was bound.
    const unbindRo = await stand('umount', roTarget, 'after');
    plugin = await crashAt(s, plugin, view, 'NodePublishVolume', publishRequest(vol, blockCap, roTarget, true), unbindRo);
    await untilOk(plugin, 'NodePublishVolume', publishRequest(vol, blockCap, roTarget, true));
    assert.equal((await mountsAt(roTarget)).length, 1, 'one bind at the read-only target');
    const views = await viewsOf(vol.device);
    assert.equal(views.length, 1, `one read-only view of the disk, not ${views.join(', ')}`);
    assert.equal(await deviceNumber(roTarget), await deviceNumber(views[0]), 'the view is what is bound there');

    const payload = Buffer.from('written through the read-write target');
    await writeFile(vol.target, payload, { flag: 'r+' });
    const back = Buffer.alloc(payload.length);
    const fh = await open(roTarget, 'r');
    try {
      await fh.read(back, 0, back.length, 0);
    } finally {
      await fh.close();
    }
    assert.deepEqual(back, payload, 'the read-only target reads the disk');

    // NodeUnpublishVolume of the read-only target, crashed after the unmount and before the view was detached.
    const abandonedView = await stand('losetup', '--read-only', 'after');
    plugin = await crashAt(s, plugin, unbindRo, 'NodeUnpublishVolume', { volume_id: vol.id, target_path: roTarget }, abandonedView);
    await untilOk(plugin, 'NodeUnpublishVolume', { volume_id: vol.id, target_path: roTarget });
    assert.deepEqual(await mountsAt(roTarget), []);
    assert.deepEqual(await viewsOf(vol.device), [], 'the view went with its target');
    await untilOk(plugin, 'NodeUnpublishVolume', { volume_id: vol.id, target_path: vol.target });

    // A read-only publish for a pod deleted meanwhile, crashed after making its view: kubelet does not retry
    // it, nor unpublish what never answered OK; it unstages. NodeUnstageVolume, crashed after flushing and
    // before the record was removed.
    const flush = await stand('blockdev', '--flushbufs', 'after');
    plugin = await crashAt(s, plugin, abandonedView, 'NodePublishVolume', publishRequest(vol, blockCap, `${vol.target}-abandoned`, true), flush);
    assert.equal((await viewsOf(vol.device)).length, 1, 'the crash left a view');
    plugin = await crashAt(s, plugin, flush, 'NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
    await untilOk(plugin, 'NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
    for (let i = 0; i < 2; i++) {
      for (const target of [vol.target, roTarget]) await plugin.call('NodeUnpublishVolume', { volume_id: vol.id, target_path: target });
      await plugin.call('NodeUnstageVolume', { volume_id: vol.id, staging_target_path: vol.staging });
    }
    await assertNothingMounted(vol);
    assert.deepEqual(await stagingRecords(s), []);
    const disk = Buffer.alloc(payload.length);
    const dh = await open(vol.device, 'r');
    try {
      await dh.read(disk, 0, disk.length, 0);
    } finally {
      await dh.close();
    }
    assert.deepEqual(disk, payload, 'the data is on the disk');
  },
);
