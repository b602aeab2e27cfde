// Assembles a running driver from validated options: the OpenStack clouds
// (controller), the instance identity (node), the CSI services, and the gRPC
// server. The CLI (cli.ts) and the tests both start the driver through here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from './log';
import type { Endpoint, Mode } from './cli/args';
import { ConfigError, type DriverConfig } from './config/config';
import { CsiServer } from './csi/server';
import { loadCsi, warmCodecsInBackground } from './csi/proto';
import { wrapService } from './csi/pipeline';
import { unavailable } from './csi/errors';
import type { Handler } from './csi/context';
import { createIdentityService, type Readiness } from './identity/service';
import type { Cloud, InstanceIdentity } from './openstack/types';
// The controller half (OpenStack client, Cinder and Nova code) and the node half are loaded
// only by a driver that runs them: a node plugin never holds the HTTP client
// and the controller code in memory, nor a controller the node code.

export interface DriverOptions {
  mode: Mode;
  endpoint: Endpoint;
  config: DriverConfig;
  logger: Logger;
  /** How long start-up may try to learn the node's identity before serving anyway (not ready). */
  identityTimeoutMs?: number;
  /** Tests only: the background identity retries' schedule (default 2 s doubling to 60 s, a warning at most once a minute). */
  identityRetry?: IdentityRetry;
}

export interface IdentityRetry {
  firstDelayMs: number;
  maxDelayMs: number;
  /** After the first failed retry is logged, at most one warning per this interval. */
  warnEveryMs: number;
}

const IDENTITY_RETRY: IdentityRetry = { firstDelayMs: 2000, maxDelayMs: 60_000, warnEveryMs: 60_000 };

export interface RunningDriver {
  address: string;
  /** Current readiness, as Probe reports it. */
  readiness(): Readiness;
  stop(graceMs?: number): Promise<'graceful' | 'forced'>;
}

export const VENDOR_VERSION: string = readPackageVersion();

export async function startDriver(opts: DriverOptions): Promise<RunningDriver> {
  const { config, logger, mode } = opts;
  const csi = loadCsi().csi.v1;
  const server = new CsiServer(logger);
  const runsController = mode === 'controller' || mode === 'all';
  const runsNode = mode === 'node' || mode === 'all';
  const closers: Array<() => Promise<void>> = [];
  const readinessChecks: Array<() => Readiness> = [];
  let onlineExpansion = true;
  let cloudSummaries: Array<Record<string, string>> | undefined;

  if (runsController) {
    if (config.clouds.length === 0) {
      throw new ConfigError(
        `no OpenStack cloud is configured in ${config.source}: add a 'clouds:' or 'dataset:' section, or set OS_AUTH_URL and friends (or OS_CLOUD)`,
      );
    }
    const { createCloud } = await import('./openstack/cloud');
    const { describeCloud } = await import('./openstack/summary');
    cloudSummaries = config.clouds.map(describeCloud);
    const { createControllerService } = await import('./controller/service');
    const { createCloudSet } = await import('./controller/clouds');
    // createCloud names the cloud on every line it logs.
    const clouds: Cloud[] = config.clouds.map((c) => createCloud(c, logger));
    closers.push(async () => {
      await Promise.all(clouds.map((c) => c.close()));
    });
    const cloudSet = createCloudSet(clouds);
    const keepAuthenticating = authenticateInBackground(clouds, logger, (cloud) => {
      // Online expansion is what the default cloud's Cinder can do.
      if (cloud === clouds[0]) {
        void cloud.blockStorage.features().then(
          (f) => (onlineExpansion = f.inUseExtend),
          () => undefined,
        );
      }
    });
    closers.push(async () => keepAuthenticating.stop());
    readinessChecks.push(() => {
      const notReady = clouds.find((c) => !c.health().ready);
      if (!notReady) return { ready: true };
      const h = notReady.health();
      if (h.catalogError) return { ready: false, reason: `cloud '${notReady.name}': ${h.catalogError}` };
      return { ready: false, reason: `cloud '${notReady.name}' not authenticated yet${h.lastError ? `: ${h.lastError}` : ''}` };
    });
    const controller = createControllerService({
      clouds: cloudSet,
      settings: {
        clusterId: config.clusterId,
        azMap: config.controller.azMap,
        defaultVolumeType: config.controller.defaultVolumeType,
        topology: config.controller.topology,
        advertiseGetSnapshot: config.controller.advertiseGetSnapshot,
        sameNameCheckMs: config.controller.sameNameCheckMs,
      },
      logger,
    });
    // First of the closers: its looks use the clouds, which the others close.
    closers.unshift(async () => controller.stop());
    server.addService(csi.Controller.service, wrapService(csi.Controller.service, controller.handlers as unknown as Record<string, Handler<any, any>>, { logger, service: 'Controller', calls: server.calls }));
  }

  if (runsNode) {
    const node = await nodeHandlers(config, logger, opts.identityTimeoutMs ?? 15_000, opts.identityRetry ?? IDENTITY_RETRY);
    closers.push(node.stop);
    readinessChecks.push(node.readiness);
    server.addService(csi.Node.service, wrapService(csi.Node.service, node.handlers, { logger, service: 'Node', calls: server.calls }));
  }

  const readiness = (): Readiness => {
    for (const check of readinessChecks) {
      const r = check();
      if (!r.ready) return r;
    }
    return { ready: true };
  };
  const identity = createIdentityService({
    driverName: config.driverName,
    vendorVersion: VENDOR_VERSION,
    controller: runsController,
    // The controller's and the node plugins' configs must agree on this
    // (the README says to set it in both), so both tell the sidecars the same.
    topology: config.controller.topology,
    onlineExpansion: () => onlineExpansion,
    readiness,
  });
  server.addService(csi.Identity.service, wrapService(csi.Identity.service, identity as unknown as Record<string, Handler<any, any>>, { logger, service: 'Identity', calls: server.calls }));

  let address: string;
  try {
    address = await server.listen(opts.endpoint);
  } catch (e) {
    for (const close of closers) await close().catch(() => undefined);
    throw e;
  }
  logger.info(
    {
      mode,
      driver: config.driverName,
      version: VENDOR_VERSION,
      config: config.source,
      // The node never calls OpenStack: its clouds would only mislead.
      ...(cloudSummaries ? { clouds: cloudSummaries } : {}),
      ...(runsNode
        ? { node: { metadata_search_order: config.node.metadataSearchOrder, metadata_url: config.node.metadataUrl, ...(config.node.instanceId ? { instance_id: config.node.instanceId } : {}) } }
        : {}),
    },
    'driver started',
  );
  // protobufjs would otherwise generate each message's codec during its first RPC.
  const served = ['Identity', ...(runsController ? (['Controller'] as const) : []), ...(runsNode ? (['Node'] as const) : [])] as const;
  warmCodecsInBackground(served, (err) => logger.warn({ err }, 'could not prepare the message codecs ahead; the first calls will'));

  return {
    address,
    readiness,
    async stop(graceMs = 10_000) {
      const outcome = await server.shutdown(graceMs);
      for (const close of closers) await close().catch((e) => logger.warn({ err: e }, 'error while closing'));
      return outcome;
    },
  };
}

/**
 * Authenticate every cloud now and keep retrying the ones that fail, so Probe
 * turns ready as soon as the cloud answers. Never blocks start-up.
 */
function authenticateInBackground(clouds: Cloud[], logger: Logger, onReady: (c: Cloud) => void): { stop(): void } {
  const controller = new AbortController();
  for (const cloud of clouds) {
    void (async () => {
      let delay = 1000;
      let failures = 0;
      while (!controller.signal.aborted) {
        try {
          await cloud.authenticate({ signal: AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]) });
          if (failures > 0) logger.info({ cloud: cloud.name, failed_attempts: failures }, `cloud '${cloud.name}' authenticated; ready`);
          onReady(cloud);
          return;
        } catch (e) {
          if (controller.signal.aborted) return;
          failures++;
          // The cloud's own line (keystone.ts, at warn) says why; this one only when the next try comes.
          logger.debug({ cloud: cloud.name, error: (e as Error).message, retry_in_ms: delay }, 'authentication failed; retrying');
          await new Promise((r) => setTimeout(r, delay).unref());
          delay = Math.min(delay * 2, 30_000);
        }
      }
    })();
  }
  return { stop: () => controller.abort() };
}

/**
 * The node service needs the Nova instance ID. It comes from --node-id or the
 * config, else from the config drive or metadata service. Until it is known,
 * node calls answer UNAVAILABLE and Probe says not ready.
 */
async function nodeHandlers(
  config: DriverConfig,
  logger: Logger,
  identityTimeoutMs: number,
  retry: IdentityRetry,
): Promise<{ handlers: Record<string, Handler<any, any>>; readiness: () => Readiness; stop: () => Promise<void> }> {
  const { createInstanceMetadata } = await import('./openstack/metadata');
  const { createNodeService } = await import('./node/service');
  const { resolveNodeSettings } = await import('./node/settings');
  const { blkidTools } = await import('./node/blkid-places');
  // Asked now, so that the first NodeStage does not wait for the two forks.
  void blkidTools().then(({ wipefs, libblkid, places }) =>
    logger[places ? 'debug' : 'info'](
      { util_linux: wipefs, libblkid, blank_check: places ? 'read the places libblkid reads' : 'wipefs on every stage' },
      places ? 'blank-device check: libblkid version traced; a zero device needs no wipefs' : 'blank-device check: libblkid version not traced; wipefs runs on every stage',
    ),
  );
  // Said once, at start: a node whose image lacks a mkfs fails every first stage of that fsType.
  void import('./node/format').then(({ missingMkfs }) => missingMkfs()).then(
    (missing) => {
      if (missing.length === 0) return;
      const packages = [...new Set(missing.flatMap((m) => (m.package ? [m.package] : [])))];
      logger.warn(
        { missing: missing.map((m) => m.command), packages, path: process.env.PATH },
        `${missing.map((m) => m.command).join(', ')} not found on PATH: volumes with fsType ${missing.map((m) => m.fsType).join(' or ')} cannot be formatted on this node; use an image with the Debian package${packages.length > 1 ? 's' : ''} ${packages.join(', ')}`,
      );
    },
    () => undefined,
  );
  const metadata = createInstanceMetadata({
    order: config.node.metadataSearchOrder,
    metadataUrl: config.node.metadataUrl,
    override: { instanceId: config.node.instanceId, availabilityZone: config.node.availabilityZone },
    logger,
    sysfsRoot: config.node.sysfsRoot,
  });
  let service: Record<string, Handler<any, any>> | undefined;
  let lastError = 'looking up the instance ID';
  const stopper = new AbortController();

  const build = (id: InstanceIdentity) => {
    service = createNodeService(resolveNodeSettings({
      nodeId: id.instanceId,
      availabilityZone: config.node.availabilityZone ?? id.availabilityZone,
      ...(config.node.maxVolumesPerNode !== undefined ? { maxVolumesPerNode: config.node.maxVolumesPerNode } : {}),
      deviceRoot: config.node.deviceRoot,
      sysfsRoot: config.node.sysfsRoot,
      stateDir: config.node.stateDir,
      kubeletRoot: config.node.kubeletRoot,
      confinePaths: config.node.confinePaths,
    })) as unknown as Record<string, Handler<any, any>>;
    logger.info({ node_id: id.instanceId, zone: id.availabilityZone, source: id.source }, 'node identity known');
  };

  const resolve = async (timeoutMs: number) => {
    try {
      build(await metadata.identity({ signal: AbortSignal.any([stopper.signal, AbortSignal.timeout(timeoutMs)]) }));
    } catch (e) {
      lastError = (e as Error).message;
      throw e;
    }
  };

  // What the lookup tries, in its order, for the log and for the message of every node call meanwhile.
  const tried = config.node.metadataSearchOrder.map((source) =>
    source === 'configDrive' ? 'the config drive' : `the metadata service at ${config.node.metadataUrl}`,
  );
  try {
    await resolve(identityTimeoutMs);
  } catch {
    logger.error({ error: lastError, tried }, 'node identity unknown; node calls will answer UNAVAILABLE until it is found');
    void (async () => {
      let delay = retry.firstDelayMs;
      // The first failed retry is logged, then at most one line per warnEveryMs, counting the failures it stands for.
      let lastWarned: number | undefined;
      let unlogged = 0;
      let failures = 0;
      while (!service && !stopper.signal.aborted) {
        await new Promise((r) => setTimeout(r, delay).unref());
        if (stopper.signal.aborted) return;
        const retryIn = Math.min(delay * 2, retry.maxDelayMs);
        delay = retryIn;
        try {
          await resolve(10_000);
        } catch {
          if (stopper.signal.aborted) return;
          failures++;
          unlogged++;
          if (lastWarned === undefined || Date.now() - lastWarned >= retry.warnEveryMs) {
            logger.warn(
              { error: lastError, tried, failed_attempts: unlogged, retry_in_ms: retryIn },
              `node identity still unknown: ${tried.join(', then ')} did not answer; retrying`,
            );
            lastWarned = Date.now();
            unlogged = 0;
          }
        }
      }
      if (service && failures > 0) logger.info({ failed_attempts: failures }, 'node identity found after failed retries; node calls are served');
    })();
  }

  const rpcs = Object.keys(loadCsi().csi.v1.Node.service);
  const handlers: Record<string, Handler<any, any>> = {};
  for (const rpc of rpcs) {
    handlers[rpc] = (req, ctx) => {
      if (!service) throw unavailable(`this node does not know its Nova instance ID yet (${lastError}); make ${tried.join(' or ')} reachable from the node; driver.node.instance_id or --node-id only in a config of this one node, never in deploy/node-config.yaml, which every node shares`);
      const h = service[rpc];
      if (!h) throw unavailable(`${rpc} is not available`);
      return h(req, ctx);
    };
  }
  return {
    handlers,
    readiness: () => (service ? { ready: true } : { ready: false, reason: `node identity unknown: ${lastError}` }),
    stop: async () => stopper.abort(),
  };
}

function readPackageVersion(): string {
  for (const dir of [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..')]) {
    try {
      return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version as string;
    } catch {
      // try the next place
    }
  }
  return '0.0.0';
}
