// `cinder-csi serve` flags (issue 2, item 6): every flag has an environment
// equivalent, the flag wins, and anything unknown or malformed is a UsageError
// that says what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEndpoint, parseServeArgs, SERVE_USAGE, UsageError } from '../../src/cli/args';

const ENDPOINT = 'unix:///csi/csi.sock';

function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseServeArgs(argv, env);
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    return e.message;
  }
  assert.fail(`expected a UsageError for ${argv.join(' ')}`);
}

test('every flag is read, with defaults for the rest', () => {
  assert.deepEqual(parseServeArgs(['--endpoint', ENDPOINT]), {
    endpoint: ENDPOINT,
    mode: 'all',
    config: undefined,
    nodeId: undefined,
    clusterId: undefined,
    driverName: undefined,
    logLevel: 'info',
    sim: false,
    allowRemoteEndpoint: false,
    help: false,
  });
  assert.deepEqual(
    parseServeArgs([
      '--endpoint', ENDPOINT,
      '--mode', 'node',
      '--config', '/etc/cinder-csi/cloud.yaml',
      '--node-id', '8a7e2a8c-0000-4000-8000-000000000001',
      '--cluster-id', 'prod',
      '--driver-name', 'cinder.example.org',
      '--log-level', 'debug',
      '--sim',
      '--allow-remote-endpoint',
    ]),
    {
      endpoint: ENDPOINT,
      mode: 'node',
      config: '/etc/cinder-csi/cloud.yaml',
      nodeId: '8a7e2a8c-0000-4000-8000-000000000001',
      clusterId: 'prod',
      driverName: 'cinder.example.org',
      logLevel: 'debug',
      sim: true,
      allowRemoteEndpoint: true,
      help: false,
    },
  );
});

test('--flag=value is the same as --flag value', () => {
  const opts = parseServeArgs(['--endpoint=tcp://127.0.0.1:10000', '--mode=controller', '--log-level=warn', '--sim=false']);
  assert.equal(opts.endpoint, 'tcp://127.0.0.1:10000');
  assert.equal(opts.mode, 'controller');
  assert.equal(opts.logLevel, 'warn');
  assert.equal(opts.sim, false);
  assert.equal(parseServeArgs(['--endpoint', ENDPOINT, '--cluster-id=a=b']).clusterId, 'a=b', 'only the first = splits');
});

test('environment variables stand in for every flag', () => {
  const opts = parseServeArgs([], {
    CSI_ENDPOINT: ENDPOINT,
    CINDER_CSI_MODE: 'controller',
    CINDER_CSI_CONFIG: '/etc/c.yaml',
    CINDER_CSI_NODE_ID: 'node-1',
    CINDER_CSI_CLUSTER_ID: 'c-1',
    CINDER_CSI_DRIVER_NAME: 'd.example.org',
    CINDER_CSI_LOG_LEVEL: 'error',
    CINDER_CSI_SIM: 'true',
    CINDER_CSI_ALLOW_REMOTE_ENDPOINT: '1',
  });
  assert.deepEqual(opts, {
    endpoint: ENDPOINT,
    mode: 'controller',
    config: '/etc/c.yaml',
    nodeId: 'node-1',
    clusterId: 'c-1',
    driverName: 'd.example.org',
    logLevel: 'error',
    sim: true,
    allowRemoteEndpoint: true,
    help: false,
  });
  assert.equal(parseServeArgs([], { CSI_ENDPOINT: ENDPOINT, CINDER_CSI_SIM: '1' }).sim, true);
  assert.equal(parseServeArgs([], { CSI_ENDPOINT: ENDPOINT, CINDER_CSI_SIM: '0' }).sim, false);
  assert.equal(parseServeArgs([], { CSI_ENDPOINT: ENDPOINT, CINDER_CSI_SIM: 'false' }).sim, false);
  assert.match(usageError([], { CSI_ENDPOINT: ENDPOINT, CINDER_CSI_SIM: 'yes' }), /\$CINDER_CSI_SIM must be true, false, 1 or 0, not 'yes'/);
  assert.equal(parseServeArgs([], { CSI_ENDPOINT: ENDPOINT, CINDER_CSI_MODE: '' }).mode, 'all', 'an empty variable is unset');
});

test('a flag wins over its environment variable', () => {
  const opts = parseServeArgs(['--mode', 'node', '--endpoint', 'unix:///other.sock', '--sim=false'], {
    CSI_ENDPOINT: ENDPOINT,
    CINDER_CSI_MODE: 'controller',
    CINDER_CSI_SIM: 'true',
  });
  assert.equal(opts.mode, 'node');
  assert.equal(opts.endpoint, 'unix:///other.sock');
  assert.equal(opts.sim, false);
});

test('--help needs nothing else, and the usage lists every flag with its variable', () => {
  assert.equal(parseServeArgs(['--help']).help, true);
  assert.equal(parseServeArgs(['--mode', 'bogus', '--help']).help, true);
  for (const flag of ['--endpoint', '--mode', '--config', '--node-id', '--cluster-id', '--driver-name', '--log-level', '--sim', '--allow-remote-endpoint', '--help']) {
    assert.ok(SERVE_USAGE.includes(flag), flag);
  }
  assert.ok(SERVE_USAGE.includes('$CSI_ENDPOINT'));
});

test('an unknown flag or stray argument is refused by name', () => {
  assert.equal(usageError(['--endpoint', ENDPOINT, '--verbose']), "unknown argument '--verbose'");
  assert.equal(usageError(['--endpoint', ENDPOINT, 'extra']), "unknown argument 'extra'");
  assert.equal(usageError(['--endpoint', ENDPOINT, '--nodeid=x']), "unknown argument '--nodeid=x'");
});

test('a flag without its value is refused', () => {
  assert.equal(usageError(['--endpoint']), '--endpoint needs a value');
  assert.equal(usageError(['--config', '--endpoint', ENDPOINT]), '--config needs a value');
  assert.equal(usageError(['--endpoint', ENDPOINT, '--sim=yes']), '--sim takes no value');
});

test('a bad mode, log level or endpoint is refused, saying what is allowed', () => {
  assert.equal(usageError(['--endpoint', ENDPOINT, '--mode', 'both']), "--mode must be controller, node or all, not 'both'");
  assert.match(usageError(['--endpoint', ENDPOINT, '--log-level', 'verbose']), /^--log-level must be one of fatal, error, warn, info, debug, trace, silent$/);
  assert.match(usageError(['--endpoint', ENDPOINT], { CINDER_CSI_MODE: 'x' }), /--mode must be controller, node or all, not 'x'/, 'a bad value from the environment is refused too');
  assert.match(usageError([]), /^--endpoint is required/);
  assert.match(usageError(['--endpoint', 'unix://relative.sock']), /must be unix:\/\/\/absolute\/path/);
  assert.match(usageError(['--endpoint', '/csi/csi.sock']), /must be unix:\/\/\/absolute\/path or tcp:\/\/host:port/);
});

test('endpoints: unix with an absolute path, tcp with host and port', () => {
  assert.deepEqual(parseEndpoint('unix:///var/lib/kubelet/plugins/cinder/csi.sock'), { kind: 'unix', path: '/var/lib/kubelet/plugins/cinder/csi.sock' });
  assert.deepEqual(parseEndpoint('tcp://0.0.0.0:10000'), { kind: 'tcp', host: '0.0.0.0', port: 10000 });
  assert.deepEqual(parseEndpoint('tcp://localhost:1/'), { kind: 'tcp', host: 'localhost', port: 1 });
  assert.deepEqual(parseEndpoint('tcp://[::1]:10000'), { kind: 'tcp', host: '::1', port: 10000 });
  for (const bad of ['tcp://host', 'tcp://host:0', 'tcp://host:65536', 'http://host:80', 'unix://csi.sock', 'unix:///a\0b', '']) {
    assert.throws(() => parseEndpoint(bad), UsageError, JSON.stringify(bad));
  }
});

test('a tcp:// endpoint beyond loopback is refused unless --allow-remote-endpoint says so', () => {
  // No authentication and no TLS: anyone who reaches the port could call the node plugin (root mounts) and read the secrets.
  for (const endpoint of ['tcp://0.0.0.0:19999', 'tcp://[::]:19999', 'tcp://10.0.0.5:19999', 'tcp://csi.example.com:19999', 'tcp://127.1:19999', 'tcp://[::ffff:10.0.0.5]:1']) {
    assert.match(
      usageError(['--endpoint', endpoint]),
      new RegExp(`^endpoint '${endpoint.replace(/[[\].]/g, '\\$&')}' is not on loopback, .* clear text; use a unix:// socket or tcp://127\\.0\\.0\\.1:PORT, or add --allow-remote-endpoint if the network is trusted$`),
    );
    assert.equal(parseServeArgs(['--endpoint', endpoint, '--allow-remote-endpoint']).allowRemoteEndpoint, true, endpoint);
    assert.equal(parseServeArgs([], { CSI_ENDPOINT: endpoint, CINDER_CSI_ALLOW_REMOTE_ENDPOINT: 'true' }).endpoint, endpoint, endpoint);
    assert.match(usageError(['--endpoint', endpoint, '--allow-remote-endpoint=false'], { CINDER_CSI_ALLOW_REMOTE_ENDPOINT: 'true' }), /is not on loopback/, 'the flag wins');
  }
  for (const endpoint of ['tcp://127.0.0.1:10000', 'tcp://127.0.0.2:10000', 'tcp://localhost:10000', 'tcp://LOCALHOST:1', 'tcp://[::1]:10000', 'tcp://[0:0:0:0:0:0:0:1]:1', 'tcp://[::ffff:127.0.0.1]:1']) {
    assert.equal(parseServeArgs(['--endpoint', endpoint]).endpoint, endpoint, endpoint);
  }
  assert.equal(parseServeArgs(['--endpoint', ENDPOINT]).allowRemoteEndpoint, false);
});
