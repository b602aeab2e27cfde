// The HTTP client loads undici's Agent and request API only, not the whole
// package (fetch, WebSocket, EventSource, cache and mock agents: ~3 MiB of heap
// per driver process). If a later undici moves the files src/openstack/http.ts
// loads, it falls back to the package's index; this test then fails, so that
// the saving is not lost silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

test('src/openstack/http.ts loads undici Agent and request() without fetch or WebSocket, and its Agent is the package one', () => {
  const http = path.resolve(__dirname, '..', '..', 'src', 'openstack', 'http.js');
  const script = `
    const { HttpClient } = require(${JSON.stringify(http)});
    const client = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 1000, logger: require('pino')({ level: 'silent' }) });
    const loaded = Object.keys(require.cache).filter((k) => k.includes('node_modules/undici/'));
    const agent = client.agent;
    const lean = { count: loaded.length, fetch: loaded.some((k) => k.includes('/web/')), request: typeof agent.request };
    const full = require('undici');
    lean.samePackageAgent = agent instanceof full.Agent;
    process.stdout.write(JSON.stringify(lean));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  assert.equal(out.fetch, false, 'undici fetch/WebSocket modules were loaded');
  assert.equal(out.request, 'function');
  assert.equal(out.samePackageAgent, true);
  assert.ok(out.count < 50, `${out.count} undici modules loaded`);
});
