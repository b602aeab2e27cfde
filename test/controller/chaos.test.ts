// Chaos: many whole volume lifecycles at once, over the driver's real gRPC
// socket, while the simulated cloud misbehaves in ways drawn from a seeded
// PRNG (the same faults, in the same order, every run): 5xx answers, 429 and
// 413 with Retry-After, Nova's 409, dropped connections, latency spikes,
// expired tokens, slow state changes, attaches and detaches the compute host
// fails. The client behaves like the Kubernetes sidecars: any failure, a
// missed deadline included, is retried with the same request until it
// succeeds (some calls with deadlines short enough to expire mid-operation).
// What must hold, whatever the interleaving (timings are never asserted):
//   1. every answer is OK or a code CSI allows for that RPC here (never
//      UNKNOWN; INTERNAL only for what the cloud itself failed to do, saying
//      so), and every failure's message says what happens next;
//   2. every lifecycle converges once the faults stop;
//   3. one Cinder volume per CreateVolume name and one snapshot per
//      CreateSnapshot name, ever; Cinder's attachments are Nova's; nothing is
//      left half-attached once quiet, and nothing at all once deleted;
//   4. the driver authenticates again after tokens expire, once per expiry,
//      not once per request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import type { SimFault, SimInventory } from '../../src/sim';
import { seeded } from '../helpers/seeded';
import { BLOCK_RWX, Code, GiB, MOUNT_RWO, startController, type ControllerHarness } from './harness';

/** CHAOS_SEED=n explores another draw; the default is the one every run uses. */
const SEED = Number(process.env.CHAOS_SEED ?? 0x5eed_c1d3);
/** Lifecycles in all, and how many run at once. */
const LIFECYCLES = 40;
const IN_FLIGHT = 8;
/** Fault events, one every EVENT_MS while the lifecycles run; then the cloud is healthy again. */
const EVENTS = 120;
const EVENT_MS = 50;
/**
 * Token expiries at least this many events apart: longer than any one request takes here, so
 * no request meets two (a token refused again right after a new one was issued is UNAUTHENTICATED).
 */
const EXPIRY_EVERY = 30;
const DURATIONS = { create: 60, delete: 40, attach: 80, detach: 60, extend: 50, snapshot: 60 };
const SLOW_DURATIONS = { create: 200, delete: 120, attach: 200, detach: 200, extend: 150, snapshot: 200 };
/** How long one RPC may keep failing before the lifecycle is declared stuck. */
const RETRY_FOR_MS = 40_000;
const PREFIX = 'chaos-';

const pick = <T>(rnd: () => number, items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
const between = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ faults

/** Requests worth failing, by service and method: what every lifecycle step sends. */
const ROUTES: ReadonlyArray<Pick<SimFault, 'service' | 'method' | 'pathPattern'>> = [
  { service: 'volume', method: 'POST', pathPattern: '/volumes$' },
  { service: 'volume', method: 'GET', pathPattern: '/volumes/[0-9a-f-]{36}$' },
  { service: 'volume', method: 'GET', pathPattern: '/volumes/detail$' },
  { service: 'volume', method: 'POST', pathPattern: '/volumes/[0-9a-f-]{36}/action$' },
  { service: 'volume', method: 'DELETE', pathPattern: '/volumes/[0-9a-f-]{36}$' },
  { service: 'volume', method: 'POST', pathPattern: '/snapshots$' },
  { service: 'volume', method: 'GET', pathPattern: '/snapshots/' },
  { service: 'volume', method: 'DELETE', pathPattern: '/snapshots/' },
  { service: 'compute', method: 'POST', pathPattern: '/os-volume_attachments$' },
  { service: 'compute', method: 'GET', pathPattern: '/os-volume_attachments/' },
  { service: 'compute', method: 'DELETE', pathPattern: '/os-volume_attachments/' },
  { service: 'compute', method: 'GET', pathPattern: '/servers/[0-9a-f-]{36}$' },
];
const NOVA_ATTACHMENTS = ROUTES.filter((r) => r.service === 'compute' && r.pathPattern!.includes('os-volume_attachments') && r.method !== 'GET');

type Event =
  | { kind: 'fault'; fault: SimFault }
  | { kind: 'expire-tokens' }
  | { kind: 'slow' }
  | { kind: 'normal-speed' }
  | { kind: 'latency'; ms: number }
  | { kind: 'fail-attaches'; count: number }
  | { kind: 'fail-detaches'; count: number };

/** The fault events, all drawn from the seed before anything runs. */
function faultPlan(rnd: () => number): Event[] {
  const events: Event[] = [];
  let sinceExpiry = 0;
  for (let i = 0; i < EVENTS; i++) {
    const roll = rnd();
    const route = pick(rnd, ROUTES);
    const times = between(rnd, 1, 3);
    sinceExpiry++;
    if (roll < 0.3) events.push({ kind: 'fault', fault: { ...route, status: pick(rnd, [500, 502, 503]), times } });
    else if (roll < 0.4) events.push({ kind: 'fault', fault: { ...route, status: 429, retryAfter: between(rnd, 0, 1), times } });
    else if (roll < 0.45) {
      // Rate limiting as older Nova and Cinder answer it.
      const body = { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter: '1' } };
      events.push({ kind: 'fault', fault: { ...route, status: 413, retryAfter: 1, body, times: 1 } });
    } else if (roll < 0.52) {
      // Nova is busy with the server (another attach, a migration).
      const conflict = pick(rnd, NOVA_ATTACHMENTS);
      const message = `Cannot '${conflict.method === 'POST' ? 'attach_volume' : 'detach_volume'}' instance while it is in task_state resize_migrating`;
      events.push({ kind: 'fault', fault: { ...conflict, status: 409, body: { conflictingRequest: { code: 409, message } }, times } });
    } else if (roll < 0.56) events.push({ kind: 'fault', fault: { ...route, reset: true, times: between(rnd, 1, 2) } });
    // The change is made and its answer lost on the way back (a proxy's timeout).
    else if (roll < 0.6) events.push({ kind: 'fault', fault: { ...route, resetAfter: true, times: 1 } });
    else if (roll < 0.68) events.push({ kind: 'fault', fault: { ...route, delayMs: between(rnd, 200, 1200), times } });
    else if (roll < 0.71) events.push({ kind: 'latency', ms: pick(rnd, [0, 0, 30, 150]) });
    else if (roll < 0.75 && sinceExpiry > EXPIRY_EVERY) {
      events.push({ kind: 'expire-tokens' });
      sinceExpiry = 0;
    } else if (roll < 0.78) events.push({ kind: 'fault', fault: { service: 'identity', method: 'POST', pathPattern: '/auth/tokens$', status: pick(rnd, [500, 503]), times: 1 } });
    else if (roll < 0.84) events.push({ kind: pick(rnd, ['slow', 'normal-speed'] as const) });
    else if (roll < 0.92) events.push({ kind: 'fail-attaches', count: between(rnd, 1, 2) });
    else events.push({ kind: 'fail-detaches', count: 1 });
  }
  // At least one token expiry, whatever the draw.
  if (!events.some((e) => e.kind === 'expire-tokens')) events[Math.floor(EVENTS / 2)] = { kind: 'expire-tokens' };
  return events;
}

// -------------------------------------------------------------- lifecycles

type Source = 'empty' | 'snapshot' | 'clone';

interface Lifecycle {
  name: string;
  source: Source;
  /** A multiattach volume published to both nodes, else one node. */
  shared: boolean;
  node: number;
  sizeGiB: number;
  expandTo?: number;
  snapshot: boolean;
  /** Which steps run with deadlines short enough to expire mid-operation. */
  hurried: Set<string>;
}

const STEPS = ['CreateVolume', 'ControllerPublishVolume', 'ControllerExpandVolume', 'CreateSnapshot', 'DeleteSnapshot', 'ControllerUnpublishVolume', 'DeleteVolume'];

function workloadPlan(rnd: () => number): Lifecycle[] {
  return Array.from({ length: LIFECYCLES }, (_, i) => {
    const sizeGiB = between(rnd, 1, 2);
    return {
      name: `${PREFIX}vol-${i}`,
      source: pick(rnd, ['empty', 'empty', 'snapshot', 'clone'] as const),
      shared: rnd() < 0.35,
      node: between(rnd, 0, 1),
      sizeGiB,
      expandTo: rnd() < 0.6 ? sizeGiB + between(rnd, 1, 2) : undefined,
      snapshot: rnd() < 0.6,
      hurried: new Set(STEPS.filter(() => rnd() < 0.3)),
    };
  });
}

// ------------------------------------------------------------ the answers

/** Codes a retried call may see while the cloud misbehaves; INTERNAL only where the compute host failed, saying so. */
const RETRYABLE = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.ABORTED]);
const INTERNAL_ALLOWED: Record<string, RegExp> = {
  ControllerPublishVolume: /^attaching volume \S+ to server \S+ failed: .*the CO retries$/,
  ControllerUnpublishVolume: /^(detaching volume \S+ from server \S+ failed|the detach of volume \S+ that was under way failed): .*the CO retries$/,
};

interface Answer {
  method: string;
  code: number;
  details: string;
}

describe('chaos: whole controller lifecycles under seeded cloud faults', () => {
  let h: ControllerHarness;
  let nodes: string[];
  const answers: Answer[] = [];
  const violations: string[] = [];
  /** Every ID ever seen under each name the test gave (volumes and snapshots). */
  const volumeIdsByName = new Map<string, Set<string>>();
  const snapshotIdsByName = new Map<string, Set<string>>();

  before(async () => {
    h = await startController({ sim: { durations: DURATIONS, instances: [{ name: 'node-1' }, { name: 'node-2' }] } });
    nodes = h.driver.sim.instances.map((i) => i.id);
  });
  after(() => h.stop());

  const control = () => h.driver.sim.control;
  const inventory = (): SimInventory => control().inventory();

  function record(name: string, id: string, into: Map<string, Set<string>>): void {
    const ids = into.get(name) ?? new Set<string>();
    ids.add(id);
    into.set(name, ids);
  }

  /** What the cloud holds, looked at often: a second volume or snapshot of a name, or one side's attachment alone. */
  function observe(): void {
    const { volumes, snapshots, servers } = inventory();
    for (const v of volumes) if (v.name?.startsWith(PREFIX)) record(v.name, v.id, volumeIdsByName);
    for (const s of snapshots) if (s.name?.startsWith(PREFIX)) record(s.name, s.id, snapshotIdsByName);
    const cinder = volumes.flatMap((v) => v.attachments.map((a) => `${a.serverId}/${v.id}`)).sort();
    const nova = servers.flatMap((s) => s.volumeIds.map((id) => `${s.id}/${id}`)).sort();
    if (JSON.stringify(cinder) !== JSON.stringify(nova)) violations.push(`Cinder's attachments ${cinder.join(',')} are not Nova's ${nova.join(',')}`);
  }

  /** Checks one failed answer against what the spec allows for the RPC. */
  function judge(method: string, err: grpc.ServiceError): void {
    const { code, details } = err;
    answers.push({ method, code, details });
    const bad = (why: string): void => {
      violations.push(`${method} answered ${Code[code] ?? code} (${why}): ${details}`);
    };
    if (!details || details.length < 10) return bad('no message');
    if (code === Code.INTERNAL) {
      if (!INTERNAL_ALLOWED[method]?.test(details)) bad('INTERNAL for something that is no failure of the cloud');
      return;
    }
    if (!RETRYABLE.has(code)) return bad('not a code for a transient failure of the cloud');
    // ABORTED says why and that a retry will do; UNAVAILABLE and DEADLINE_EXCEEDED say so by their code.
    if (code === Code.ABORTED && !/retr|when|once/i.test(details)) bad('the message does not say what to do');
  }

  /** The sidecars' way: the same request again after every failure, with backoff, until OK. */
  async function retried<Res = any>(method: string, request: unknown, hurried: boolean, jitter: () => number): Promise<Res> {
    const end = Date.now() + RETRY_FOR_MS;
    let backoff = 50;
    for (let attempt = 1; ; attempt++) {
      // A hurried step's first attempts have deadlines that expire mid-operation.
      const deadline = hurried && attempt <= 3 ? between(jitter, 60, 300) : 10_000;
      try {
        const res = await h.rpc<Res>(method, request, deadline);
        answers.push({ method, code: Code.OK, details: '' });
        return res;
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (typeof err.code !== 'number') throw err;
        judge(method, err);
        if (Date.now() > end) throw new Error(`${method} ${JSON.stringify(request)} never succeeded; last answer ${Code[err.code]}: ${err.details}`);
        await sleep(backoff / 2 + jitter() * backoff);
        backoff = Math.min(1_000, backoff * 1.6);
      }
    }
  }

  const volumeById = (id: string) => inventory().volumes.find((v) => v.id === id);

  function assertAttached(volumeId: string, serverIds: string[], where: string): void {
    const v = volumeById(volumeId);
    assert.ok(v, `${where}: volume ${volumeId} exists`);
    for (const serverId of serverIds) {
      assert.ok(v.attachments.some((a) => a.serverId === serverId && a.state === 'attached'), `${where}: attached to ${serverId}: ${JSON.stringify(v.attachments)}`);
    }
  }

  async function runLifecycle(l: Lifecycle, base: { volumeId: string; snapshotId: string }, jitter: () => number): Promise<void> {
    const call = <Res = any>(method: string, request: unknown) => retried<Res>(method, request, l.hurried.has(method), jitter);
    const cap = l.shared ? BLOCK_RWX : MOUNT_RWO;
    const contentSource =
      l.source === 'snapshot' ? { snapshot: { snapshot_id: base.snapshotId } } : l.source === 'clone' ? { volume: { volume_id: base.volumeId } } : undefined;
    const created = await call('CreateVolume', {
      name: l.name,
      volume_capabilities: [cap],
      capacity_range: { required_bytes: l.sizeGiB * GiB },
      parameters: l.shared ? { type: 'multiattach' } : {},
      ...(contentSource ? { volume_content_source: contentSource } : {}),
    });
    const volumeId: string = created.volume.volume_id;
    const named = inventory().volumes.filter((v) => v.name === l.name);
    assert.deepEqual(named.map((v) => v.id), [volumeId], `${l.name}: one volume, the one answered`);
    assert.equal(named[0].status, 'available');
    assert.equal(named[0].size, l.sizeGiB);

    const servers = l.shared ? nodes : [nodes[l.node]];
    // Like two attachers (one per VolumeAttachment), at once.
    await Promise.all(servers.map((node_id) => call('ControllerPublishVolume', { volume_id: volumeId, node_id, volume_capability: cap, readonly: false })));
    assertAttached(volumeId, servers, `${l.name} published`);

    if (l.expandTo) {
      const res = await call('ControllerExpandVolume', { volume_id: volumeId, capacity_range: { required_bytes: l.expandTo * GiB }, volume_capability: cap });
      assert.equal(Number(res.capacity_bytes), l.expandTo * GiB);
      assert.equal(volumeById(volumeId)?.size, l.expandTo);
      assertAttached(volumeId, servers, `${l.name} expanded`);
    }

    if (l.snapshot) {
      const snapName = `${l.name}-snap`;
      // Of an attached volume: the VolumeSnapshotClass says force-create (Cinder wants it before 3.66).
      const res = await call('CreateSnapshot', { name: snapName, source_volume_id: volumeId, parameters: { 'force-create': 'true' } });
      const snapshotId: string = res.snapshot.snapshot_id;
      const snaps = inventory().snapshots.filter((s) => s.name === snapName);
      assert.deepEqual(snaps.map((s) => s.id), [snapshotId], `${snapName}: one snapshot, the one answered`);
      assert.equal(snaps[0].status, 'available');
      assert.equal(res.snapshot.ready_to_use, true);
      await call('DeleteSnapshot', { snapshot_id: snapshotId });
      assert.equal(inventory().snapshots.find((s) => s.id === snapshotId), undefined, `${snapName} is gone`);
    }

    await Promise.all(servers.map((node_id) => call('ControllerUnpublishVolume', { volume_id: volumeId, node_id })));
    const v = volumeById(volumeId);
    assert.deepEqual(v?.attachments, [], `${l.name}: no attachment left in Cinder`);
    assert.equal(v?.status, 'available', `${l.name} is available once unpublished`);
    for (const s of inventory().servers) assert.ok(!s.volumeIds.includes(volumeId), `${l.name}: Nova's server ${s.id} maps it no more`);

    await call('DeleteVolume', { volume_id: volumeId });
    assert.equal(volumeById(volumeId), undefined, `${l.name} is gone`);
  }

  it('every lifecycle converges, answers only what CSI allows, and the cloud is left as it was', async () => {
    const plan = workloadPlan(seeded(SEED));
    const events = faultPlan(seeded(SEED ^ 0xfa17));
    const jitter = seeded(SEED ^ 0x7177);

    // The sources for restores and clones, made while the cloud is healthy.
    const baseVolumeId = await h.createVolume(`${PREFIX}base`);
    const baseSnapshot = await h.rpc('CreateSnapshot', { name: `${PREFIX}base-snap`, source_volume_id: baseVolumeId });
    const base = { volumeId: baseVolumeId, snapshotId: baseSnapshot.snapshot.snapshot_id as string };
    control().resetCounters();

    let done = false;
    const monitor = (async () => {
      while (!done) {
        observe();
        await sleep(10);
      }
    })();

    let expiries = 0;
    const applied: string[] = [];
    const injector = (async () => {
      for (const e of events) {
        if (done) break;
        applied.push(e.kind === 'fault' ? JSON.stringify(e.fault) : JSON.stringify(e));
        switch (e.kind) {
          case 'fault':
            control().addFault(e.fault);
            break;
          case 'expire-tokens':
            control().expireTokens();
            expiries++;
            break;
          case 'slow':
            control().setDurations(SLOW_DURATIONS);
            break;
          case 'normal-speed':
            control().setDurations(DURATIONS);
            break;
          case 'latency':
            control().setLatency(e.ms);
            break;
          case 'fail-attaches':
            control().failAttaches(e.count);
            break;
          case 'fail-detaches':
            control().failDetaches(e.count);
            break;
        }
        await sleep(EVENT_MS);
      }
      // The cloud recovers: every lifecycle must now finish.
      control().clearFaults();
      control().setLatency(0);
      control().setDurations(DURATIONS);
      control().failAttaches(0);
      control().failDetaches(0);
    })();

    const queue = [...plan];
    const failures: string[] = [];
    const worker = async () => {
      for (let l = queue.shift(); l; l = queue.shift()) {
        await runLifecycle(l, base, jitter).catch((err: Error) => failures.push(`${l!.name}: ${err.message}`));
      }
    };
    try {
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    } finally {
      done = true;
      await injector;
      await monitor;
    }
    observe();

    // Invariant 2: every lifecycle converged.
    assert.deepEqual(failures, [], `lifecycles that did not converge (faults applied: ${applied.length})`);
    // Invariant 1: only the answers CSI allows.
    assert.deepEqual(violations, []);

    // The faults did bite: without failed answers this test proves nothing.
    const count = (code: number) => answers.filter((a) => a.code === code).length;
    const byCode = Object.fromEntries([...new Set(answers.map((a) => a.code))].map((c) => [Code[c], count(c)]));
    console.log(`chaos: ${applied.length} fault events, ${expiries} token expiries; answers ${JSON.stringify(byCode)}`);
    // CHAOS_VERBOSE=1 prints every failed answer.
    if (process.env.CHAOS_VERBOSE) for (const a of answers) if (a.code !== Code.OK) console.log(`${a.method} ${Code[a.code]}: ${a.details}`);
    for (const code of [Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL]) assert.ok(count(code) > 0, `some calls answered ${Code[code]}`);

    // Invariant 3: one volume per name, one snapshot per name, ever.
    for (const [name, ids] of volumeIdsByName) assert.equal(ids.size, 1, `volume name ${name} had ${ids.size} volumes: ${[...ids].join(', ')}`);
    for (const [name, ids] of snapshotIdsByName) assert.equal(ids.size, 1, `snapshot name ${name} had ${ids.size} snapshots: ${[...ids].join(', ')}`);
    assert.equal(volumeIdsByName.size, LIFECYCLES + 1);

    // Invariant 4: a new token after each expiry, and not one per request.
    const auths = control().counters()['identity.auth'] ?? 0;
    // (An expiry while Keystone itself is failing needs no authentication of its own: the one under way serves it.)
    assert.ok(expiries > 0 && auths >= 1, `${auths} authentications for ${expiries} token expiries: the driver never authenticated again`);
    assert.ok(auths <= expiries + 1, `${auths} authentications for ${expiries} token expiries: the driver storms Keystone`);
    // Nor does it hammer a failing Keystone: one more request per answer Keystone failed, no more.
    const keystoneFaults = events.filter((e) => e.kind === 'fault' && e.fault.service === 'identity').length;
    const keystoneRequests = control().counters()['POST /identity/v3/auth/tokens'] ?? 0;
    assert.ok(keystoneRequests <= auths + keystoneFaults, `${keystoneRequests} requests to Keystone for ${auths} authentications and ${keystoneFaults} Keystone failures`);

    // Quiet, and then nothing left behind.
    await h.rpc('DeleteSnapshot', { snapshot_id: base.snapshotId });
    await h.rpc('DeleteVolume', { volume_id: base.volumeId });
    const left = inventory();
    assert.deepEqual(left.volumes, [], 'no volume left');
    assert.deepEqual(left.snapshots, [], 'no snapshot left');
    for (const s of left.servers) assert.deepEqual(s.volumeIds, [], `Nova's server ${s.id} maps no volume`);
  });
});
