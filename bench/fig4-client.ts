// Figure 4's timed part, in a process of its own: `node fig4-client.js PLAN.json`.
//
// Both sides of the comparison start here, in a small process that does
// nothing else (as kubelet and a shell are to the node plugin): the gRPC
// client that calls NodeStage/NodePublish/NodeGetVolumeStats, and the raw
// commands. Run from the benchmark process instead, the raw commands were
// forked from a process holding the simulator and figure 3's 10,000 volumes
// (a fork costs more the larger the parent) and the client's latencies carried
// that process's garbage collections.
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { connect, rpc } from './driver-process';
import { MOUNT_CAP } from './common';

const exec = promisify(execFile);

/** One fresh, attached, blank volume and where to stage and publish it. */
export interface PlannedVolume {
  id: string;
  /** The device node (resolved from its by-id link), for the raw commands. */
  device: string;
  publishContext: Record<string, string>;
  staging: string;
  target: string;
}

export interface Fig4Plan {
  socket: string;
  /** Per repetition, the two volumes and which side goes first. */
  reps: Array<{ driver: PlannedVolume; raw: PlannedVolume; driverFirst: boolean }>;
  statsCalls: number;
}

export interface Fig4Timings {
  driverMs: number[];
  rawMs: number[];
  statsMs: number[];
  capsMs: number[];
}

async function main(planFile: string): Promise<void> {
  const plan = JSON.parse(await readFile(planFile, 'utf8')) as Fig4Plan;
  const clients = connect(`unix://${plan.socket}`);
  const out: Fig4Timings = { driverMs: [], rawMs: [], statsMs: [], capsMs: [] };
  try {
    // One call first, so the channel is connected before anything is timed.
    await rpc(clients.node, 'NodeGetCapabilities', {});
    for (const rep of plan.reps) {
      for (const side of rep.driverFirst ? (['driver', 'raw'] as const) : (['raw', 'driver'] as const)) {
        if (side === 'driver') out.driverMs.push(await viaDriver(clients.node, rep.driver));
        else out.rawMs.push(await viaCommands(rep.raw));
      }
    }
    const published = plan.reps[0].driver;
    for (let i = 0; i < plan.statsCalls; i++) {
      const s = performance.now();
      await rpc(clients.node, 'NodeGetVolumeStats', { volume_id: published.id, volume_path: published.target });
      out.statsMs.push(performance.now() - s);
    }
    // The same number of the cheapest Node RPC: the per-call floor of gRPC on this machine.
    for (let i = 0; i < plan.statsCalls; i++) {
      const s = performance.now();
      await rpc(clients.node, 'NodeGetCapabilities', {});
      out.capsMs.push(performance.now() - s);
    }
  } finally {
    clients.identity.close();
    clients.controller.close();
    clients.node.close();
  }
  process.stdout.write(JSON.stringify(out));
}

async function viaDriver(node: Parameters<typeof rpc>[0], v: PlannedVolume): Promise<number> {
  const started = performance.now();
  await rpc(node, 'NodeStageVolume', {
    volume_id: v.id, publish_context: v.publishContext, staging_target_path: v.staging, volume_capability: MOUNT_CAP, volume_context: {},
  });
  await rpc(node, 'NodePublishVolume', {
    volume_id: v.id, publish_context: v.publishContext, staging_target_path: v.staging, target_path: v.target, volume_capability: MOUNT_CAP, readonly: false,
  });
  return performance.now() - started;
}

/** The same work as raw commands, in the same order (the CO makes the staging directory, the driver the target). */
async function viaCommands(v: PlannedVolume): Promise<number> {
  const started = performance.now();
  await exec('mkfs.ext4', ['-q', '--', v.device]);
  await exec('mount', ['-t', 'ext4', '--', v.device, v.staging]);
  await mkdir(v.target, { recursive: true });
  await exec('mount', ['--bind', '--', v.staging, v.target]);
  return performance.now() - started;
}

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    process.stderr.write(`fig4 client: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
