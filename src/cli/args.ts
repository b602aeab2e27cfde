// Command-line parsing for `cinder-csi`. Flags are parsed once into typed
// options; every flag has an environment-variable equivalent (the flag wins),
// so the manifests can use either.
import { BlockList, isIP } from 'node:net';
import { LOG_LEVELS, type LogLevel } from '../log';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Mode = 'controller' | 'node' | 'all';
export const MODES: readonly Mode[] = ['controller', 'node', 'all'];

export interface ServeOptions {
  endpoint: string;
  mode: Mode;
  config?: string;
  nodeId?: string;
  clusterId?: string;
  driverName?: string;
  logLevel: LogLevel;
  /** Run against the embedded simulated OpenStack instead of a cloud. */
  sim: boolean;
  /** Serve a tcp:// endpoint that is not loopback (refused without it). */
  allowRemoteEndpoint: boolean;
  help: boolean;
}

interface FlagSpec {
  flag: string;
  env?: string;
  key: keyof ServeOptions;
  kind: 'string' | 'boolean';
  help: string;
}

export const SERVE_FLAGS: readonly FlagSpec[] = [
  { flag: '--endpoint', env: 'CSI_ENDPOINT', key: 'endpoint', kind: 'string', help: 'unix:///absolute/path.sock or tcp://host:port' },
  { flag: '--mode', env: 'CINDER_CSI_MODE', key: 'mode', kind: 'string', help: 'controller, node or all (default all)' },
  { flag: '--config', env: 'CINDER_CSI_CONFIG', key: 'config', kind: 'string', help: 'YAML configuration file (default: OS_* variables only)' },
  { flag: '--node-id', env: 'CINDER_CSI_NODE_ID', key: 'nodeId', kind: 'string', help: 'Nova instance UUID of this node (default: from the config drive or metadata service)' },
  { flag: '--cluster-id', env: 'CINDER_CSI_CLUSTER_ID', key: 'clusterId', kind: 'string', help: 'cluster ID recorded in volume metadata (default: driver.cluster_id, else kubernetes)' },
  { flag: '--driver-name', env: 'CINDER_CSI_DRIVER_NAME', key: 'driverName', kind: 'string', help: 'CSI driver name (default cinder.csi.openstack.org)' },
  { flag: '--log-level', env: 'CINDER_CSI_LOG_LEVEL', key: 'logLevel', kind: 'string', help: `${LOG_LEVELS.join(', ')} (default info)` },
  { flag: '--sim', env: 'CINDER_CSI_SIM', key: 'sim', kind: 'boolean', help: 'run on the embedded simulated OpenStack (no cloud needed)' },
  {
    flag: '--allow-remote-endpoint',
    env: 'CINDER_CSI_ALLOW_REMOTE_ENDPOINT',
    key: 'allowRemoteEndpoint',
    kind: 'boolean',
    help: 'let a tcp:// endpoint listen beyond loopback (no authentication, no encryption: a trusted network only)',
  },
  { flag: '--help', key: 'help', kind: 'boolean', help: 'show this help' },
];

export const SERVE_USAGE = [
  'Usage: cinder-csi serve --endpoint URL [--mode controller|node|all] [--config FILE]',
  '                        [--node-id ID] [--cluster-id ID] [--driver-name NAME] [--log-level LEVEL] [--sim]',
  '                        [--allow-remote-endpoint]',
  '',
  ...SERVE_FLAGS.map((f) => `  ${(f.flag + (f.kind === 'string' ? ' VALUE' : '')).padEnd(23)} ${f.help}${f.env ? ` [$${f.env}]` : ''}`),
].join('\n');

/** Parse `serve`'s arguments (without the subcommand). Throws UsageError on anything unknown or malformed. */
export function parseServeArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ServeOptions {
  const raw: Partial<Record<keyof ServeOptions, string | boolean>> = {};
  for (const spec of SERVE_FLAGS) {
    const v = spec.env ? env[spec.env] : undefined;
    if (v === undefined || v === '') continue;
    if (spec.kind === 'boolean') {
      // Strict: a 'yes' read as false would start something the operator did not ask for.
      if (!['true', '1', 'false', '0'].includes(v)) throw new UsageError(`$${spec.env} must be true, false, 1 or 0, not '${v}'`);
      raw[spec.key] = v === 'true' || v === '1';
    } else raw[spec.key] = v;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = SERVE_FLAGS.find((f) => f.flag === name);
    if (!spec) throw new UsageError(`unknown argument '${arg}'`);
    if (spec.kind === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`${name} takes no value`);
      raw[spec.key] = inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
    raw[spec.key] = value;
  }
  const opts: ServeOptions = {
    endpoint: (raw.endpoint as string | undefined) ?? '',
    mode: (raw.mode as Mode | undefined) ?? 'all',
    config: raw.config as string | undefined,
    nodeId: raw.nodeId as string | undefined,
    clusterId: raw.clusterId as string | undefined,
    driverName: raw.driverName as string | undefined,
    logLevel: (raw.logLevel as LogLevel | undefined) ?? 'info',
    sim: raw.sim === true,
    allowRemoteEndpoint: raw.allowRemoteEndpoint === true,
    help: raw.help === true,
  };
  if (opts.help) return opts;
  if (!MODES.includes(opts.mode)) throw new UsageError(`--mode must be controller, node or all, not '${opts.mode}'`);
  if (!LOG_LEVELS.includes(opts.logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!opts.endpoint) throw new UsageError('--endpoint is required (for example unix:///csi/csi.sock)');
  const endpoint = parseEndpoint(opts.endpoint);
  // The CSI services have no authentication and no TLS here: whoever reaches the port could
  // have the node plugin mount as root, delete volumes, and read the secrets sent with calls.
  if (endpoint.kind === 'tcp' && !isLoopbackHost(endpoint.host) && !opts.allowRemoteEndpoint) {
    throw new UsageError(
      `endpoint '${opts.endpoint}' is not on loopback, so anyone who reaches it could call the driver unauthenticated ` +
        `and read the secrets sent with its calls in clear text; use a unix:// socket or tcp://127.0.0.1:PORT, ` +
        `or add --allow-remote-endpoint if the network is trusted`,
    );
  }
  return opts;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6'); // BlockList also matches it as ::ffff:127.x.x.x

/**
 * Whether a tcp:// endpoint's host is this machine's loopback: `localhost`, or
 * a loopback address written out. Any other name is not resolved here: it
 * could name any address, now or later.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseEndpoint(url: string): Endpoint {
  if (url.startsWith('unix://')) {
    const path = url.slice('unix://'.length);
    if (!path.startsWith('/')) throw new UsageError(`endpoint '${url}' must be unix:///absolute/path`);
    if (path.includes('\0')) throw new UsageError(`endpoint '${url}' contains a NUL byte`);
    return { kind: 'unix', path };
  }
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url);
  if (m) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new UsageError(`endpoint '${url}' has an invalid port`);
    return { kind: 'tcp', host: m[1].replace(/^\[|\]$/g, ''), port };
  }
  throw new UsageError(`endpoint '${url}' must be unix:///absolute/path or tcp://host:port`);
}
