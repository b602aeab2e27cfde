// Figure 4: the node path on real loop devices (root only). NodeStageVolume +
// NodePublishVolume of a fresh blank 1 GiB volume, against the raw commands the
// same work needs (mkfs.ext4, mount, mount --bind) run one after another on
// another fresh volume; and NodeGetVolumeStats latency. Both sides are timed
// from one small client process (fig4-client.ts), not from this one.
import { execFile } from 'node:child_process';
import { mkdir, readFile, realpath, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { startSimulator, type Simulator } from '../src/sim';
import { blkidTools } from '../src/node/blkid-places';
import { isBlank, probeDevice } from '../src/node/probe';
import { DriverProcess, rpc } from './driver-process';
import type { Report } from './report';
import { GiB, MOUNT_CAP, sleep } from './common';
import { median, percentile, round } from './stats';
import type { Fig4Plan, Fig4Timings, PlannedVolume } from './fig4-client';

const exec = promisify(execFile);
const STATS_CALLS = 500;

export async function figure4(report: Report, work: string, opts: { quick: boolean; root: boolean }): Promise<void> {
  if (!opts.root) {
    const reason = 'needs root (loop devices, mkfs, mount)';
    report.skip(4, 'NodeStage+NodePublish / raw mkfs+mount+bind', 'x', '<= 1.15', reason);
    report.skip(4, 'NodeGetVolumeStats p99', 'ms', '<= 5', reason);
    return;
  }
  const sim = await startSimulator({ stateDir: path.join(work, 'sim4'), hypervisor: true, durations: { create: 10, attach: 10, detach: 10, delete: 10 } });
  if (!sim.hypervisor) {
    await sim.stop();
    const reason = 'the simulator could not emulate block devices (losetup missing?)';
    report.skip(4, 'NodeStage+NodePublish / raw mkfs+mount+bind', 'x', '<= 1.15', reason);
    report.skip(4, 'NodeGetVolumeStats p99', 'ms', '<= 5', reason);
    return;
  }
  // As deployed: the controller (StatefulSet) and the node plugin (DaemonSet) are separate
  // processes. The node plugin's size matters here: every mkfs and mount is a fork of it.
  let controller: DriverProcess | undefined;
  let driver: DriverProcess | undefined;
  const node = sim.instances[0];
  // Undone in reverse order, each step on its own: one failure must not leave mounts or loop devices behind.
  const cleanups: Array<() => Promise<unknown>> = [];
  let timings: Fig4Timings;
  try {
    const ctl = (controller = await DriverProcess.start({ sim, dir: path.join(work, 'fig4-controller'), mode: 'controller', logLevel: 'info' }));
    const plugin = (driver = await DriverProcess.start({ sim, dir: path.join(work, 'fig4-node'), mode: 'node', logLevel: 'info' }));
    // Every volume is created, attached and given its directories first (untimed); then one
    // client process times both sides.
    const reps: Fig4Plan['reps'] = [];
    for (let rep = 0; rep < (opts.quick ? 1 : 5); rep++) {
      const planned = async (which: 'driver' | 'raw'): Promise<PlannedVolume> => {
        const dir = path.join(work, 'fig4-mnt', `${which}-${rep}`);
        const staging = path.join(dir, 'staging');
        const target = path.join(dir, 'target');
        const vol = await freshAttachedVolume(sim, ctl, `fig4-${which}-${rep}`, (id) => {
          cleanups.push(
            () => rpc(ctl.clients.controller, 'DeleteVolume', { volume_id: id }),
            () => rpc(ctl.clients.controller, 'ControllerUnpublishVolume', { volume_id: id, node_id: node.id }),
            () => rm(dir, { recursive: true, force: true }),
            // Whatever the node side left mounted (the driver's own unpublish/unstage come after, so run before).
            () => exec('umount', ['--', staging]),
            () => exec('umount', ['--', target]),
          );
          if (which === 'driver') {
            cleanups.push(
              () => rpc(plugin.clients.node, 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging }),
              () => rpc(plugin.clients.node, 'NodeUnpublishVolume', { volume_id: id, target_path: target }),
            );
          }
        });
        await mkdir(staging, { recursive: true }); // the CO makes the staging directory
        return { id: vol.id, device: await realpath(vol.link), publishContext: vol.publishContext, staging, target };
      };
      // Alternate which goes first, so page cache and loop set-up favour neither.
      reps.push({ driver: await planned('driver'), raw: await planned('raw'), driverFirst: rep % 2 === 0 });
    }
    timings = await runClient(work, { socket: plugin.socketPath, reps, statsCalls: opts.quick ? 50 : STATS_CALLS });
  } finally {
    for (const undo of cleanups.reverse()) await undo().catch(() => undefined);
    await driver?.stop();
    await controller?.stop();
    await sim.stop();
  }
  const { driverMs, rawMs, statsMs, capsMs } = timings;
  const d = median(driverMs);
  const r = median(rawMs);
  report.info(4, 'NodeStage+NodePublish, fresh 1 GiB ext4 (median)', round(d, 1), 'ms', `[${driverMs.map((x) => round(x, 0)).join(', ')}]`);
  report.info(4, 'raw mkfs.ext4 + mount + mount --bind (median)', round(r, 1), 'ms', `[${rawMs.map((x) => round(x, 0)).join(', ')}]`);
  report.atMost(4, 'driver / raw', round(d / r, 3), 'x', 1.15);
  // What the ratio leaves the driver, against the least it must add: two round trips and the blank check.
  const check = await timeBlankCheck(work, opts.quick ? 2 : 5);
  const trips = 2 * median(capsMs);
  report.info(4, 'blank-device check alone, fresh 1 GiB device (median)', round(check.ms, 2), 'ms', check.how);
  report.info(
    4,
    'what 1.15x leaves the driver (0.15 x the raw median)',
    round(0.15 * r, 1),
    'ms',
    `against its floor: two no-op round trips (${round(trips, 1)} ms) + the blank check (${round(check.ms, 1)} ms) = ${round(trips + check.ms, 1)} ms`,
  );
  // Why the node reads the mount table in-process: as a findmnt fork, each read would cost milliseconds.
  const execMs = await timeIt(20, () => exec('findmnt', ['-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,VFS-OPTIONS,FS-OPTIONS,FSROOT,MAJ:MIN']));
  const mountinfoMs = await timeIt(20, () => readFile('/proc/self/mountinfo', 'utf8'));
  report.info(4, 'one `findmnt -J` exec from Node (median)', round(execMs, 2), 'ms', 'what each mount-table read would cost as a fork (the driver reads mountinfo instead)');
  report.info(4, 'reading /proc/self/mountinfo in-process (median)', round(mountinfoMs, 3), 'ms', 'the same information without a fork');
  report.info(4, `NodeGetCapabilities p99 (${capsMs.length} calls, no work in the handler)`, round(percentile(capsMs, 99), 2), 'ms', `median ${round(median(capsMs), 2)} ms; the gRPC floor that stats p99 sits on`);
  report.atMost(4, `NodeGetVolumeStats p99 (${statsMs.length} calls)`, round(percentile(statsMs, 99), 2), 'ms', 5, `median ${round(median(statsMs), 2)} ms`);
}

/**
 * The node's blank check (probe.ts, as NodeStageVolume runs it) on fresh
 * sparse 1 GiB loop devices, timed in this process: the median, and which way
 * it ran (the fast path, or wipefs for an untraced libblkid).
 */
async function timeBlankCheck(work: string, n: number): Promise<{ ms: number; how: string }> {
  const tools = await blkidTools(); // its two forks are made once, at the plugin's start-up
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const file = path.join(work, `fig4-blank-${i}.img`);
    await writeFile(file, '');
    await truncate(file, GiB);
    const { stdout } = await exec('losetup', ['--find', '--show', '--', file]);
    const device = stdout.trim();
    try {
      await sleep(50); // as after an attach: udev has had its look
      const s = performance.now();
      const contents = await probeDevice(device, '/sys');
      times.push(performance.now() - s);
      if (!isBlank(contents)) throw new Error(`a fresh sparse device probed as not blank: ${JSON.stringify(contents)}`);
    } finally {
      await exec('losetup', ['--detach', device]).catch(() => undefined);
      await rm(file, { force: true });
    }
  }
  const how = tools.places ? `read the places libblkid ${tools.libblkid} reads (no fork)` : 'wipefs (libblkid version not traced)';
  return { ms: median(times), how };
}

/** Run the timed part in its own process and read its answer. */
async function runClient(work: string, plan: Fig4Plan): Promise<Fig4Timings> {
  const planFile = path.join(work, 'fig4-plan.json');
  await writeFile(planFile, JSON.stringify(plan));
  const { stdout } = await exec(process.execPath, [path.join(__dirname, 'fig4-client.js'), planFile], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Fig4Timings;
}

async function timeIt(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    times.push(performance.now() - s);
  }
  return median(times);
}

/**
 * Create and publish through the driver's controller (untimed) and wait for the loop device's
 * by-id link. `created` hears the volume's ID as soon as it exists, so that it is cleaned up
 * whatever fails after.
 */
async function freshAttachedVolume(
  sim: Simulator,
  controller: DriverProcess,
  name: string,
  created: (id: string) => void,
): Promise<{ id: string; link: string; publishContext: Record<string, string> }> {
  const node = sim.instances[0];
  const made = await rpc(controller.clients.controller, 'CreateVolume', { name, capacity_range: { required_bytes: GiB }, volume_capabilities: [MOUNT_CAP] });
  const id: string = made.volume.volume_id;
  created(id);
  const published = await rpc(controller.clients.controller, 'ControllerPublishVolume', { volume_id: id, node_id: node.id, volume_capability: MOUNT_CAP, readonly: false });
  const link = path.join(node.deviceRoot, 'disk', 'by-id', `virtio-${id.slice(0, 20)}`);
  for (let i = 0; i < 2000; i++) {
    if (await stat(link).then(() => true, () => false)) break;
    await sleep(5);
  }
  return { id, link, publishContext: published.publish_context };
}
