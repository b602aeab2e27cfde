// Figure 5: footprint. Start-up to the first ready Probe (from spawning
// `bin/cinder-csi serve`, so Node's own boot counts), the controller's RSS
// after figure 2, and the RSS of an idle node plugin. RSS is read twice: at
// once, and once the process has been idle long enough for V8's memory reducer
// (~8 s after the last GC) to give back what start-up or the burst left over;
// the second is what a platform engineer sees in `kubectl top`, and the one
// held to the target.
import path from 'node:path';
import { startSimulator } from '../src/sim';
import { DriverProcess } from './driver-process';
import { SETTLE_MS } from './fig2-throughput';
import type { Report } from './report';
import { sleep } from './common';
import { median, round } from './stats';

const STARTS = 5;
const EARLY_MS = 3_000;
const IDLE_MS = 15_000;

export async function figure5(report: Report, work: string, opts: { quick: boolean; controllerRss?: { atEnd: number; settled: number } }): Promise<void> {
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
    if (opts.controllerRss !== undefined) {
      report.info(5, 'controller RSS as figure 2 ends', round(opts.controllerRss.atEnd, 1), 'MiB', 'still holding the burst\'s garbage');
      report.atMost(5, `controller RSS after figure 2 (${SETTLE_MS / 1000} s idle)`, round(opts.controllerRss.settled, 1), 'MiB', 80);
    } else {
      report.skip(5, 'controller RSS after figure 2', 'MiB', '<= 80', 'figure 2 did not run');
    }
    const node = await DriverProcess.start({ sim, dir: path.join(work, 'fig5-node-idle'), mode: 'node', logLevel: 'info' });
    try {
      await sleep(EARLY_MS);
      report.info(5, `node plugin RSS ${EARLY_MS / 1000} s after ready`, round(node.sample().rssMiB, 1), 'MiB');
      await sleep(IDLE_MS - EARLY_MS);
      report.atMost(5, `idle node plugin RSS (${IDLE_MS / 1000} s after ready)`, round(node.sample().rssMiB, 1), 'MiB', 50);
    } finally {
      await node.stop();
    }
  } finally {
    await sim.stop();
  }
}
