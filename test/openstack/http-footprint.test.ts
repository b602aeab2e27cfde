// The OpenStack module carries no WebAssembly: its HTTP client is node:http,
// whose parser is native. This keeps undici (and its WebAssembly HTTP parser,
// ~10 MiB resident in the controller) out of the driver, and lets every part
// of the module run in a --jitless process (the node plugin's), where V8 has no WebAssembly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { runJitless } from '../helpers/jitless';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const server = http.createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ versions: [] }));
});
const base = new Promise<string>((resolve) =>
  server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
);
after(() => {
  server.closeAllConnections();
  server.close();
});

test('the OpenStack module loads no undici, and its HTTP client works in a process without WebAssembly', async () => {
  const dir = path.resolve(__dirname, '..', '..', 'src', 'openstack');
  const script = `
    require(${JSON.stringify(path.join(dir, 'index.js'))});
    const { HttpClient } = require(${JSON.stringify(path.join(dir, 'http.js'))});
    const client = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 2000, logger: require('pino')({ level: 'silent' }) });
    // node -e SCRIPT URL: the URL is process.argv[1].
    client.request({ method: 'GET', url: process.argv[1] + '/' })
      .then(async (res) => {
        await client.close();
        const undici = Object.keys(require.cache).filter((k) => k.includes('node_modules/undici/'));
        process.stdout.write(JSON.stringify({ status: res.status, body: res.body, undici }));
      }, (err) => { console.error(err); process.exit(1); });`;
  const stdout = await runJitless(script, [await base]);
  const out = JSON.parse(stdout);
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, { versions: [] });
  assert.deepEqual(out.undici, [], 'undici modules were loaded');
});
