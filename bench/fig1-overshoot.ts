// Figure 1: time-to-ready overshoot. The simulator finishes every state change
// after T; overshoot = when the RPC returned - when the simulator changed the
// state (both on this process's wall clock). The five operations of one
// repetition run at once on separate volumes. Each T gets a fresh driver
// process, so what its waiter learned about one T does not carry into another
// (a cloud's changes take about the same time from one call to the next; the
// first repetition of each T is the unlearned case, the later ones learned).
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim';
import type { Cloud } from '../src/openstack/types';
import { DriverProcess, rpc } from './driver-process';
import { FLOCKER, INCUMBENT, scheduleOvershoot } from './incumbent';
import type { Report } from './report';
import { GiB, MOUNT_CAP, setupClient, untilVolumeStatus } from './common';
import { snapshotChangedAt, volumeChangedAt } from './sim-clock';
import { median, round } from './stats';

const OPS = ['create', 'attach', 'detach', 'extend', 'snapshot'] as const;
type OpName = (typeof OPS)[number];
const T_SECONDS = [0.3, 1, 3, 10, 20];
/** Repetitions per T (the five operations of one repetition run at once; the whole figure takes about 4 minutes). */
const REPS: Record<number, number> = { 0.3: 5, 1: 5, 3: 5, 10: 5, 20: 5 };
const LATENCY_MS = 20;
const SETUP_DURATION_MS = 10;

/** The waits behind each RPC, by the kind the controller gives the waiter. */
const WAIT_KINDS: Record<OpName, string[]> = {
  create: ['volume:create'],
  attach: ['volume:attach'],
  detach: ['volume:detach', 'nova:detach'],
  extend: ['volume:extend'],
  snapshot: ['snapshot:create'],
};

interface Sample {
  overshootMs: number;
  polls: number;
}

export async function figure1(report: Report, work: string, opts: { quick: boolean }): Promise<void> {
  const sim = await startSimulator({
    stateDir: path.join(work, 'sim1'),
    latencyMs: LATENCY_MS,
    hypervisor: false,
    maxDiskDevices: 1024,
  });
  const setup = setupClient(sim);
  const samples = new Map<string, Sample[]>();
  try {
    for (const t of T_SECONDS) {
      const driver = await DriverProcess.start({ sim, dir: path.join(work, `fig1-T${t}`), mode: 'controller', logLevel: 'debug' });
      try {
        const reps = opts.quick ? 1 : REPS[t];
        for (let rep = 0; rep < reps; rep++) {
          const got = await oneRound(sim, setup, driver, t * 1000, `${t}-${rep}`);
          for (const op of OPS) {
            const key = `${op}|${t}`;
            samples.set(key, [...(samples.get(key) ?? []), got[op]]);
          }
        }
      } finally {
        await driver.stop();
      }
    }
  } finally {
    await setup.close();
    await sim.stop();
  }

  for (const op of OPS) {
    for (const t of T_SECONDS) {
      const s = samples.get(`${op}|${t}`) ?? [];
      const over = round(median(s.map((x) => x.overshootMs)), 0);
      const polls = Math.max(...s.map((x) => x.polls));
      const inc = scheduleOvershoot(INCUMBENT[op], t * 1000, LATENCY_MS);
      const flo = scheduleOvershoot(FLOCKER, t * 1000, LATENCY_MS);
      const incText = inc.overshootMs === null ? `gives up at ${round(inc.givesUpAtMs! / 1000, 1)} s` : `${round(inc.overshootMs, 0)} ms`;
      const note = `n=${s.length} [${s.map((x) => round(x.overshootMs, 0)).join(', ')}]; incumbent ${incText}, Flocker ${round(flo.overshootMs!, 0)} ms (computed)`;
      report.atMost(1, `${op} T=${t}s overshoot, median`, over, 'ms', 100, note);
      report.atMost(1, `${op} T=${t}s status polls, max`, polls, 'polls', 12, `[${s.map((x) => x.polls).join(', ')}]; incumbent ${inc.polls}, Flocker ${flo.polls} (computed)`);
    }
  }
}

async function oneRound(
  sim: Simulator,
  setup: Cloud,
  driver: DriverProcess,
  changeMs: number,
  tag: string,
): Promise<Record<OpName, Sample>> {
  const server = sim.instances[0].id;
  // Set-up through our own client with near-instant changes, so the driver's waiter learns nothing from it.
  sim.control.setDurations({ create: SETUP_DURATION_MS, attach: SETUP_DURATION_MS });
  const [forAttach, forDetach, forExtend, forSnapshot] = await Promise.all(
    ['a', 'd', 'e', 's'].map((k) => setup.blockStorage.createVolume({ name: `fig1-${tag}-${k}`, size: 1 })),
  );
  for (const v of [forAttach, forDetach, forExtend, forSnapshot]) await untilVolumeStatus(sim, v.id, ['available']);
  await setup.compute.attachVolume(server, forDetach.id);
  await untilVolumeStatus(sim, forDetach.id, ['in-use']);
  sim.control.setDurations({ create: changeMs, attach: changeMs, detach: changeMs, extend: changeMs, snapshot: changeMs });
  const logMark = (await driver.logLines()).length;

  const { controller } = driver.clients;
  const timed = async (call: () => Promise<unknown>): Promise<number> => {
    await call();
    return Date.now();
  };
  const createName = `fig1-${tag}-new`;
  let createdId = '';
  let snapshotId = '';
  const [createdAt, attachedAt, detachedAt, extendedAt, snapshottedAt] = await Promise.all([
    timed(async () => {
      const r = await rpc(controller, 'CreateVolume', { name: createName, capacity_range: { required_bytes: GiB }, volume_capabilities: [MOUNT_CAP] });
      createdId = r.volume.volume_id;
    }),
    timed(() => rpc(controller, 'ControllerPublishVolume', { volume_id: forAttach.id, node_id: server, volume_capability: MOUNT_CAP, readonly: false })),
    timed(() => rpc(controller, 'ControllerUnpublishVolume', { volume_id: forDetach.id, node_id: server })),
    timed(() => rpc(controller, 'ControllerExpandVolume', { volume_id: forExtend.id, capacity_range: { required_bytes: 2 * GiB }, volume_capability: MOUNT_CAP })),
    // CreateSnapshot blocks until Cinder has made the snapshot (the spec: until it is cut).
    timed(async () => {
      const r = await rpc(controller, 'CreateSnapshot', { name: `fig1-${tag}-snap`, source_volume_id: forSnapshot.id, parameters: {} });
      if (!r.snapshot.ready_to_use) throw new Error(`CreateSnapshot answered before the snapshot was ready: ${JSON.stringify(r.snapshot)}`);
      snapshotId = r.snapshot.snapshot_id;
    }),
  ]);

  const polls = pollsByKind((await driver.logLines()).slice(logMark));
  const sample = (op: OpName, returnedAt: number, changedAt: number): Sample => ({
    overshootMs: returnedAt - changedAt,
    polls: WAIT_KINDS[op].reduce((n, k) => n + (polls.get(k) ?? 0), 0),
  });
  return {
    create: sample('create', createdAt, volumeChangedAt(sim, createdId)),
    attach: sample('attach', attachedAt, volumeChangedAt(sim, forAttach.id)),
    detach: sample('detach', detachedAt, volumeChangedAt(sim, forDetach.id)),
    extend: sample('extend', extendedAt, volumeChangedAt(sim, forExtend.id)),
    snapshot: sample('snapshot', snapshottedAt, snapshotChangedAt(sim, snapshotId)),
  };
}

function pollsByKind(lines: Array<Record<string, unknown>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of lines) {
    if (l.msg !== 'wait finished' || typeof l.kind !== 'string') continue;
    out.set(l.kind, (out.get(l.kind) ?? 0) + Number(l.polls ?? 0));
  }
  return out;
}
