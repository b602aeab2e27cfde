// The gRPC server: listens on a unix socket (and optionally TCP), and shuts
// down gracefully: stop accepting, let in-flight calls finish up to a bound,
// then force.
import { access, constants, mkdir, lstat, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log';
import { isLoopbackHost, type Endpoint } from '../cli/args';

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/**
 * grpc-js's own messages (by default printed to stderr as "E ..." lines) as
 * structured log lines, so that a driver's output is all JSON. Process-wide.
 */
export function logGrpcMessagesTo(logger: Logger): void {
  const log = logger.child({ component: 'grpc-js' });
  const text = (args: unknown[]) => args.map(String).join(' ');
  grpc.setLogger({
    error: (...args: unknown[]) => log.warn(text(args)),
    info: (...args: unknown[]) => log.info(text(args)),
    debug: (...args: unknown[]) => log.debug(text(args)),
  } as Partial<Console>);
}

export class CsiServer {
  private readonly server = new grpc.Server({
    // Calls are small; a cap keeps a confused client from holding memory.
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    // channelz (per-call counters and traces for a debugging service) is read by
    // nothing here: no channelz service is served. Off, each call does less.
    'grpc.enable_channelz': 0,
  });
  private socketPath: string | undefined;

  constructor(private readonly logger: Logger) {}

  addService(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, impl);
  }

  async listen(endpoint: Endpoint): Promise<string> {
    let address: string;
    if (endpoint.kind === 'unix') {
      await prepareSocketPath(endpoint.path);
      this.socketPath = endpoint.path;
      address = `unix://${endpoint.path}`;
    } else {
      address = endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
      // Only with --allow-remote-endpoint (cli/args.ts refuses it otherwise): said at every start.
      if (!isLoopbackHost(endpoint.host)) {
        this.logger.warn(
          { endpoint: address },
          'listening beyond loopback: anyone who reaches this address can call the driver without authentication, and the secrets sent with calls travel in clear text',
        );
      }
    }
    await new Promise<void>((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(new StartupError(`cannot listen on ${address}: ${err.message}`));
        else resolve();
      });
    });
    this.logger.info({ endpoint: address }, 'listening');
    return address;
  }

  /** Stop accepting; wait up to graceMs for running calls, then cut them off. */
  async shutdown(graceMs: number): Promise<'graceful' | 'forced'> {
    const outcome = await new Promise<'graceful' | 'forced'>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve('forced');
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve('graceful');
      });
    });
    if (this.socketPath) await unlink(this.socketPath).catch(() => undefined);
    return outcome;
  }
}

/**
 * Make the socket's directory, remove a stale socket left by a dead process,
 * and refuse to start when a live process still answers on it.
 */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  await mkdir(dir, { recursive: true });
  // A directory another user made (a shared /tmp path): say so, rather than grpc's "No address added".
  await access(dir, constants.W_OK | constants.X_OK).catch(() => {
    throw new StartupError(`cannot make the socket ${socketPath}: this user may not write to ${dir}; choose an --endpoint in a directory of your own`);
  });
  await requireTrustedOwner(dir, socketPath);
  let stat;
  try {
    stat = await lstat(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!stat.isSocket()) {
    throw new StartupError(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  if (await answers(socketPath)) {
    throw new StartupError(`another process is already serving ${socketPath}; stop it first`);
  }
  await unlink(socketPath);
}

/**
 * The socket's directory (and the link, if it is one) must belong to this user
 * or to root. One that another user made first in a shared directory such as
 * /tmp lets that user swap our socket for theirs and hear every call, secrets
 * included. Root-owned is fine: a pod's emptyDir is root's, mode 0777, and
 * shared only by the pod's own containers.
 */
async function requireTrustedOwner(dir: string, socketPath: string): Promise<void> {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  for (const st of [await lstat(dir), await stat(dir)]) {
    if (st.uid !== uid && st.uid !== 0) {
      throw new StartupError(
        `cannot make the socket ${socketPath}: ${dir} belongs to uid ${st.uid}, neither this user (${uid}) nor root, ` +
          `so its owner could replace the socket; choose an --endpoint in a directory of your own`,
      );
    }
  }
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const done = (live: boolean) => {
      socket.destroy();
      resolve(live);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}
