// Figure 5: footprint. Start-up to the first ready Probe (from spawning
// `node dist/src/cli.js serve`, so Node's own boot counts), the controller's
// RSS after figure 2, and the RSS of an idle node plugin.
import path from 'node:path';
import { startSimulator } from '../src/sim';
import { DriverProcess } from './driver-process';
import type { Report } from './report';
import { sleep } from './common';
import { median, round } from './stats';

const STARTS = 5;
const IDLE_MS = 3000;

export async function figure5(report: Report, work: string, opts: { quick: boolean; controllerRssAfterFig2?: number }): Promise<void> {
  const sim = await startSimulator({ stateDir: path.join(work, 'sim5'), hypervisor: false });
  try {
    for (const mode of ['controller', 'node'] as const) {
      const times: number[] = [];
      for (let i = 0; i < (opts.quick ? 2 : STARTS); i++) {
        const d = await DriverProcess.start({ sim, dir: path.join(work, `fig5-${mode}-${i}`), mode, logLevel: 'info' });
        times.push(d.readyAfterMs);
        await d.stop();
      }
      report.atMost(5, `start-up to Probe ready, ${mode} (median of ${times.length})`, round(median(times), 0), 'ms', 500, `[${times.map((t) => round(t, 0)).join(', ')}]`);
    }
    if (opts.controllerRssAfterFig2 !== undefined) {
      report.atMost(5, 'controller RSS after figure 2', round(opts.controllerRssAfterFig2, 1), 'MiB', 80);
    } else {
      report.skip(5, 'controller RSS after figure 2', 'MiB', '<= 80', 'figure 2 did not run');
    }
    const node = await DriverProcess.start({ sim, dir: path.join(work, 'fig5-node-idle'), mode: 'node', logLevel: 'info' });
    try {
      await sleep(IDLE_MS);
      report.atMost(5, `idle node plugin RSS (${IDLE_MS / 1000} s after ready)`, round(node.sample().rssMiB, 1), 'MiB', 50);
    } finally {
      await node.stop();
    }
  } finally {
    await sim.stop();
  }
}
