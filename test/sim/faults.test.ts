import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadFaultsFile, startSimulator, type Simulator } from '../../src/sim';
import { call, login, type Session } from './helpers';

describe('sim faults, latency and counters', () => {
  let sim: Simulator;
  let s: Session;
  before(async () => {
    sim = await startSimulator({ hypervisor: false });
    s = await login(sim);
  });
  after(() => sim.stop());

  const types = () => call('GET', `${s.volume}/types`, { token: s.token });

  it('a status fault answers once with the service error shape and Retry-After, then normal service resumes', async () => {
    sim.control.addFault({ service: 'volume', method: 'GET', pathPattern: '/types$', status: 503, retryAfter: 2 });
    const r = await types();
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '2');
    assert.equal(r.body.serviceUnavailable.code, 503);
    assert.equal((await types()).status, 200);
  });

  it('times counts matching requests; other services and paths do not consume it', async () => {
    sim.control.addFault({ service: 'volume', pathPattern: '/types$', status: 429, times: 2, body: { custom: true } });
    assert.equal((await call('GET', `${s.compute}/servers`, { token: s.token })).status, 200);
    const first = await types();
    assert.equal(first.status, 429);
    assert.deepEqual(first.body, { custom: true });
    assert.equal((await types()).status, 429);
    assert.equal((await types()).status, 200);
  });

  it('Infinity lasts until cleared', async () => {
    sim.control.addFault({ service: 'identity', status: 500, times: Infinity });
    for (let i = 0; i < 3; i++) assert.equal((await call('POST', `${sim.authUrl}/auth/tokens`, { body: {} })).status, 500);
    sim.control.clearFaults();
    assert.equal((await login(sim)).token.length > 0, true);
  });

  it('reset destroys the connection', async () => {
    sim.control.addFault({ service: 'compute', reset: true });
    await assert.rejects(call('GET', `${s.compute}/servers`, { token: s.token }), (err: Error & { code?: string }) => /socket|closed|reset/i.test(`${err.code} ${err.message}`));
    assert.equal((await call('GET', `${s.compute}/servers`, { token: s.token })).status, 200);
  });

  it('resetAfter acts on the request, then destroys the connection: the change is made, the answer lost', async () => {
    sim.control.addFault({ service: 'volume', method: 'POST', pathPattern: '/volumes$', resetAfter: true });
    const create = call('POST', `${s.volume}/volumes`, { token: s.token, body: { volume: { name: 'made-unanswered', size: 1 } } });
    await assert.rejects(create, (err: Error & { code?: string }) => /socket|closed|reset/i.test(`${err.code} ${err.message}`));
    assert.deepEqual(sim.control.inventory().volumes.filter((v) => v.name === 'made-unanswered').length, 1, 'the volume was made');
  });

  it('delayMs and latency slow the answer down', async () => {
    sim.control.addFault({ service: 'volume', delayMs: 150 });
    let t = Date.now();
    assert.equal((await types()).status, 200, 'a delay-only fault still serves the request');
    assert.ok(Date.now() - t >= 140);
    sim.control.setLatency(100);
    t = Date.now();
    await types();
    assert.ok(Date.now() - t >= 90);
    sim.control.setLatency(0);
  });

  it('counters per route template, reset clears them', async () => {
    sim.control.resetCounters();
    await types();
    await types();
    await call('GET', `${s.volume}/volumes/detail?limit=1`, { token: s.token });
    await call('GET', `${s.volume}/volumes/detail?name=x&limit=1`, { token: s.token });
    await call('GET', `${s.volume}/volumes/not-a-volume`, { token: s.token });
    const c = sim.control.counters();
    assert.equal(c['GET /volume/v3/{project}/types'], 2);
    assert.equal(c['GET /volume/v3/{project}/volumes/detail'], 1, 'a paged list is counted under its route');
    assert.equal(c['GET /volume/v3/{project}/volumes/detail (filtered)'], 1, 'a search (?name=) is counted apart');
    assert.equal(c['GET /volume/v3/{project}/volumes/{id}'], 1);
    sim.control.resetCounters();
    assert.deepEqual(sim.control.counters(), {});
  });

  it('the same control over HTTP under /_sim/', async () => {
    const ctl = `${sim.url}/_sim`;
    assert.equal((await call('POST', `${ctl}/faults`, { body: { service: 'volume', pathPattern: '/types$', status: 500, times: null } })).status, 200);
    assert.equal((await types()).status, 500);
    assert.equal((await types()).status, 500);
    assert.equal((await call('DELETE', `${ctl}/faults`)).status, 200);
    assert.equal((await types()).status, 200);
    assert.equal((await call('POST', `${ctl}/faults`, { body: { status: 'x' } })).status, 400);
    assert.equal((await call('POST', `${ctl}/latency`, { body: { ms: 0 } })).status, 200);
    assert.equal((await call('POST', `${ctl}/durations`, { body: { create: 5, attach: 7 } })).status, 200);
    assert.equal((await call('POST', `${ctl}/durations`, { body: { nonsense: 5 } })).status, 400);
    assert.equal((await call('POST', `${ctl}/counters/reset`)).status, 200);
    await types();
    const counters = await call('GET', `${ctl}/counters`);
    assert.deepEqual(counters.body, { 'GET /volume/v3/{project}/types': 1 });
    assert.equal((await call('POST', `${ctl}/expire-tokens`)).status, 200);
    assert.equal((await types()).status, 401);
    s = await login(sim);
  });
});

describe('sim faults from a file', () => {
  it('loads faults from JSON (times null = until cleared) and rejects a bad one with its index', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sim-faults-'));
    let sim: Simulator | undefined;
    try {
      const good = path.join(dir, 'faults.json');
      await writeFile(good, JSON.stringify([{ service: 'compute', status: 503, times: null }]));
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify([{ status: 503 }, { service: 'nope' }]));
      await assert.rejects(loadFaultsFile(bad), /fault 1: service must be one of/);
      sim = await startSimulator({ hypervisor: false, faults: await loadFaultsFile(good) });
      const s = await login(sim);
      for (let i = 0; i < 2; i++) assert.equal((await call('GET', `${s.compute}/servers`, { token: s.token })).status, 503);
      assert.equal((await call('GET', `${s.volume}/types`, { token: s.token })).status, 200);
    } finally {
      await sim?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
