#!/usr/bin/env node
// `cinder-csi`: the driver's command line. Subcommands:
//   serve  run the CSI driver (controller, node or both)
//   sim    run the simulated OpenStack in the foreground
//   demo   run one volume lifecycle against the driver and print a timeline
// This file is the only place that wires the simulator into the driver.
// First, before anything allocates: the driver's V8 heap sizing (see cli/heap.ts).
import './cli/heap';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from './log';
import { parseServeArgs, parseEndpoint, SERVE_USAGE, UsageError, type ServeOptions } from './cli/args';
import { ConfigError, loadConfig, type DriverConfig } from './config/config';
import { startDriver, VENDOR_VERSION, type RunningDriver } from './driver';
import { logGrpcMessagesTo, StartupError } from './csi/server';
import { pointConfigAtSimulator } from './cli/sim-config';

const USAGE = `cinder-csi ${VENDOR_VERSION}: a CSI driver for OpenStack Cinder

Usage:
  cinder-csi serve --endpoint URL [flags]   run the driver (see: cinder-csi serve --help)
  cinder-csi sim [--listen HOST:PORT] [--state-dir DIR] [--tls]
                                            run the simulated OpenStack in the foreground
  cinder-csi demo [--endpoint URL]          run one volume lifecycle and print a timeline
  cinder-csi version
`;

/** How long in-flight calls may run after SIGTERM before they are cut off. */
const SHUTDOWN_GRACE_MS = 20_000;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'sim':
      return sim(rest);
    case 'demo': {
      const { runDemo } = await import('./cli/demo');
      return runDemo(rest);
    }
    case 'version':
    case '--version':
      process.stdout.write(`${VENDOR_VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`cinder-csi: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  let opts: ServeOptions;
  try {
    opts = parseServeArgs(args, process.env);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`cinder-csi serve: ${e.message}\n${SERVE_USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const logger = createLogger({ level: opts.logLevel });
  logGrpcMessagesTo(logger);
  let config: DriverConfig;
  try {
    // With --sim the simulator provides the cloud, so OS_* variables are ignored.
    config = loadConfig({ file: opts.config, env: opts.sim ? {} : process.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`cinder-csi: configuration error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.clusterId) config.clusterId = opts.clusterId;
  if (opts.driverName) config.driverName = opts.driverName;
  if (opts.nodeId) config.node.instanceId = opts.nodeId;

  let stopSim: (() => Promise<void>) | undefined;
  let mode = opts.mode;
  let driver: RunningDriver;
  try {
    if (opts.sim) {
      const started = await startEmbeddedSimulator(config, mode, logger);
      stopSim = started.stop;
      mode = started.mode;
    }
    driver = await startDriver({ mode, endpoint: parseEndpoint(opts.endpoint), config, logger });
  } catch (e) {
    await stopSim?.().catch(() => undefined);
    if (e instanceof ConfigError) {
      process.stderr.write(`cinder-csi: configuration error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof StartupError) {
      process.stderr.write(`cinder-csi: cannot start: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const outcome = await driver.stop(SHUTDOWN_GRACE_MS);
      await stopSim?.().catch((e) => logger.warn({ err: e }, 'simulator did not stop cleanly'));
      logger.info({ outcome }, 'stopped');
      logger.flush();
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
  // Only now, with the handlers in place: whoever reads this line may signal at once, and a
  // signal that came between the line and the handlers would kill the process uncleanly.
  if (opts.sim) {
    process.stdout.write(`cinder-csi is serving (${mode}) on ${opts.endpoint} against the simulated OpenStack; Ctrl-C stops it\n`);
  }
  return stopped;
}

/**
 * Start the in-process simulator and point the config at it: its cloud, and
 * for the node side its first emulated instance (ID, metadata service and the
 * device root where attached volumes appear). The node side needs the
 * simulator's disks, which are loop devices: without root, or where loop
 * devices cannot be made (a container without --privileged), 'all' becomes
 * 'controller' and says why.
 */
async function startEmbeddedSimulator(
  config: DriverConfig,
  mode: ServeOptions['mode'],
  logger: Logger,
): Promise<{ stop: () => Promise<void>; mode: ServeOptions['mode'] }> {
  const { startSimulator } = await import('./sim');
  const root = process.getuid?.() === 0;
  if (!root && mode === 'node') throw new StartupError('the node plugin on the simulator needs root (it mounts loop devices); run with sudo');
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sim-'));
  const sim = await startSimulator({ stateDir: path.join(stateDir, 'sim'), hypervisor: root, logger: logger.child({ component: 'sim' }) }).catch(async (err) => {
    await rm(stateDir, { recursive: true, force: true });
    throw err;
  });
  if (!sim.hypervisor && mode !== 'controller') {
    const why = root ? 'this machine cannot make loop devices (in a container, run it --privileged)' : 'not root (the node side makes loop devices and mounts them)';
    if (mode === 'node') {
      await stopSimulator(sim, stateDir);
      throw new StartupError(`the node plugin on the simulator cannot run: ${why}`);
    }
    logger.warn(`serving the controller only: ${why}`);
    process.stderr.write(`cinder-csi: only the controller runs: ${why}\n`);
    mode = 'controller';
  }
  const instance = sim.instances[0];
  pointConfigAtSimulator(config, sim, instance, path.join(stateDir, 'node'));
  config.source = 'the embedded simulator';
  logger.info({ url: sim.url, instance: instance.id, devices: sim.hypervisor }, 'simulated OpenStack started');
  return { stop: () => stopSimulator(sim, stateDir), mode };
}

/**
 * Stop a simulator this command started, and remove the temporary directory
 * it made for it; unless volumes are still mounted here (staged or published
 * by hand, and never unstaged): then say which, and keep their images.
 */
async function stopSimulator(sim: { stop(): Promise<{ stillMounted: string[] }> }, tempDir: string | undefined): Promise<void> {
  const { stillMounted } = await sim.stop();
  if (stillMounted.length === 0) {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    return;
  }
  const umount = `umount ${stillMounted.map((t) => JSON.stringify(t)).join(' ')}`;
  process.stderr.write(
    tempDir
      ? `cinder-csi: simulated volumes are still mounted at ${stillMounted.join(', ')}; their images stay in ${tempDir}.\n` +
          `  Unmount them (${umount}), then remove ${tempDir}.\n`
      : `cinder-csi: simulated volumes are still mounted at ${stillMounted.join(', ')}; unmount them (${umount}).\n`,
  );
}

async function sim(args: string[]): Promise<number> {
  let listen: string | undefined;
  let stateDir: string | undefined;
  let tls = false;
  const valueOf = (flag: string, value: string | undefined): string => {
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return value;
  };
  const level = process.env.CINDER_CSI_LOG_LEVEL ?? 'info';
  try {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`CINDER_CSI_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '--listen') listen = valueOf(a, args[++i]);
      else if (a === '--state-dir') stateDir = valueOf(a, args[++i]);
      else if (a === '--tls') tls = true;
      else if (a === '--help') {
        process.stdout.write(USAGE);
        return 0;
      } else throw new UsageError(`unknown argument '${a}'`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`cinder-csi sim: ${e.message}\n${USAGE}`);
    return 2;
  }
  const logger = createLogger({ level: level as LogLevel });
  const { runSimCommand } = await import('./sim');
  const tempDir = stateDir ? undefined : await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sim-'));
  const dir = stateDir ?? tempDir!;
  const simulator = await runSimCommand({ listen, stateDir: dir, tls, logger }).catch(async (err) => {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    throw err;
  });
  const stopped = new Promise<number>((resolve) => {
    const stop = async () => {
      // A --state-dir is the user's (it holds openrc and clouds.yaml); a directory made here goes.
      await stopSimulator(simulator, tempDir);
      resolve(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  });
  // The handlers first, then the line that invites Ctrl-C (see serve).
  process.stdout.write(
    `simulated OpenStack on ${simulator.url}\n  source ${path.join(dir, 'openrc')}\n  or OS_CLIENT_CONFIG_FILE=${path.join(dir, 'clouds.yaml')} OS_CLOUD=sim\n` +
      `  the driver, controller and node (its node is the simulator's instance ${simulator.instances[0]!.id}):\n` +
      `    cinder-csi serve --config ${path.join(dir, 'cinder-csi.yaml')} --endpoint unix:///tmp/cinder-csi-${process.getuid?.() ?? 0}/sim-driver.sock\nCtrl-C stops it\n`,
  );
  return stopped;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`cinder-csi: ${(err as Error).message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

export { main };
