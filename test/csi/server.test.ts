// The gRPC server on a unix socket (issue 2, item 2): a stale socket left by a
// dead process is replaced, a live one or a regular file is refused, and
// shutdown lets running calls finish up to a bound, then cuts them off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { CsiServer, StartupError } from '../../src/csi/server';
import { wrapService } from '../../src/csi/pipeline';
import { loadCsi } from '../../src/csi/proto';
import type { CallContext } from '../../src/csi/context';
import { silentLogger } from '../../src/log';
import { call, connect, expectCode } from '../helpers/grpc';
import { captureLog, gate, until } from '../helpers/server';

const exec = promisify(execFile);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-server-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const exists = (p: string) => lstat(p).then(
  () => true,
  () => false,
);

/** A server with an Identity service whose Probe waits as long as the test says. */
function probeServer(probe: (ctx: CallContext) => Promise<unknown>): CsiServer {
  const server = new CsiServer(silentLogger);
  const def = loadCsi().csi.v1.Identity.service;
  server.addService(def, wrapService(def, { Probe: (_req, ctx) => probe(ctx) }, { logger: silentLogger, service: 'Identity' }));
  return server;
}

const ready = async () => ({ ready: { value: true } });

/** A server on socketPath whose Probe waits until released, with one such call running in it. */
async function serverWithRunningCall(socketPath: string) {
  const release = gate<void>();
  let entered = false;
  const server = probeServer(async () => {
    entered = true;
    await release.promise;
    return { ready: { value: true } };
  });
  await server.listen({ kind: 'unix', path: socketPath });
  const clients = connect(`unix://${socketPath}`);
  try {
    const running = call(clients.identity, 'Probe', {});
    await until(() => entered, 5000, 'the call to reach its handler');
    return { server, clients, running, release: () => release.open() };
  } catch (e) {
    clients.close();
    throw e;
  }
}

const asRoot = { skip: process.getuid?.() !== 0 ? 'needs root to give a directory to another user' : false };

/** What listen() refuses the socket path with. */
async function refusal(socketPath: string): Promise<string> {
  const server = probeServer(ready);
  try {
    await server.listen({ kind: 'unix', path: socketPath });
  } catch (e) {
    assert.ok(e instanceof StartupError, String(e));
    assert.equal(await exists(socketPath), false, 'no socket made');
    return e.message;
  }
  await server.shutdown(1000);
  assert.fail(`${socketPath} was accepted`);
}

/** listen() serves there; the server is shut down again. */
async function accepted(socketPath: string): Promise<void> {
  const server = probeServer(ready);
  await server.listen({ kind: 'unix', path: socketPath });
  await server.shutdown(1000);
}

test('a stale socket left by a dead process is removed and the server serves on it', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    // A process that binds the socket and dies without cleaning up, as a crashed driver would.
    await exec(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]).catch(() => undefined);
    assert.ok((await lstat(socketPath)).isSocket(), 'the dead process left its socket behind');

    const server = probeServer(ready);
    await server.listen({ kind: 'unix', path: socketPath });
    const clients = connect(`unix://${socketPath}`);
    try {
      assert.deepEqual(await call(clients.identity, 'Probe', {}), { ready: { value: true } });
    } finally {
      clients.close();
      await server.shutdown(1000);
    }
    assert.equal(await exists(socketPath), false, 'shutdown removes the socket');
  });
});

test("the socket's directory is created when missing", async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'plugins', 'cinder.csi.openstack.org', 'csi.sock');
    const server = probeServer(ready);
    assert.equal(await server.listen({ kind: 'unix', path: socketPath }), `unix://${socketPath}`);
    await server.shutdown(1000);
  });
});

test('a live server on the path is a StartupError, and the live server keeps serving', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    const first = probeServer(ready);
    await first.listen({ kind: 'unix', path: socketPath });
    const clients = connect(`unix://${socketPath}`);
    try {
      const second = probeServer(ready);
      await assert.rejects(second.listen({ kind: 'unix', path: socketPath }), (e) => {
        assert.ok(e instanceof StartupError);
        assert.match(e.message, /another process is already serving .*csi\.sock/);
        return true;
      });
      assert.deepEqual(await call(clients.identity, 'Probe', {}), { ready: { value: true } });
    } finally {
      clients.close();
      await first.shutdown(1000);
    }
  });
});

test('a regular file at the path is a StartupError and is left alone', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    await writeFile(socketPath, 'precious data');
    const server = probeServer(ready);
    await assert.rejects(server.listen({ kind: 'unix', path: socketPath }), (e) => {
      assert.ok(e instanceof StartupError);
      assert.match(e.message, /csi\.sock exists and is not a socket/);
      return true;
    });
    assert.equal(await readFile(socketPath, 'utf8'), 'precious data');
  });
});

test('graceful shutdown lets a running call finish, then refuses new ones', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    const { server, clients, running, release } = await serverWithRunningCall(socketPath);
    try {
      const shutdown = server.shutdown(10_000);
      setTimeout(release, 200);
      assert.deepEqual(await running, { ready: { value: true } }, 'the running call got its answer');
      assert.equal(await shutdown, 'graceful');
      assert.equal(await exists(socketPath), false);

      const late = connect(`unix://${socketPath}`);
      try {
        await expectCode(call(late.identity, 'Probe', {}, { deadlineMs: 2000 }), status.UNAVAILABLE);
      } finally {
        late.close();
      }
    } finally {
      clients.close();
    }
  });
});

test('a call that outlives the grace bound is cut off: shutdown reports forced and the handler is cancelled', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    let handlerSignal: AbortSignal | undefined;
    const server = probeServer(
      (ctx) =>
        new Promise((_resolve, reject) => {
          handlerSignal = ctx.signal;
          ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')));
        }),
    );
    await server.listen({ kind: 'unix', path: socketPath });
    const clients = connect(`unix://${socketPath}`);
    try {
      const running = call(clients.identity, 'Probe', {}, { deadlineMs: 30_000 });
      running.catch(() => undefined);
      await until(() => handlerSignal !== undefined, 5000, 'the call to reach its handler');
      const started = Date.now();
      assert.equal(await server.shutdown(300), 'forced');
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 5000, `shutdown took ${took} ms for a 300 ms bound`);
      await assert.rejects(running, (e: any) => typeof e.code === 'number' && e.code !== status.OK);
      await until(() => handlerSignal!.aborted, 2000, "the handler's signal to abort");
      assert.equal(await exists(socketPath), false);
    } finally {
      clients.close();
    }
  });
});

test('a TCP endpoint beyond loopback (only ever with --allow-remote-endpoint) is warned about at start; loopback is not', async () => {
  for (const [host, warned] of [['0.0.0.0', true], ['127.0.0.1', false]] as const) {
    const log = captureLog('info');
    const server = new CsiServer(log.logger);
    try {
      await server.listen({ kind: 'tcp', host, port: 0 }); // port 0: any free one
    } finally {
      await server.shutdown(1000);
    }
    const warnings = log.lines().filter((l) => l.level === 'warn');
    if (!warned) {
      assert.deepEqual(warnings, [], host);
      continue;
    }
    assert.equal(warnings.length, 1, log.text());
    assert.match(String(warnings[0]!.msg), /^listening beyond loopback: anyone who reaches this address can call the driver without authentication/);
    assert.equal(warnings[0]!.endpoint, '0.0.0.0:0');
  }
});

test('the socket is 0600 and the directory made for it 0700, whatever the umask says', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'made', 'csi.sock');
    const server = probeServer(ready);
    const umask = process.umask(0); // a umask of 0 would otherwise give rwx to everyone
    try {
      await server.listen({ kind: 'unix', path: socketPath });
    } finally {
      process.umask(umask);
    }
    try {
      assert.equal((await lstat(socketPath)).mode & 0o777, 0o600);
      assert.equal((await stat(path.dirname(socketPath))).mode & 0o777, 0o700);
    } finally {
      await server.shutdown(1000);
    }
  });
});

test("a directory above the socket's that another user owns is refused, though the socket's own is root's", asRoot, async () => {
  // The review's case: /tmp/x/evil is nobody's; the driver made evil/sub, so sub is root's,
  // but nobody can rename sub away, make another, and listen there in the driver's place.
  await withTempDir(async (dir) => {
    const evil = path.join(dir, 'evil');
    await mkdir(evil, { mode: 0o755 });
    await chown(evil, 65534, 65534);
    const socketPath = path.join(evil, 'sub', 'csi.sock');
    assert.equal(
      await refusal(socketPath),
      `cannot make the socket ${socketPath}: ${evil} belongs to uid 65534, neither this user (0) nor root, so its owner could replace the socket; choose an --endpoint in a directory of your own`,
    );
  });
});

test('a directory on the way that others may write to is refused unless it is sticky, as /tmp is', async () => {
  await withTempDir(async (dir) => {
    const shared = path.join(dir, 'shared');
    await mkdir(path.join(shared, 'sub'), { recursive: true });
    const socketPath = path.join(shared, 'sub', 'csi.sock');
    await chmod(shared, 0o777); // root's (this user's) and open to all: anyone could rename sub
    assert.equal(
      await refusal(socketPath),
      `cannot make the socket ${socketPath}: ${shared} is writable by every user (mode 0777) and not sticky, so any user could replace the socket; choose an --endpoint in a directory of your own`,
    );
    await chmod(shared, 0o770);
    assert.match(await refusal(socketPath), / is writable by its group \(mode 0770\) and not sticky, so its members could replace the socket;/);
    await chmod(path.join(shared, 'sub'), 0o777);
    await chmod(shared, 0o755);
    assert.match(await refusal(socketPath), /: \S+\/shared\/sub is writable by every user \(mode 0777\)/, "the socket's own directory too");
    await chmod(path.join(shared, 'sub'), 0o1777);
    await chmod(shared, 0o1777);
    await accepted(socketPath); // sticky: others may not rename or remove what is not theirs

    // A link on the way is followed: what it leads to is checked too.
    await chmod(shared, 0o777);
    await symlink(path.join(shared, 'sub'), path.join(dir, 'link'));
    assert.match(await refusal(path.join(dir, 'link', 'csi.sock')), new RegExp(`^cannot make the socket ${dir}/link/csi\\.sock: ${shared} is writable by every user \\(mode 0777\\)`));
  });
});

test("a filesystem mounted for the socket is trusted though it is mode 0777, as a pod's emptyDir is", asRoot, async (t) => {
  await withTempDir(async (dir) => {
    const volume = path.join(dir, 'socket-dir');
    await mkdir(volume);
    try {
      await exec('mount', ['-t', 'tmpfs', '-o', 'mode=0777,size=1m', 'tmpfs', volume]);
    } catch (e) {
      t.skip(`cannot mount a tmpfs here: ${(e as Error).message}`);
      return;
    }
    try {
      assert.equal((await stat(volume)).mode & 0o7777, 0o777);
      await accepted(path.join(volume, 'csi.sock'));
      // The same mode on a plain directory is not trusted.
      const plain = path.join(dir, 'plain');
      await mkdir(plain);
      await chmod(plain, 0o777);
      assert.match(await refusal(path.join(plain, 'csi.sock')), /plain is writable by every user \(mode 0777\)/);
      // A bind mount keeps the device number of what it shows (the mount table tells; its name has a space, which it escapes).
      const bound = path.join(dir, 'bind target');
      await mkdir(bound);
      await exec('mount', ['--bind', plain, bound]);
      try {
        assert.equal((await stat(bound)).dev, (await stat(dir)).dev);
        await accepted(path.join(bound, 'csi.sock'));
      } finally {
        await exec('umount', [bound]);
      }
    } finally {
      await exec('umount', [volume]);
    }
  });
});

test("shutdown leaves a successor's socket at the path alone (a rolling update): it removes only its own", async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    const { server: old, clients, running, release } = await serverWithRunningCall(socketPath);
    const successor = probeServer(ready);
    try {
      // The old process stops accepting and waits for its running call; meanwhile the new one starts.
      const shutdown = old.shutdown(10_000);
      await successor.listen({ kind: 'unix', path: socketPath });
      release();
      await running;
      assert.equal(await shutdown, 'graceful');
      assert.ok((await lstat(socketPath)).isSocket(), "the successor's socket is still there");
      const fresh = connect(`unix://${socketPath}`);
      try {
        assert.deepEqual(await call(fresh.identity, 'Probe', {}), { ready: { value: true } });
      } finally {
        fresh.close();
      }
    } finally {
      clients.close();
      await successor.shutdown(1000);
    }
    assert.equal(await exists(socketPath), false, 'the successor removes its own');
  });
});

test('shutdown names the calls in flight as it starts, and those it cuts off when the grace bound passes', async () => {
  await withTempDir(async (dir) => {
    const socketPath = path.join(dir, 'csi.sock');
    const log = captureLog();
    const server = new CsiServer(log.logger);
    const def = loadCsi().csi.v1.Node.service;
    const release = gate<void>();
    let entered = 0;
    const handlers = {
      // One call finishes within the grace period, the other never does.
      NodeUnstageVolume: async () => {
        entered++;
        await release.promise;
        return {};
      },
      NodeStageVolume: (_req: unknown, ctx: CallContext) => {
        entered++;
        return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('cancelled'))));
      },
    };
    server.addService(def, wrapService(def, handlers, { logger: log.logger, service: 'Node', calls: server.calls }));
    await server.listen({ kind: 'unix', path: socketPath });
    const clients = connect(`unix://${socketPath}`);
    try {
      const staging = call(clients.node, 'NodeStageVolume', {
        volume_id: 'vol-stuck',
        staging_target_path: '/var/lib/kubelet/x',
        volume_capability: { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
        secrets: { password: 'never-logged' },
      }, { deadlineMs: 3000 });
      const unstaging = call(clients.node, 'NodeUnstageVolume', { volume_id: 'vol-quick', staging_target_path: '/var/lib/kubelet/y' }, { deadlineMs: 30_000 });
      staging.catch(() => undefined);
      await until(() => entered === 2, 5000, 'both calls to reach their handlers');
      const shutdown = server.shutdown(400);
      setTimeout(() => release.open(), 50);
      assert.equal(await shutdown, 'forced');
      assert.deepEqual(await unstaging, {});

      const lines = log.lines();
      const start = lines.find((l) => Array.isArray(l.in_flight) && l.level === 'info');
      assert.equal(start?.msg, 'shutting down with 2 calls in flight; waiting up to 400 ms for them');
      const startCalls = (start!.in_flight as Array<Record<string, unknown>>).map(({ method, volume_id }) => ({ method, volume_id }));
      assert.deepEqual(startCalls, [
        { method: 'NodeStageVolume', volume_id: 'vol-stuck' },
        { method: 'NodeUnstageVolume', volume_id: 'vol-quick' },
      ]);
      const forced = lines.find((l) => Array.isArray(l.in_flight) && l.level === 'warn');
      assert.equal(forced?.msg, 'shutdown forced after 400 ms: 1 call cut off; the CO retries it');
      const [cut, ...more] = forced!.in_flight as Array<Record<string, unknown>>;
      assert.equal(more.length, 0);
      assert.equal(cut.method, 'NodeStageVolume');
      assert.equal(cut.volume_id, 'vol-stuck');
      assert.match(String(cut.request_id), /^[0-9a-f]{8}$/);
      assert.ok((cut.running_ms as number) >= 350);
      assert.ok(!log.text().includes('never-logged'));
    } finally {
      clients.close();
    }
  });
});
