// The one request pipeline (issue 2, item 3), over a real CsiServer on a unix
// socket with real gRPC clients: errors map to gRPC codes in one place, an
// unexpected exception becomes a short INTERNAL (stack in the log only), every
// call gets one log line with its IDs, duration and code, secrets never reach
// the log, the handler's signal follows the caller's deadline, and identical
// retries join while a different operation on the same key is ABORTED.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { loadCsi } from '../../src/csi/proto';
import { CsiError, requireField } from '../../src/csi/errors';
import { InFlight } from '../../src/csi/inflight';
import type { CallContext } from '../../src/csi/context';
import { OpenStackError, type OpenStackErrorKind } from '../../src/openstack/errors';
import { CommandError, run } from '../../src/util/exec';
import { call, expectCode } from '../helpers/grpc';
import { gate, startTestServer, until, type TestServer } from '../helpers/server';

const GiB = 1024 ** 3;

/** What a handler saw of its call, by volume name. */
const seen = new Map<string, CallContext>();
const deadlineSeen = new Map<string, { abortedAfterMs: number }>();
const registry = new InFlight();
let createRuns = 0;
let joinArrivals = 0;
const joinRelease = gate<void>();

const handlers = {
  async CreateVolume(req: any, ctx: CallContext) {
    const name = requireField<string>(req.name, 'name');
    seen.set(name, ctx);
    const [kind, arg] = name.split(':');
    switch (kind) {
      case 'csi':
        throw new CsiError(status[arg as keyof typeof status] as status, `handler says ${arg}`);
      case 'openstack':
        throw new OpenStackError(arg as OpenStackErrorKind, `Cinder refused: ${arg}`, { status: 400, requestId: 'req-0123abcd' });
      case 'boom': {
        const e = new Error('kaboom: the handler tripped over itself');
        throw e;
      }
      case 'command':
        throw new CommandError('mkfs.ext4', ['/dev/vdb'], 1, 'mkfs.ext4: Device size reported to be zero.\n', false);
      case 'missing-tool':
        // A real spawn of a program that is not on PATH (the directory is empty).
        await run('mkfs.xfs', ['-q', '--', '/dev/null'], { env: { PATH: '/nonexistent/cinder-csi-empty-path', LC_ALL: 'C' } });
        break;
      case 'wait-deadline': {
        const started = Date.now();
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        deadlineSeen.set(name, { abortedAfterMs: Date.now() - started });
        throw new Error('gave up: the caller went away');
      }
      case 'careless':
        // A handler that logs the raw request: the logger's own redaction must still hide the secrets.
        ctx.log.info({ request: req }, 'handler saw the request');
        break;
      case 'join':
        joinArrivals++;
        return registry.run(name, 'CreateVolume', req, ctx.signal, async () => {
          createRuns++;
          await joinRelease.promise;
          return { volume: { volume_id: `vol-${createRuns}`, capacity_bytes: GiB } };
        });
    }
    ctx.annotate({ volume_id: `vol-of-${name}` });
    return { volume: { volume_id: `vol-of-${name}`, capacity_bytes: req.capacity_range?.required_bytes ?? GiB } };
  },

  async DeleteVolume(req: any, ctx: CallContext) {
    const id = requireField<string>(req.volume_id, 'volume_id');
    return registry.run(id, 'DeleteVolume', req, ctx.signal, async () => ({}));
  },
};

const controllerService = () => ({ definition: loadCsi().csi.v1.Controller.service, handlers, name: 'Controller' });

let srv: TestServer;
before(async () => {
  srv = await startTestServer([controllerService()]);
});
after(async () => {
  await srv.stop();
});

const create = (name: string, extra: Record<string, unknown> = {}, deadlineMs?: number) =>
  call(srv.clients.controller, 'CreateVolume', { name, capacity_range: { required_bytes: GiB }, ...extra }, { deadlineMs });

/** The log lines of one RPC, found by a field on its summary line. */
function summaryLines(method: string, field: string, value: string): Array<Record<string, unknown>> {
  return srv.log.lines().filter((l) => l.method === method && l[field] === value && typeof l.duration_ms === 'number');
}

test('a CsiError passes through with its code and message', async () => {
  for (const code of ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'OUT_OF_RANGE', 'ABORTED'] as const) {
    const err = await expectCode(create(`csi:${code}`), status[code]);
    assert.equal(err.details, `handler says ${code}`);
  }
});

test('a missing required field is INVALID_ARGUMENT naming the field', async () => {
  const err = await expectCode(create(''), status.INVALID_ARGUMENT);
  assert.equal(err.details, 'name is required');
  const del = await expectCode(call(srv.clients.controller, 'DeleteVolume', {}), status.INVALID_ARGUMENT);
  assert.equal(del.details, 'volume_id is required');
});

test('OpenStack error kinds map to gRPC codes, with the OpenStack request ID in the message and what to do', async () => {
  const expected: Record<OpenStackErrorKind, keyof typeof status> = {
    not_found: 'NOT_FOUND',
    conflict: 'FAILED_PRECONDITION',
    bad_request: 'FAILED_PRECONDITION',
    config: 'FAILED_PRECONDITION',
    over_quota: 'RESOURCE_EXHAUSTED',
    forbidden: 'PERMISSION_DENIED',
    unauthorized: 'UNAUTHENTICATED',
    unavailable: 'UNAVAILABLE',
    rate_limited: 'UNAVAILABLE',
    timeout: 'DEADLINE_EXCEEDED',
    network: 'UNAVAILABLE',
    tls: 'FAILED_PRECONDITION',
    state: 'INTERNAL',
  };
  for (const [kind, code] of Object.entries(expected)) {
    const err = await expectCode(create(`openstack:${kind}`), status[code]);
    assert.ok(err.details.startsWith(`Cinder refused: ${kind} (OpenStack request req-0123abcd)`), kind);
    // A failure the CO's retry may cure says so; refused credentials or policy say where to look.
    if (['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(code)) assert.match(err.details, /; the CO retries$/, kind);
    if (kind === 'unauthorized') assert.match(err.details, /check them in the driver's config/);
    if (kind === 'forbidden') assert.match(err.details, /give the user the role it needs/);
    const [line] = summaryLines('CreateVolume', 'request_name', `openstack:${kind}`);
    assert.equal(line.level, 'info', `an OpenStack ${kind} is an expected outcome, logged at info`);
    assert.equal(line.code, code);
  }
});

test('an unexpected exception is INTERNAL with a short message; the stack is only in the log', async () => {
  const err = await expectCode(create('boom'), status.INTERNAL);
  const m = /^internal error; see the driver log for request ([0-9a-f]{8})$/.exec(err.details);
  assert.ok(m, `short message, got: ${err.details}`);
  assert.doesNotMatch(err.details, /kaboom|\n\s+at /);

  const lines = summaryLines('CreateVolume', 'request_name', 'boom');
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.equal(line.level, 'error');
  assert.equal(line.request_id, m[1], 'the message points at the log line');
  assert.equal(line.code, 'INTERNAL');
  const logged = line.err as { message: string; stack: string };
  assert.equal(logged.message, 'kaboom: the handler tripped over itself');
  assert.match(logged.stack, /kaboom[^]*\n\s+at .*pipeline\.test\.js/);
});

test("a failed command is INTERNAL with the command's own short message", async () => {
  const err = await expectCode(create('command'), status.INTERNAL);
  assert.equal(err.details, 'mkfs.ext4 exited with 1: mkfs.ext4: Device size reported to be zero.');
});

test('a tool missing from the node is FAILED_PRECONDITION naming its package and what to do, logged without a stack', async () => {
  const err = await expectCode(create('missing-tool'), status.FAILED_PRECONDITION);
  assert.equal(err.details, 'mkfs.xfs is not installed on this node (Debian package xfsprogs); use an image that has it, or fsType ext4');
  const [line, ...more] = summaryLines('CreateVolume', 'request_name', 'missing-tool');
  assert.equal(more.length, 0);
  assert.equal(line.level, 'info');
  assert.equal(line.code, 'FAILED_PRECONDITION');
  assert.equal(line.err, undefined);
});

test('an RPC the service does not implement answers UNIMPLEMENTED, and is logged like any call', async () => {
  const err = await expectCode(call(srv.clients.controller, 'ListVolumes', {}), status.UNIMPLEMENTED);
  assert.match(err.details, /ListVolumes is not implemented/);
  const lines = srv.log.lines().filter((l) => l.method === 'ListVolumes');
  assert.equal(lines.length, 1);
  assert.equal(lines[0].code, 'UNIMPLEMENTED');
});

test('every RPC writes exactly one info line with method, request ID, volume ID, duration and code', async () => {
  const res = await create('pvc-logged');
  assert.equal(res.volume.volume_id, 'vol-of-pvc-logged');
  await call(srv.clients.controller, 'DeleteVolume', { volume_id: 'vol-logged' });
  await expectCode(create('csi:NOT_FOUND'), status.NOT_FOUND);

  const lines = srv.log.lines();
  const byRequest = new Map<unknown, Array<Record<string, unknown>>>();
  for (const l of lines) if (l.request_id) byRequest.set(l.request_id, [...(byRequest.get(l.request_id) ?? []), l]);

  const createLines = summaryLines('CreateVolume', 'request_name', 'pvc-logged');
  assert.equal(createLines.length, 1);
  const c = createLines[0];
  assert.equal(c.level, 'info');
  assert.equal(c.code, 'OK');
  assert.equal(c.volume_id, 'vol-of-pvc-logged', 'the handler annotated the ID it created');
  assert.match(String(c.request_id), /^[0-9a-f]{8}$/);
  assert.ok(typeof c.duration_ms === 'number' && c.duration_ms >= 0);
  assert.equal(byRequest.get(c.request_id)?.length, 1, 'one line for the call at info level');

  const [d] = summaryLines('DeleteVolume', 'volume_id', 'vol-logged');
  assert.equal(d.code, 'OK');
  assert.notEqual(d.request_id, c.request_id, 'each call has its own request ID');

  const [nf] = summaryLines('CreateVolume', 'request_name', 'csi:NOT_FOUND');
  assert.equal(nf.code, 'NOT_FOUND');
  assert.equal(nf.error, 'handler says NOT_FOUND');
  assert.equal(byRequest.get(nf.request_id)?.length, 1);
  assert.ok(!lines.some((l) => 'request' in l), 'the request itself is logged at debug only');
});

test('secrets appear nowhere in the log, not even at debug level', async () => {
  const secretValues = ['hunter2-SECRET', 'gAAAAAtoken-SECRET', 'apikey-SECRET', 'appcred-SECRET', 'nested-SECRET'];
  const debugSrv = await startTestServer([controllerService()], { logLevel: 'debug' });
  try {
    const request = {
      capacity_range: { required_bytes: GiB },
      parameters: { type: 'fast-ssd', availability: 'nova' },
      secrets: {
        password: 'hunter2-SECRET',
        token: 'gAAAAAtoken-SECRET',
        api_key: 'apikey-SECRET',
        application_credential_secret: 'appcred-SECRET',
      },
    };
    await call(debugSrv.clients.controller, 'CreateVolume', { name: 'pvc-secret', ...request });
    await call(debugSrv.clients.controller, 'CreateVolume', { name: 'careless', ...request });
    await expectCode(call(debugSrv.clients.controller, 'CreateVolume', { name: 'boom', ...request }), status.INTERNAL);
    await call(debugSrv.clients.controller, 'DeleteVolume', { volume_id: 'vol-1', secrets: { 'os-password': 'nested-SECRET', password: 'hunter2-SECRET' } });

    const text = debugSrv.log.text();
    for (const secret of secretValues) assert.ok(!text.includes(secret), `'${secret}' leaked into the log`);
    // And the log is not empty for want of trying: the request is there, scrubbed.
    const debugLine = debugSrv.log.lines().find((l) => l.level === 'debug' && l.msg === 'request' && (l.request as any)?.name === 'pvc-secret');
    assert.ok(debugLine, 'the request is logged at debug');
    const logged = debugLine.request as Record<string, any>;
    assert.equal(logged.secrets, '[REDACTED]');
    assert.deepEqual(logged.parameters, { type: 'fast-ssd', availability: 'nova' }, 'parameters are not secrets');
    assert.ok(debugSrv.log.lines().some((l) => l.msg === 'handler saw the request'));
  } finally {
    await debugSrv.stop();
  }
});

test("the handler's signal aborts at the caller's deadline", async () => {
  const sent = Date.now();
  await expectCode(create('wait-deadline', {}, 400), status.DEADLINE_EXCEEDED);
  await until(() => deadlineSeen.has('wait-deadline'), 5000, 'the handler to see its signal abort');
  const ctx = seen.get('wait-deadline')!;
  assert.ok(ctx.deadline !== null && Math.abs(ctx.deadline - (sent + 400)) < 1000, `deadline ${ctx.deadline} is about now + 400 ms`);
  const { abortedAfterMs } = deadlineSeen.get('wait-deadline')!;
  assert.ok(abortedAfterMs >= 200 && abortedAfterMs < 3000, `aborted after ${abortedAfterMs} ms`);
  assert.equal(ctx.signal.aborted, true);
  await until(() => summaryLines('CreateVolume', 'request_name', 'wait-deadline').length === 1, 2000, 'the log line');
  assert.equal(summaryLines('CreateVolume', 'request_name', 'wait-deadline')[0].code, 'DEADLINE_EXCEEDED');
});

test('identical CreateVolume calls at once run the work once and get the same volume; DeleteVolume on the key meanwhile is ABORTED', async () => {
  const name = 'join:pvc-7';
  const a = create(name);
  const b = create(name);
  await until(() => joinArrivals === 2, 5000, 'both calls to reach the handler');

  const err = await expectCode(call(srv.clients.controller, 'DeleteVolume', { volume_id: name }), status.ABORTED);
  assert.match(err.details, /CreateVolume is already in progress for join:pvc-7/);
  const bigger = await expectCode(create(name, { capacity_range: { required_bytes: 2 * GiB } }), status.ABORTED);
  assert.match(bigger.details, /another CreateVolume with different arguments/);

  joinRelease.open();
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(createRuns, 1);
  assert.equal(ra.volume.volume_id, 'vol-1');
  assert.deepEqual(rb, ra);
  assert.equal(registry.size, 0);
});
