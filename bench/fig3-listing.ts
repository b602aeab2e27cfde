// Figure 3: ListVolumes at scale. The simulator is seeded through its own
// Cinder API (parallel POSTs with instant creation); a fresh driver process
// lists 1,000 and then 10,000 volumes, in pages of 500 and in one unbounded
// call, and its peak RSS (VmHWM) is compared between the two sizes.
import path from 'node:path';
import { startSimulator } from '../src/sim';
import { MAX_LIMIT } from '../src/sim/listing';
import type { Cloud } from '../src/openstack/types';
import { DriverProcess, rpc } from './driver-process';
import type { Report } from './report';
import { apiRequests, counterDelta, setupClient } from './common';
import { round } from './stats';

const PAGE = 500;
const SEED_CONCURRENCY = 64;

interface ListingResult {
  pagedRpcs: number;
  pagedRequests: number;
  pagedEntries: number;
  unboundedRequests: number;
  unboundedEntries: number;
  unboundedMs: number;
  unboundedRpcs: number;
  firstResponseEntries: number;
  peakRssMiB: number;
}

export async function figure3(report: Report, work: string, opts: { quick: boolean }): Promise<void> {
  const small = opts.quick ? 200 : 1000;
  const large = opts.quick ? 2000 : 10_000;
  const sim = await startSimulator({ stateDir: path.join(work, 'sim3'), hypervisor: false, durations: { create: 0 } });
  const setup = setupClient(sim);
  try {
    await seed(setup, 0, small);
    const atSmall = await listWith(sim, path.join(work, 'fig3-small'));
    await seed(setup, small, large);
    const atLarge = await listWith(sim, path.join(work, 'fig3-large'));

    for (const [n, r] of [[small, atSmall], [large, atLarge]] as const) {
      const entriesOk = r.pagedEntries === n && r.unboundedEntries === n;
      report.atMost(3, `${n} volumes, pages of ${PAGE}: Cinder requests per ListVolumes page`, round(r.pagedRequests / r.pagedRpcs, 3), 'requests', 1,
        `${r.pagedRequests} requests for ${r.pagedRpcs} pages${entriesOk ? '' : `; WRONG COUNT ${r.pagedEntries}/${r.unboundedEntries}`}`);
      // Cinder serves at most MAX_LIMIT per page and links a next page whenever a page is full.
      const minimal = Math.floor(n / MAX_LIMIT) + 1;
      report.atMost(3, `${n} volumes, unbounded: Cinder requests per Cinder page (${MAX_LIMIT} max)`, round(r.unboundedRequests / minimal, 3), 'requests', 1,
        `${r.unboundedRequests} requests, ${minimal} pages needed; ${r.unboundedRpcs} RPCs (first answered ${r.firstResponseEntries} entries) in ${round(r.unboundedMs, 0)} ms`);
    }
    report.info(3, `driver peak RSS listing ${small} volumes`, round(atSmall.peakRssMiB, 1), 'MiB');
    report.info(3, `driver peak RSS listing ${large} volumes`, round(atLarge.peakRssMiB, 1), 'MiB');
    report.atMost(3, `peak RSS growth ${small} -> ${large} volumes`, round(atLarge.peakRssMiB - atSmall.peakRssMiB, 1), 'MiB', 30, 'VmHWM of a fresh driver process per size');
  } finally {
    await setup.close();
    await sim.stop();
  }
}

async function seed(cloud: Cloud, from: number, to: number): Promise<void> {
  let next = from;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= to) return;
      await cloud.blockStorage.createVolume({ name: `list-${i}`, size: 1, metadata: { 'cinder.csi.openstack.org/cluster': 'kubernetes' } });
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
}

async function listWith(sim: import('../src/sim').Simulator, dir: string): Promise<ListingResult> {
  const driver = await DriverProcess.start({ sim, dir, mode: 'controller', logLevel: 'info' });
  try {
    const { controller } = driver.clients;
    let before = sim.control.counters();
    let token = '';
    let pagedRpcs = 0;
    let pagedEntries = 0;
    do {
      const res = await rpc(controller, 'ListVolumes', { max_entries: PAGE, starting_token: token });
      pagedRpcs++;
      pagedEntries += res.entries.length;
      token = res.next_token;
    } while (token);
    const pagedRequests = apiRequests(counterDelta(before, sim.control.counters()));

    before = sim.control.counters();
    const started = performance.now();
    // max_entries 0 means 'no limit'; the driver may still answer in pages (next_token), which we follow.
    let unboundedRpcs = 0;
    let unboundedEntries = 0;
    let firstResponseEntries = 0;
    do {
      const res = await rpc(controller, 'ListVolumes', { max_entries: 0, starting_token: token });
      if (unboundedRpcs === 0) firstResponseEntries = res.entries.length;
      unboundedRpcs++;
      unboundedEntries += res.entries.length;
      token = res.next_token;
    } while (token);
    const unboundedMs = performance.now() - started;
    const unboundedRequests = apiRequests(counterDelta(before, sim.control.counters()));
    return {
      pagedRpcs,
      pagedRequests,
      pagedEntries,
      unboundedRequests,
      unboundedEntries,
      unboundedRpcs,
      firstResponseEntries,
      unboundedMs,
      peakRssMiB: driver.sample().peakRssMiB,
    };
  } finally {
    await driver.stop();
  }
}
