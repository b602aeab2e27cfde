// The gRPC server on a unix socket (issue 2, item 2): a stale socket left by a
// dead process is replaced, a live one or a regular file is refused, and
// shutdown lets running calls finish up to a bound, then cuts them off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { lstat, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
      const shutdown = server.shutdown(10_000);
      setTimeout(() => release.open(), 200);
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
