// The gRPC server: listens on a unix socket (and optionally TCP), and shuts
// down gracefully: stop accepting, let in-flight calls finish up to a bound,
// then force.
import { access, chmod, constants, mkdir, lstat, readFile, realpath, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log';
import { isLoopbackHost, type Endpoint } from '../cli/args';
import { CallsInFlight } from './pipeline';

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
  /** The calls running in its services' handlers (given to wrapService), named at shutdown. */
  readonly calls = new CallsInFlight();
  /** The socket this server made: its path, and what tells its file from a successor's (see shutdown). */
  private socket: { path: string; id: SocketId } | undefined;

  constructor(private readonly logger: Logger) {}

  addService(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, impl);
  }

  async listen(endpoint: Endpoint): Promise<string> {
    let address: string;
    if (endpoint.kind === 'unix') {
      await prepareSocketPath(endpoint.path);
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
    if (endpoint.kind === 'unix') {
      // Not left to the umask (which gave srwxr-xr-x): only this user, and root, may call. The
      // sidecars run as the driver's user (the controller pod) or as root (the node pod), as does kubelet.
      await chmod(endpoint.path, 0o600);
      this.socket = { path: endpoint.path, id: await socketId(endpoint.path) };
    }
    this.logger.info({ endpoint: address }, 'listening');
    return address;
  }

  /** Stop accepting; wait up to graceMs for running calls, then cut them off. */
  async shutdown(graceMs: number): Promise<'graceful' | 'forced'> {
    // Said now: a call the shutdown cuts off leaves no line of its own that says why.
    if (this.calls.size > 0) {
      this.logger.info(
        { in_flight: this.calls.list(), grace_ms: graceMs },
        `shutting down with ${this.calls.size} call${this.calls.size === 1 ? '' : 's'} in flight; waiting up to ${graceMs} ms for ${this.calls.size === 1 ? 'it' : 'them'}`,
      );
    }
    const outcome = await new Promise<'graceful' | 'forced'>((resolve) => {
      const timer = setTimeout(() => {
        const cut = this.calls.list();
        if (cut.length > 0) {
          this.logger.warn(
            { in_flight: cut, grace_ms: graceMs },
            `shutdown forced after ${graceMs} ms: ${cut.length} call${cut.length === 1 ? '' : 's'} cut off; the CO retries ${cut.length === 1 ? 'it' : 'them'}`,
          );
        }
        this.server.forceShutdown();
        resolve('forced');
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve('graceful');
      });
    });
    await this.removeOwnSocket();
    return outcome;
  }

  /**
   * Node (libuv) removes the socket's path as it stops listening, at the start
   * of shutdown; this is for a path it left. During the grace period a
   * successor (a rolling update) may have taken the path over, and its socket
   * must stay: only the file this server made is removed. The inode number
   * alone could be the freed one reused, so its change time must match too.
   */
  private async removeOwnSocket(): Promise<void> {
    const own = this.socket;
    if (!own) return;
    this.socket = undefined;
    const now = await socketId(own.path).catch(() => undefined);
    if (!now) return;
    if (now.dev !== own.id.dev || now.ino !== own.id.ino || now.ctimeNs !== own.id.ctimeNs) {
      this.logger.info({ socket: own.path }, 'another socket has taken the path over; leaving it');
      return;
    }
    await unlink(own.path).catch(() => undefined);
  }
}

interface SocketId {
  dev: bigint;
  ino: bigint;
  ctimeNs: bigint;
}

async function socketId(p: string): Promise<SocketId> {
  const st = await lstat(p, { bigint: true });
  return { dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs };
}

/**
 * Make the socket's directory, remove a stale socket left by a dead process,
 * and refuse to start when a live process still answers on it.
 */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  // Only this user (and root) may pass through what is made here.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A directory another user made (a shared /tmp path): say so, rather than grpc's "No address added".
  await access(dir, constants.W_OK | constants.X_OK).catch(() => {
    throw new StartupError(`cannot make the socket ${socketPath}: this user may not write to ${dir}; choose an --endpoint in a directory of your own`);
  });
  await requireSafeDirectories(dir, socketPath);
  let existing;
  try {
    existing = await lstat(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!existing.isSocket()) {
    throw new StartupError(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  if (await answers(socketPath)) {
    throw new StartupError(`another process is already serving ${socketPath}; stop it first`);
  }
  await unlink(socketPath);
}

/**
 * Every directory from the socket's up to /, by the path given and by the path
 * it resolves to, must belong to this user or to root, and only the sticky bit
 * (as /tmp has) lets others write to one: anyone who may rename or remove an
 * entry in any of them could swap the socket, or a directory on the way to it,
 * for their own and hear every call, secrets included. A link on the way must
 * be this user's or root's too. One exception: a filesystem mounted there is
 * shared as whoever mounted it chose; a pod's emptyDir is root's, mode 0777,
 * and shared only by the pod's own containers.
 */
async function requireSafeDirectories(dir: string, socketPath: string): Promise<void> {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const refuse = (why: string) => {
    throw new StartupError(`cannot make the socket ${socketPath}: ${why}; choose an --endpoint in a directory of your own`);
  };
  const seen = new Set<string>();
  for (const start of [dir, await realpath(dir)]) {
    for (let d = start; !seen.has(d); d = path.dirname(d)) {
      seen.add(d);
      const st = await lstat(d);
      if (st.uid !== uid && st.uid !== 0) {
        refuse(`${d} belongs to uid ${st.uid}, neither this user (${uid}) nor root, so its owner could replace the socket`);
      }
      const writable = st.mode & 0o022;
      if (st.isDirectory() && writable !== 0 && (st.mode & 0o1000) === 0 && !(await isMountPoint(d, st))) {
        const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
        const [who, they] = writable & 0o002 ? ['every user', 'any user'] : ['its group', 'its members'];
        refuse(`${d} is writable by ${who} (mode ${mode}) and not sticky, so ${they} could replace the socket`);
      }
    }
  }
}

/** Whether a filesystem is mounted at `dir`: on another device than its parent, or listed in the mount table (a bind mount keeps the device). */
async function isMountPoint(dir: string, st: Stats): Promise<boolean> {
  if ((await stat(path.dirname(dir))).dev !== st.dev) return true;
  const real = await realpath(dir);
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Field 5 is the mount point, with space, tab, newline and backslash written as \ooo.
  return table.split('\n').some((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === real);
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
