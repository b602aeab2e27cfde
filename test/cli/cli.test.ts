// The `cinder-csi` command as a real process (issue 2, items 2, 6 and "done
// when"): a broken config prints one line and exits 2, a start-up failure one
// line and exit 1, and a running driver stops cleanly on SIGTERM with exit 0
// and its socket removed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { call, connect } from '../helpers/grpc';
import { until } from '../helpers/server';
import { parseListen } from '../../src/sim';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
/** The launcher the image and the manifests use: it picks Node's flags for the mode. */
const LAUNCHER = path.join(ROOT, 'bin', 'cinder-csi');
const VERSION: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
/** No OS_* or CINDER_CSI_* from the developer's shell may change what the CLI sees. */
const CLEAN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = CLEAN_ENV): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

let n = 0;
function configFile(text: string): string {
  const p = path.join(dir, `broken-${++n}.yaml`);
  writeFileSync(p, text);
  return p;
}

const serveController = (config: string) => ['serve', '--endpoint', `unix://${dir}/never.sock`, '--mode', 'controller', '--config', config];

test('serve with a broken config prints one line naming the key and the file, and exits 2', async () => {
  const cases: Array<{ text: string; key: RegExp }> = [
    { text: 'datset:\n  username: alice\n', key: /'datset' .* is not a known setting \(did you mean 'dataset'\?\)/ },
    { text: 'dataset:\n  username: alice\n  pasword: pw\n  auth_url: https://k/v3\n', key: /'dataset\.pasword' .*did you mean 'password'/ },
    { text: 'dataset:\n  username: alice\n  auth_url: https://k/v3\n', key: /'dataset\.password' .* is required/ },
    { text: 'dataset:\n  password: pw\n  username: alice\n', key: /'dataset\.auth_url' .* is required/ },
    { text: 'driver:\n  node:\n    max_volumes_per_node: many\n', key: /'driver\.node\.max_volumes_per_node' .* must be a whole number/ },
    { text: 'dataset: [1, 2\n', key: /is not valid YAML/ },
    // A CA bundle that is not there: the config error, not the HTTPS client's ENOENT with exit 1.
    {
      text: 'clouds:\n  east:\n    auth: { auth_url: https://k/v3, username: a, password: b }\n    cacert: /nonexistent/east-ca.pem\n',
      key: /'clouds\.east\.cacert' .* names \/nonexistent\/east-ca\.pem, which does not exist$/m,
    },
  ];
  for (const { text, key } of cases) {
    const file = configFile(text);
    const r = await cli(serveController(file));
    assert.equal(r.code, 2, `${text}\n${r.stderr}`);
    assert.match(r.stderr, /^cinder-csi: configuration error: [^\n]+\n$/, 'exactly one line');
    assert.match(r.stderr, key);
    assert.ok(r.stderr.includes(file), `names the file: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
});

test('serve with a config file that does not exist exits 2 naming it', async () => {
  const missing = path.join(dir, 'missing.yaml');
  const r = await cli(serveController(missing));
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `cinder-csi: configuration error: cannot read config file ${missing}: ENOENT\n`);
});

test('a controller with no cloud configured is a broken configuration: exit 2 with one line', async () => {
  const r = await cli(serveController(configFile('driver:\n  cluster_id: c1\n')));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^cinder-csi: configuration error: no OpenStack cloud is configured in [^\n]+\n$/);
});

test('a regular file where the socket should be stops start-up: exit 1 with one line', async () => {
  const notASocket = path.join(dir, 'not-a-socket');
  writeFileSync(notASocket, 'keep me');
  const config = configFile(`driver:\n  node:\n    availability_zone: nova\n    state_dir: ${dir}/state-1\n`);
  const r = await cli(['serve', '--mode', 'node', '--node-id', randomUUID(), '--endpoint', `unix://${notASocket}`, '--config', config]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^cinder-csi: cannot start: [^\n]*not-a-socket exists and is not a socket[^\n]*\n$/);
  assert.equal(readFileSync(notASocket, 'utf8'), 'keep me');
});

test('bad serve arguments exit 2 with the reason and the usage', async () => {
  const r = await cli(['serve', '--endpoint', `unix://${dir}/x.sock`, '--mode', 'both']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^cinder-csi serve: --mode must be controller, node or all, not 'both'\nUsage: cinder-csi serve/);
});

test('a tcp:// endpoint beyond loopback without --allow-remote-endpoint exits 2 before anything starts', async () => {
  const r = await cli(['serve', '--mode', 'controller', '--sim', '--endpoint', 'tcp://0.0.0.0:19999']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^cinder-csi serve: endpoint 'tcp:\/\/0\.0\.0\.0:19999' is not on loopback, [^\n]* add --allow-remote-endpoint if the network is trusted\nUsage: cinder-csi serve/);
  assert.equal(r.stdout, '', 'nothing started, so nothing logged');
});

test('serve --help prints the usage and exits 0', async () => {
  const r = await cli(['serve', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: cinder-csi serve --endpoint URL/);
  assert.match(r.stdout, /--node-id/);
  assert.match(r.stdout, /--allow-remote-endpoint +let a tcp:\/\/ endpoint listen beyond loopback .* \[\$CINDER_CSI_ALLOW_REMOTE_ENDPOINT\]/);
});

test('an unknown subcommand exits 2', async () => {
  const r = await cli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^cinder-csi: unknown command 'frobnicate'\n/);
});

test("version prints package.json's version", async () => {
  const r = await cli(['version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${VERSION}\n`);
});

test('the launcher finds the CLI from wherever it is called', async () => {
  const r = await new Promise<Outcome>((resolve) =>
    execFile(LAUNCHER, ['version'], { env: CLEAN_ENV, cwd: os.tmpdir(), timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? null : 0, stdout, stderr }),
    ),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${VERSION}\n`);
});

/** The Node flags a running process was started with (its command line up to the script). */
function nodeFlags(pid: number): string[] {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return argv.slice(1, argv.findIndex((a) => a.endsWith('cli.js')));
}

// SIGTERM: started as the DaemonSet starts it (the launcher, --mode=node); SIGINT: `node cli.js serve --mode node`.
for (const stopSignal of ['SIGTERM', 'SIGINT'] as const) {
  const viaLauncher = stopSignal === 'SIGTERM';
  test(`a node plugin ${viaLauncher ? 'started by the launcher ' : ''}serves on its socket, answers Probe, and on ${stopSignal} exits 0 and removes the socket`, async () => {
    const socketPath = path.join(dir, `node-${stopSignal}`, 'csi.sock');
    const nodeId = randomUUID();
    const config = configFile(`driver:\n  node:\n    availability_zone: nova\n    state_dir: ${dir}/state-${stopSignal}\n`);
    const serveArgs = ['--node-id', nodeId, '--endpoint', `unix://${socketPath}`, '--config', config];
    const child = viaLauncher
      ? spawn(LAUNCHER, ['serve', '--mode=node', ...serveArgs], { env: CLEAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [CLI, 'serve', '--mode', 'node', ...serveArgs], { env: CLEAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let clients: ReturnType<typeof connect> | undefined;
    try {
      await until(
        () => {
          if (child.exitCode !== null) throw new Error(`the driver exited early (${child.exitCode}): ${stderr}`);
          try {
            return lstatSync(socketPath).isSocket();
          } catch {
            return false;
          }
        },
        20_000,
        'the socket to appear',
      );
      // Connect only now: a channel whose first attempt found no socket backs off for a second and
      // fails calls at once meanwhile (seen once in CI).
      clients = connect(`unix://${socketPath}`);
      // The socket file exists from bind(); listen() follows a moment later, and a connect in between is refused.
      const identity = clients.identity;
      await new Promise<void>((resolve, reject) => identity.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
      assert.deepEqual(await call(clients.identity, 'Probe', {}, { deadlineMs: 5000 }), { ready: { value: true } });
      // The launcher execs Node in its own place (same pid), with the node plugin's memory flags.
      assert.deepEqual(nodeFlags(child.pid!), viaLauncher ? ['--jitless', '--single-threaded', '--no-expose-wasm'] : []);
      const info = await call(clients.identity, 'GetPluginInfo', {});
      assert.equal(info.name, 'cinder.csi.openstack.org');
      assert.equal(info.vendor_version, VERSION);
      const caps = await call(clients.identity, 'GetPluginCapabilities', {});
      assert.ok(!caps.capabilities.some((c: any) => c.service?.type === 'CONTROLLER_SERVICE'), 'a node plugin offers no controller');
      const nodeInfo = await call(clients.node, 'NodeGetInfo', {});
      assert.equal(nodeInfo.node_id, nodeId);

      clients.close();
      child.kill(stopSignal);
      const { code, signal } = await exited;
      assert.equal(signal, null, stderr);
      assert.equal(code, 0, stderr);
      assert.throws(() => lstatSync(socketPath), /ENOENT/, 'the socket is removed');
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      assert.ok(lines.some((l) => l.msg === 'stopped' && l.outcome === 'graceful'), 'logged a graceful stop');
      assert.equal(stderr, '');
    } finally {
      clients?.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
}

test('serve --sim removes the simulator\'s temporary directory when it stops', async () => {
  const tmp = mkdtempSync(path.join(dir, 'tmp-'));
  const socketPath = path.join(dir, 'sim-serve', 'csi.sock');
  // TMPDIR: where the embedded simulator makes its directory (os.tmpdir()).
  const child = spawn(process.execPath, [CLI, 'serve', '--sim', '--mode', 'controller', '--endpoint', `unix://${socketPath}`], {
    env: { ...CLEAN_ENV, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let simDirSeen = false;
  // Ctrl-C the moment the line is read, as a quick user (or a script) would: the line promises
  // that the signal handlers are in place. Printed before them, this died by SIGINT in most runs.
  child.stdout.on('data', (d) => {
    const first = !stdout.includes('cinder-csi is serving');
    stdout += d;
    if (first && stdout.includes('cinder-csi is serving')) {
      child.kill('SIGINT');
      // Right after the signal, not before it (that was enough delay to hide the race); the stop
      // removes the directory only after the driver's own shutdown, milliseconds later.
      simDirSeen = readdirSync(tmp).some((e) => e.startsWith('cinder-csi-sim-'));
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  // The signal too, when there is one.
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  try {
    await until(() => stdout.includes('cinder-csi is serving'), 20_000, 'the driver to serve');
    assert.equal(await exited, 0, `${stderr}\nlast stdout lines:\n${stdout.split('\n').slice(-5).join('\n')}`);
    assert.ok(simDirSeen, 'the simulator made its directory in TMPDIR');
    assert.deepEqual(readdirSync(tmp), [], 'nothing left in TMPDIR');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
});

test("a socket directory this user may not write to (another user's): one line that says so and what to do, exit 1", { skip: process.getuid?.() !== 0 ? 'needs root to run the CLI as another user' : false }, async (t) => {
  // The other user must be able to run the CLI at all: not when the checkout is under a private directory (/root).
  const runs = await new Promise<boolean>((resolve) => execFile(process.execPath, [CLI, 'version'], { env: CLEAN_ENV, uid: 65534, gid: 65534 }, (err) => resolve(!err)));
  if (!runs) {
    t.skip(`uid 65534 cannot run ${CLI} (the checkout is in a directory only its owner may enter)`);
    return;
  }
  const shared = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-cli-shared-'));
  try {
    chmodSync(shared, 0o755); // like /tmp/cinder-csi made by root: others may look, not write
    const socketPath = path.join(shared, 'csi.sock');
    const config = path.join(shared, 'node.yaml');
    writeFileSync(config, `driver:\n  node:\n    availability_zone: nova\n    state_dir: ${shared}/state\n`);
    chmodSync(config, 0o644);
    const outcome = await new Promise<Outcome>((resolve) => {
      execFile(
        process.execPath,
        [CLI, 'serve', '--mode', 'node', '--node-id', randomUUID(), '--endpoint', `unix://${socketPath}`, '--config', config],
        { env: CLEAN_ENV, timeout: 30_000, uid: 65534, gid: 65534 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr }),
      );
    });
    assert.equal(outcome.code, 1, outcome.stderr);
    assert.equal(
      outcome.stderr,
      `cinder-csi: cannot start: cannot make the socket ${socketPath}: this user may not write to ${shared}; choose an --endpoint in a directory of your own\n`,
    );
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
});

test("a socket directory another user owns (made first in a shared /tmp): refused, since its owner could swap the socket", { skip: process.getuid?.() !== 0 ? 'needs root to give a directory to another user' : false }, async () => {
  const shared = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-cli-owned-'));
  try {
    chmodSync(shared, 0o777);
    chownSync(shared, 65534, 65534);
    const socketPath = path.join(shared, 'csi.sock');
    const config = configFile(`driver:\n  node:\n    availability_zone: nova\n    state_dir: ${dir}/state-owned\n`);
    const { code, stderr } = await cli(['serve', '--mode', 'node', '--node-id', randomUUID(), '--endpoint', `unix://${socketPath}`, '--config', config]);
    assert.equal(code, 1, stderr);
    assert.equal(
      stderr,
      `cinder-csi: cannot start: cannot make the socket ${socketPath}: ${shared} belongs to uid 65534, neither this user (0) nor root, so its owner could replace the socket; choose an --endpoint in a directory of your own\n`,
    );
    assert.equal(existsSync(socketPath), false, 'no socket made');
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
});

test('a TCP port already taken: one line on stderr (grpc-js\'s own message goes to the JSON log), exit 1', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const config = configFile(`driver:\n  node:\n    availability_zone: nova\n    state_dir: ${dir}/state-port\n`);
    const { code, stdout, stderr } = await cli(['serve', '--mode', 'node', '--node-id', randomUUID(), '--endpoint', `tcp://127.0.0.1:${port}`, '--config', config]);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^cinder-csi: cannot start: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*\n$/);
    const grpcLines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.component === 'grpc-js');
    assert.ok(grpcLines.some((l) => /No address added/.test(l.msg)), stdout);
  } finally {
    taken.close();
  }
});

test('the launcher of a checkout that was never built says to build it, not a Node stack trace', async () => {
  const copy = mkdtempSync(path.join(dir, 'unbuilt-'));
  mkdirSync(path.join(copy, 'bin'));
  copyFileSync(LAUNCHER, path.join(copy, 'bin', 'cinder-csi'));
  chmodSync(path.join(copy, 'bin', 'cinder-csi'), 0o755);
  const outcome = await new Promise<Outcome>((resolve) => {
    execFile(path.join(copy, 'bin', 'cinder-csi'), ['version'], { env: CLEAN_ENV }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr }),
    );
  });
  assert.equal(outcome.code, 1);
  assert.match(outcome.stderr, /^cinder-csi: \S+\/dist\/src\/cli\.js is missing: build the driver first \(npm ci && npm run build; npm start builds too\)\n$/);
});

test('sim: a flag without its value, or a log level pino does not know, is a usage error (exit 2), before anything starts', async () => {
  const tmp = mkdtempSync(path.join(dir, 'tmp-sim-usage-'));
  for (const [args, env, said] of [
    [['sim', '--listen'], {}, /--listen needs a value/],
    [['sim', '--state-dir', '--tls'], {}, /--state-dir needs a value/],
    [['sim'], { CINDER_CSI_LOG_LEVEL: 'verbose' }, /CINDER_CSI_LOG_LEVEL must be one of .*info/],
  ] as const) {
    const { code, stderr } = await cli([...args], { ...CLEAN_ENV, ...env, TMPDIR: tmp });
    assert.equal(code, 2, stderr);
    assert.match(stderr, said);
  }
  assert.deepEqual(readdirSync(tmp), []);
});

test('sim --listen takes a port alone, on loopback', () => {
  assert.deepEqual(parseListen('23923'), { host: '127.0.0.1', port: 23923 });
  assert.deepEqual(parseListen('[::1]:8777'), { host: '::1', port: 8777 });
  assert.throws(() => parseListen('1.2.3.4'), /--listen must be host:port/);
});

test('a simulator that cannot start (its port is taken) leaves no temporary directory behind', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  const tmp = mkdtempSync(path.join(dir, 'tmp-sim-'));
  try {
    const { code, stderr } = await cli(['sim', '--listen', `127.0.0.1:${port}`], { ...CLEAN_ENV, TMPDIR: tmp });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /EADDRINUSE/);
    assert.deepEqual(readdirSync(tmp), []);
  } finally {
    taken.close();
  }
});

test('sim: Ctrl-C the moment it says "Ctrl-C stops it" stops it cleanly and removes its temporary directory', async () => {
  const tmp = mkdtempSync(path.join(dir, 'tmp-sim-stop-'));
  const child = spawn(process.execPath, [CLI, 'sim', '--listen', '127.0.0.1:0'], { env: { ...CLEAN_ENV, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    const first = !stdout.includes('Ctrl-C stops it');
    stdout += d;
    if (first && stdout.includes('Ctrl-C stops it')) child.kill('SIGINT');
  });
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  try {
    await until(() => stdout.includes('Ctrl-C stops it'), 20_000, 'the simulator to start');
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(readdirSync(tmp), [], 'nothing left in TMPDIR');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
});
