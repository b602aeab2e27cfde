// Figure 2: throughput. Complete lifecycles (CreateVolume,
// ControllerPublishVolume, ControllerUnpublishVolume, DeleteVolume) at a fixed
// concurrency against 20 ms API latency and 200 ms state changes, with the
// driver in its own process so its CPU time is its own.
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim';
import { DriverProcess, rpc } from './driver-process';
import type { Report } from './report';
import { apiRequests, counterDelta, GiB, MOUNT_CAP, sleep, statusPolls, volumeListPolls } from './common';

/** How long the controller idles after figure 2 before its settled RSS is read. */
export const SETTLE_MS = 15_000;
import { median, percentile, round } from './stats';

const LATENCY_MS = 20;
const CHANGE_MS = 200;
const INSTANCES = 4;
/** RPCs that wait for a state change, per lifecycle. */
const CHANGES_PER_LIFECYCLE = 4;
/**
 * The part of one lifecycle nothing can remove: per RPC, the request that
 * starts the change, the change itself, and the one GET that sees it done.
 * (Name lookups, server checks and extra polls are the driver's choice.)
 */
const CRITICAL_PATH_PER_LIFECYCLE_MS = CHANGES_PER_LIFECYCLE * (LATENCY_MS + CHANGE_MS + LATENCY_MS);

interface RunResult {
  lifecycles: number;
  concurrency: number;
  wallMs: number;
  cpuMs: number;
  requests: number;
  polls: number;
  failures: number;
  firstError?: string;
  /** CPU of this process (simulator + gRPC clients): if it saturates a core, the simulator's latencies stretch. */
  benchCpuMs: number;
  delta: Record<string, number>;
  /** How long each RPC took, by method. */
  durations: Record<string, number[]>;
}

export interface Figure2Outcome {
  /** The controller's RSS right after the run, for figure 5. */
  /** The controller's RSS when figure 2's last call has returned. */
  controllerRssAtEndMiB: number;
  /** ... and SETTLE_MS later, once V8's memory reducer has given back the burst's garbage. */
  controllerRssSettledMiB: number;
}

export async function figure2(report: Report, work: string, opts: { quick: boolean; cpuProfileDir?: string }): Promise<Figure2Outcome> {
  const sim = await startSimulator({
    stateDir: path.join(work, 'sim2'),
    latencyMs: LATENCY_MS,
    durations: { create: CHANGE_MS, attach: CHANGE_MS, detach: CHANGE_MS, delete: CHANGE_MS },
    hypervisor: false,
    instances: Array.from({ length: INSTANCES }, (_, i) => ({ name: `bench-node-${i}` })),
    maxDiskDevices: 128,
  });
  sim.control.resetCounters();
  const driver = await DriverProcess.start({ sim, dir: path.join(work, 'fig2'), mode: 'controller', logLevel: 'info', cpuProfileDir: opts.cpuProfileDir });
  try {
    const big = await run(sim, driver, opts.quick ? 100 : 1000, 50, 'c50');
    const small = await run(sim, driver, opts.quick ? 20 : 100, 10, 'c10');
    const auths = sim.control.counters()['identity.auth'] ?? 0;
    const rssAtEnd = driver.sample().rssMiB;
    // What `kubectl top` shows for a controller after a burst: V8 returns the burst's garbage to the
    // system only once the process has been idle a few seconds (its memory reducer, ~8 s).
    await sleep(SETTLE_MS);
    const rssSettled = driver.sample().rssMiB;

    const critical = (CRITICAL_PATH_PER_LIFECYCLE_MS * big.lifecycles) / big.concurrency;
    const failNote = big.failures + small.failures > 0 ? `; ${big.failures + small.failures} lifecycles failed: ${big.firstError ?? small.firstError}` : '';
    report.info(2, `wall time, ${big.lifecycles} lifecycles at concurrency ${big.concurrency}`, round(big.wallMs / 1000, 2), 's', failNote.slice(2) || undefined);
    report.info(2, 'simulator critical path', round(critical / 1000, 2), 's', `${big.lifecycles}/${big.concurrency} x 4 x (${LATENCY_MS} ms request + ${CHANGE_MS} ms change + ${LATENCY_MS} ms GET)`);
    report.atMost(2, 'wall time / critical path', round(big.wallMs / critical, 3), 'x', 1.2);
    report.atMost(2, 'driver CPU time per RPC', round(big.cpuMs / (big.lifecycles * 4), 3), 'ms', 2, `${round(big.cpuMs, 0)} ms CPU over ${big.lifecycles * 4} RPCs (/proc utime+stime)`);
    report.add({
      figure: 2,
      name: 'Keystone authentications (token lifetime 3600 s, whole driver life)',
      value: auths,
      unit: 'auths',
      target: '== 1',
      pass: auths === 1,
    });
    report.info(2, 'benchmark process (simulator + clients) CPU use during the run', round((100 * big.benchCpuMs) / big.wallMs, 0), '% of a core');
    report.info(2, 'driver CPU use during the run', round((100 * big.cpuMs) / big.wallMs, 0), '% of a core');
    report.info(2, 'OpenStack requests per lifecycle', round(big.requests / big.lifecycles, 2), 'requests');
    report.info(2, `status GETs per lifecycle at concurrency ${big.concurrency}`, round(big.polls / big.lifecycles, 2), 'requests', 'polls and state checks; name lookups not counted');
    report.info(2, `status GETs per lifecycle at concurrency ${small.concurrency}`, round(small.polls / small.lifecycles, 2), 'requests');
    const rate = (r: RunResult, n: number) => (n * 1000) / r.wallMs;
    report.info(2, `requests/s at concurrency ${small.concurrency}`, round(rate(small, small.requests), 1), 'req/s');
    report.info(2, `requests/s at concurrency ${big.concurrency}`, round(rate(big, big.requests), 1), 'req/s');
    const pollGrowth = rate(big, big.polls) / rate(small, small.polls);
    const inflightGrowth = big.concurrency / small.concurrency;
    report.add({
      figure: 2,
      name: `status-poll rate growth, concurrency ${small.concurrency} -> ${big.concurrency}`,
      value: round(pollGrowth, 2),
      unit: 'x',
      target: `< ${inflightGrowth} (sublinear)`,
      pass: pollGrowth < inflightGrowth,
      note: `${round(rate(small, small.polls), 1)} -> ${round(rate(big, big.polls), 1)} polls/s`,
    });
    const listPolls = (r: RunResult) => rate(r, volumeListPolls(r.delta));
    report.info(
      2,
      `batched volume-list polls/s, concurrency ${small.concurrency} -> ${big.concurrency}`,
      round(listPolls(big) / listPolls(small), 2),
      'x',
      `${round(listPolls(small), 1)} -> ${round(listPolls(big), 1)} lists/s while the lifecycle rate grows ${round(rate(big, big.lifecycles) / rate(small, small.lifecycles), 2)}x`,
    );
    for (const [method, ms] of Object.entries(big.durations)) {
      const per = CRITICAL_PATH_PER_LIFECYCLE_MS / CHANGES_PER_LIFECYCLE;
      report.info(2, `${method} at concurrency ${big.concurrency}, median`, round(median(ms), 0), 'ms', `p90 ${round(percentile(ms, 90), 0)} ms; its critical path ${per} ms`);
    }
    report.detail(2, `OpenStack requests per lifecycle by route, concurrency ${big.concurrency}:`);
    for (const [route, n] of Object.entries(big.delta).sort((a, b) => b[1] - a[1])) {
      report.detail(2, `  ${(n / big.lifecycles).toFixed(2).padStart(6)}  ${route}`);
    }
    return { controllerRssAtEndMiB: rssAtEnd, controllerRssSettledMiB: rssSettled };
  } finally {
    await driver.stop();
    await sim.stop();
  }
}

async function run(sim: Simulator, driver: DriverProcess, lifecycles: number, concurrency: number, tag: string): Promise<RunResult> {
  const { controller } = driver.clients;
  const servers = sim.instances.map((i) => i.id);
  const before = sim.control.counters();
  const cpuBefore = driver.sample().cpuMs;
  const selfBefore = process.cpuUsage();
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const durations: Record<string, number[]> = {};
  const timed = async (method: string, request: unknown) => {
    const t0 = performance.now();
    try {
      return await rpc(controller, method, request);
    } finally {
      (durations[method] ??= []).push(performance.now() - t0);
    }
  };
  const started = performance.now();
  const worker = async (w: number) => {
    const server = servers[w % servers.length];
    for (;;) {
      const i = next++;
      if (i >= lifecycles) return;
      try {
        const created = await timed('CreateVolume', { name: `bench-${tag}-${i}`, capacity_range: { required_bytes: GiB }, volume_capabilities: [MOUNT_CAP] });
        const id = created.volume.volume_id;
        await timed('ControllerPublishVolume', { volume_id: id, node_id: server, volume_capability: MOUNT_CAP, readonly: false });
        await timed('ControllerUnpublishVolume', { volume_id: id, node_id: server });
        await timed('DeleteVolume', { volume_id: id });
      } catch (e) {
        failures++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const wallMs = performance.now() - started;
  const cpuMs = driver.sample().cpuMs - cpuBefore;
  const self = process.cpuUsage(selfBefore);
  const benchCpuMs = (self.user + self.system) / 1000;
  const delta = counterDelta(before, sim.control.counters());
  return { lifecycles, concurrency, wallMs, cpuMs, delta, durations, requests: apiRequests(delta), polls: statusPolls(delta), failures, firstError, benchCpuMs };
}
