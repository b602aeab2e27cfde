// The metadata service client (node:http, no undici): JSON on 200, typed
// errors otherwise, bounded by its timeout, and usable in a process started
// with --jitless, where V8 has no WebAssembly (the node plugin's launcher
// flags), which undici's HTTP parser needs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { runJitless } from '../helpers/jitless';
import type { AddressInfo } from 'node:net';
import { getMetadataJson } from '../../src/openstack/metadata-http';
import { isOpenStackError } from '../../src/openstack/errors';

const META = { uuid: '3f5c1d9e-0a6b-4c1e-9d2f-7b8a9c0d1e2f', availability_zone: 'nova', name: 'vm-1' };

const server = http.createServer((req, res) => {
  if (req.url === '/openstack/latest/meta_data.json') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(META));
  }
  if (req.url === '/slow') return setTimeout(() => res.end('{}'), 2_000);
  res.statusCode = 404;
  res.end('Not Found');
});
const base = new Promise<string>((resolve) =>
  server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
);
after(() => {
  server.closeAllConnections();
  server.close();
});

test('a 200 answers the parsed document', async () => {
  assert.deepEqual(await getMetadataJson(`${await base}/openstack/latest/meta_data.json`, 2_000), META);
});

test('a 404 is a not_found OpenStackError naming the path', async () => {
  await assert.rejects(getMetadataJson(`${await base}/openstack/latest/nothing.json`, 2_000), (err: unknown) => {
    assert.ok(isOpenStackError(err, 'not_found'), String(err));
    assert.match((err as Error).message, /GET \/openstack\/latest\/nothing\.json: 404/);
    return true;
  });
});

test('an answer slower than the timeout is a timeout error', async () => {
  const started = Date.now();
  await assert.rejects(getMetadataJson(`${await base}/slow`, 200), (err: unknown) => isOpenStackError(err, 'timeout'));
  assert.ok(Date.now() - started < 1_500, 'gave up at the timeout, not when the server answered');
});

test('nothing listening is a network error', async () => {
  await assert.rejects(getMetadataJson('http://127.0.0.1:9/openstack/latest/meta_data.json', 2_000), (err: unknown) =>
    isOpenStackError(err, 'network'),
  );
});

test('only plain http is accepted (the service is link-local)', async () => {
  await assert.rejects(getMetadataJson('https://169.254.169.254/openstack/latest/meta_data.json', 2_000), (err: unknown) =>
    isOpenStackError(err, 'bad_request'),
  );
});

test('works in a process without WebAssembly (node --jitless, as the node plugin runs)', async () => {
  const url = `${await base}/openstack/latest/meta_data.json`;
  const module = path.resolve(__dirname, '..', '..', 'src', 'openstack', 'metadata-http.js');
  const stdout = await runJitless(`
    require(${JSON.stringify(module)}).getMetadataJson(${JSON.stringify(url)}, 2000)
      .then((doc) => process.stdout.write(JSON.stringify(doc)), (err) => { console.error(err); process.exit(1); });`);
  assert.deepEqual(JSON.parse(stdout), META);
});
