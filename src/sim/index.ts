// The simulated OpenStack: Keystone, Cinder, Nova and the metadata service on
// one loopback port, with optional loop-device block devices. Used in-process
// by tests and benchmarks (startSimulator) and by `cinder-csi sim` (runSimCommand).
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../log';
import type { CloudConfig } from '../openstack/types';
import { which } from '../util/exec';
import { CinderApi } from './cinder';
import { writeClientFiles } from './clientfiles';
import { controlHttp } from './control';
import { Counters, FaultSet, loadFaultsFile } from './faults';
import { Hypervisor } from './hypervisor';
import { Identity, makeCredentials, REGION } from './keystone';
import { metadataRoutes } from './metadata';
import { NovaApi } from './nova';
import { RequestHandler } from './server';
import { CloudState, type InstanceRecord, now } from './state';
import { makeCertificates } from './tls';
import type { SimControl, SimInstance, SimInstanceSpec, SimOptions, SimStopped, Simulator } from './types';

export type * from './types';
export { loadFaultsFile } from './faults';

const DEFAULT_TYPES: Array<{ name: string; extraSpecs?: Record<string, string> }> = [
  { name: '__DEFAULT__' },
  { name: 'multiattach', extraSpecs: { multiattach: '<is> True' } },
  // Names a backend the simulator does not have: a volume of this type fails to schedule, as on a real cloud.
  { name: 'no-backend', extraSpecs: { volume_backend_name: 'no-such-backend' } },
];

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

async function decideHypervisor(requested: boolean | undefined, stateDir: string, logger: Logger): Promise<boolean> {
  const root = process.getuid?.() === 0;
  const want = requested ?? root;
  if (!want) {
    logger.info('sim: block devices are not emulated (hypervisor off); the APIs work without them');
    return false;
  }
  if (!root) {
    logger.warn('sim: block devices are not emulated: loop devices need root');
    return false;
  }
  if (!(await which('losetup'))) {
    logger.warn('sim: block devices are not emulated: losetup is not installed');
    return false;
  }
  const why = await Hypervisor.loopDevicesUnavailable(stateDir);
  if (why) {
    logger.warn({ error: why }, 'sim: block devices are not emulated: this machine cannot make loop devices (in a container, run it --privileged)');
    return false;
  }
  return true;
}

export async function startSimulator(opts: SimOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`the simulator listens on loopback only, not ${host}`);
  const ownsStateDir = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sim-')));
  try {
    await mkdir(stateDir, { recursive: true });
    return await start(opts, stateDir, ownsStateDir);
  } catch (err) {
    if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
}

async function start(opts: SimOptions, stateDir: string, ownsStateDir: boolean): Promise<Simulator> {
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';

  const hvEnabled = await decideHypervisor(opts.hypervisor, stateDir, logger);
  const hypervisor = new Hypervisor(hvEnabled, stateDir, logger);
  const regions = opts.regions ?? [REGION];
  if (regions.length === 0) throw new Error('regions must name at least one region');
  const credentials = makeCredentials(regions[0]);
  const cinderVersions = opts.cinderVersions ?? ['v1', 'v2', 'v3'];
  if (cinderVersions.length === 0) throw new Error('cinderVersions must name at least one API');
  let url = '';
  /** Where the metadata service is: the APIs' URL, or with TLS a plain-HTTP listener of its own. */
  let metadataBase = '';
  const baseUrl = (): string => url;
  let latencyMs = opts.latencyMs ?? 0;
  const faults = new FaultSet();
  for (const f of opts.faults ?? []) faults.add(f);
  const counters = new Counters();
  const state = new CloudState(
    credentials.projectId,
    credentials.userId,
    opts.availabilityZones ?? ['nova'],
    opts.volumeTypes ?? DEFAULT_TYPES,
    opts.quotas ?? {},
    opts.durations ?? {},
    hypervisor,
    logger,
  );
  const identity = new Identity(credentials, {
    baseUrl,
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3600,
    cinderVersions,
    regions,
    onAuth: () => counters.inc('identity.auth'),
  });
  const cinder = new CinderApi(state, {
    versions: cinderVersions,
    maxMicroversion: opts.maxMicroversion ?? '3.70',
    showUserExtraSpecs: opts.showUserExtraSpecs ?? true,
    availabilityZoneFallback: opts.availabilityZoneFallback ?? false,
    baseUrl,
  });
  const nova = new NovaApi(state, { maxMicroversion: opts.maxComputeMicroversion ?? '2.96', maxDiskDevices: opts.maxDiskDevices ?? 26, baseUrl });

  const instances: SimInstance[] = [];
  const toPublic = (r: InstanceRecord): SimInstance => ({ id: r.id, name: r.name, availabilityZone: r.availabilityZone, deviceRoot: r.deviceRoot, metadataUrl: `${metadataBase}/metadata/${r.id}` });

  const control: SimControl = {
    addFault: (f) => faults.add(f),
    clearFaults: () => faults.clear(),
    setLatency: (ms) => {
      latencyMs = ms;
    },
    setDurations: (d) => {
      state.durations = { ...state.durations, ...d };
    },
    expireTokens: () => identity.expireAll(),
    deleteApplicationCredential: () => identity.deleteApplicationCredential(),
    counters: () => counters.snapshot(),
    resetCounters: () => counters.reset(),
    volume: (id) => state.volumes.get(id),
    snapshot: (id) => state.snapshots.get(id),
    inventory: () => ({
      volumes: [...state.volumes.values()].map((v) => ({
        id: v.id,
        name: v.name,
        status: v.status,
        size: v.size,
        volumeType: state.typeName(v.volumeTypeId),
        snapshotId: v.snapshotId,
        sourceVolId: v.sourceVolId,
        createdAt: v.createdAt,
        attachments: v.attachments.map((a) => ({ serverId: a.serverId, state: a.state })),
      })),
      snapshots: [...state.snapshots.values()].map((s) => ({ id: s.id, name: s.name, status: s.status, volumeId: s.volumeId })),
      servers: [...state.instances.values()].map((i) => ({ id: i.id, volumeIds: [...i.attachments.keys()] })),
    }),
    setVolumeStatus: (id, status) => {
      const v = state.volumes.get(id);
      if (!v) throw new Error(`no volume ${id}`);
      state.setVolumeStatus(v, status);
    },
    failAttaches: (count) => {
      state.failures.attach = count;
    },
    failDetaches: (count) => {
      state.failures.detach = count;
    },
    failDeletes: (count) => {
      state.failures.delete = count;
    },
    setSnapshotStatus: (id, status) => {
      const snap = state.snapshots.get(id);
      if (!snap) throw new Error(`no snapshot ${id}`);
      state.setSnapshotStatus(snap, status);
    },
    setBackupStatus: (id, status) => {
      if (!state.backups.get(id)) throw new Error(`no backup ${id}`);
      state.setBackupStatus(id, status);
    },
    setBackendCapacity: (gb) => {
      state.backendCapacityGb = gb;
    },
    addInstance: async (spec: SimInstanceSpec) => {
      const id = spec.id ?? randomUUID();
      if (state.instances.has(id)) throw new Error(`instance ${id} exists`);
      if ([...state.instances.values()].some((i) => i.name === spec.name)) throw new Error(`instance name ${spec.name} is taken`);
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(spec.name)) throw new Error(`instance name ${spec.name} is not a simple name`);
      const az = spec.availabilityZone ?? state.availabilityZones[0];
      if (!state.availabilityZones.includes(az)) throw new Error(`unknown availability zone ${az}`);
      const deviceRoot = path.join(stateDir, 'instances', spec.name, 'dev');
      await mkdir(path.join(deviceRoot, 'disk', 'by-id'), { recursive: true });
      const rec: InstanceRecord = { id, name: spec.name, availabilityZone: az, deviceRoot, status: 'ACTIVE', createdAt: now(), attachments: new Map() };
      state.instances.set(id, rec);
      const pub = toPublic(rec);
      instances.push(pub);
      return pub;
    },
    deleteInstance: async (id, opts) => {
      const rec = state.instances.get(id);
      if (!rec) throw new Error(`no instance ${id}`);
      await state.detachAll(rec, opts?.cinderKeepsAttachments);
      state.instances.delete(id);
      instances.splice(instances.findIndex((i) => i.id === id), 1);
      await rm(path.dirname(rec.deviceRoot), { recursive: true, force: true });
    },
    shelveOffloadInstance: async (id) => {
      const rec = state.instances.get(id);
      if (!rec) throw new Error(`no instance ${id}`);
      await state.shelveOffload(rec);
    },
  };

  const handler = new RequestHandler({
    routes: [...identity.routes(), ...cinder.routes(), ...nova.routes(), ...metadataRoutes(state)],
    faults,
    counters,
    identity,
    logger,
    latencyMs: () => latencyMs,
    baseUrl,
    control: (method, p, body) => controlHttp(control, method, p, body),
  });

  const tls = opts.tls ? await makeCertificates(await mkdir(path.join(stateDir, 'tls'), { recursive: true }).then(() => path.join(stateDir, 'tls'))) : undefined;
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler.handle) : http.createServer(handler.handle);
  // Benchmarks hold many keep-alive connections; do not let idle ones pile up forever.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  url = `${tls ? 'https' : 'http'}://${hostInUrl}:${port}`;
  // A cloud serves its APIs over TLS but its metadata service in plain HTTP
  // (169.254.169.254 is link-local; the driver refuses https there): with TLS,
  // the metadata routes get a plain listener of their own, and only they.
  const metadataServer = tls
    ? http.createServer((req, res) => {
        if ((req.url ?? '').startsWith('/metadata/')) return handler.handle(req, res);
        res.writeHead(404, { 'content-type': 'text/plain' }).end('this listener serves only the metadata service\n');
      })
    : undefined;
  if (metadataServer) {
    await new Promise<void>((resolve, reject) => {
      metadataServer.once('error', reject);
      metadataServer.listen(0, host, () => {
        metadataServer.off('error', reject);
        resolve();
      });
    });
  }
  metadataBase = metadataServer ? `http://${hostInUrl}:${(metadataServer.address() as AddressInfo).port}` : url;
  const authUrl = `${url}/identity/v3`;

  for (const spec of opts.instances ?? [{ name: 'node-1' }]) await control.addInstance(spec);

  let stopping: Promise<SimStopped> | undefined;
  const stop = (): Promise<SimStopped> => {
    stopping ??= (async () => {
      await state.stop();
      for (const listener of metadataServer ? [server, metadataServer] : [server]) {
        await new Promise<void>((resolve) => {
          listener.close(() => resolve());
          listener.closeAllConnections();
        });
      }
      const stillMounted = await hypervisor.mountedTargets();
      await hypervisor.stop();
      if (stillMounted.length > 0) {
        // Their loop devices go once unmounted (autoclear); their images must stay until then.
        logger.warn({ stillMounted, stateDir }, 'sim: volumes are still mounted here; their images are kept until you unmount them');
      } else if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
      else for (const d of ['volumes', 'snapshots', 'backups', 'instances', 'tls']) await rm(path.join(stateDir, d), { recursive: true, force: true });
      logger.info({ url }, 'sim: stopped');
      return { stillMounted };
    })();
    return stopping;
  };

  logger.info({ url, stateDir, hypervisor: hvEnabled, cinderVersions }, 'sim: listening');
  return {
    url,
    authUrl,
    stateDir,
    caFile: tls?.caFile,
    hypervisor: hvEnabled,
    instances,
    credentials,
    control,
    cloudConfig: (overrides: Partial<CloudConfig> = {}): CloudConfig => ({
      name: 'sim',
      auth: {
        authUrl,
        authPlugin: 'password',
        identityApiVersion: '3',
        username: credentials.username,
        password: credentials.password,
        projectName: credentials.projectName,
        userDomainName: credentials.userDomainName,
        projectDomainName: credentials.projectDomainName,
      },
      region: credentials.region,
      interface: 'public',
      tls: { verify: true, caFile: tls?.caFile },
      blockStorageApiVersion: 'auto',
      requestTimeoutMs: 30_000,
      ...overrides,
    }),
    writeClientFiles: (dir) =>
      writeClientFiles(dir, {
        authUrl,
        credentials,
        caFile: tls?.caFile,
        node: { metadataUrl: instances[0]!.metadataUrl, deviceRoot: instances[0]!.deviceRoot, stateDir: path.join(dir, 'node-state') },
      }),
    stop,
  };
}

/** Parses '--listen': 'host:port', '[::1]:port', ':port' or 'port'. */
export function parseListen(listen: string): { host: string; port: number } {
  // HOST:PORT, [IPV6]:PORT, :PORT or PORT alone (on 127.0.0.1).
  const m = /^(?:(?:\[([^\]]+)\]|([^:\[\]]*)):)?(\d+)$/.exec(listen.trim());
  if (!m) throw new Error(`--listen must be host:port, not '${listen}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** `cinder-csi sim`: starts the simulator and writes openrc and clouds.yaml into the state directory. */
export async function runSimCommand(opts: { listen?: string; stateDir?: string; tls?: boolean; faultsFile?: string; logger: Logger }): Promise<Simulator> {
  const { host, port } = opts.listen ? parseListen(opts.listen) : { host: '127.0.0.1', port: 0 };
  const faults = opts.faultsFile ? await loadFaultsFile(opts.faultsFile) : [];
  const sim = await startSimulator({ host, port, stateDir: opts.stateDir, tls: opts.tls, faults, logger: opts.logger });
  try {
    await sim.writeClientFiles(sim.stateDir);
  } catch (err) {
    await sim.stop();
    throw err;
  }
  opts.logger.info(
    { url: sim.url, authUrl: sim.authUrl, openrc: path.join(sim.stateDir, 'openrc'), cloudsYaml: path.join(sim.stateDir, 'clouds.yaml'), driverConfig: path.join(sim.stateDir, 'cinder-csi.yaml') },
    'sim: ready; source the openrc to use it',
  );
  return sim;
}
