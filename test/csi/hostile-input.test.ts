// "Hard to break": malformed and hostile requests to every Identity, Controller
// and Node RPC, over the real socket of a driver that runs as its own process
// (`cinder-csi serve --mode all`) against the simulated OpenStack. For every
// request the driver answers within seconds, with OK or a code the CSI spec
// gives for that input, in a message that names the offending field; never
// INTERNAL or UNKNOWN. Afterwards it still serves Probe and CreateVolume.
//
// The hostile values come from fixed tables (and a seeded generator for the
// long strings), so every run sends the same requests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from '../../src/csi/proto';
import { GiB } from '../../src/csi/constants';
import { startSimulator, type Simulator } from '../../src/sim';
import { DriverProcess, rpc } from '../../bench/driver-process';
import { isRoot, Sandbox } from '../node/loop';
import { seeded } from '../helpers/seeded';

const Code = grpc.status;
type Service = 'identity' | 'controller' | 'node';

/** Each call must answer within this (the driver never hangs on a bad request). */
const ANSWER_WITHIN_MS = 5_000;

const SEED = 0x5eed_c5c1;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:é漢🙂 ';

/** A string of `length` characters drawn from ALPHABET by the seeded generator. */
function longString(length: number, random = seeded(SEED)): string {
  const chars = [...ALPHABET];
  let s = '';
  while (s.length < length) s += chars[Math.floor(random() * chars.length)];
  return s;
}

const LONG = longString(10_001);

/**
 * Values no CO sends as a name: the spec limits strings to 128 bytes, and bans
 * from names the control characters other than tab, newline and carriage
 * return. Each must be INVALID_ARGUMENT naming the field.
 */
const MALFORMED_NAMES: Record<string, string> = {
  'an empty string': '',
  'a string of 10,001 characters': LONG,
  'a NUL byte': 'fake-vol\0id',
  'a C1 control character (NEL)': 'fake-vol\u0085id',
};

/** Nor as an ID: no ID this driver issues holds a control character or a '/' (on the node it would make the volume ID a path). */
const MALFORMED_IDS: Record<string, string> = { ...MALFORMED_NAMES, 'a newline': 'fake-vol\nid', 'a path with ..': '../../../../etc/passwd' };

/** Well-formed IDs of nothing that exists: NOT_FOUND where the spec says so, OK where it says unknown is done. */
const UNKNOWN_IDS: Record<string, string> = {
  'csi-sanity style': 'fake-vol-id',
  'a UUID': '0b0d0b0d-0000-4000-8000-000000000000',
  'non-ASCII': 'é漢🙂',
  'URL syntax': '%2e%2e?marker=x&limit=1#frag',
};

/** A path of 40 components of 255 characters from the seeded generator: over PATH_MAX, and each component over NAME_MAX in bytes. */
const LONG_PATH = '/' + Array.from({ length: 40 }, (_, i) => longString(255, seeded(SEED + i)).replace(/[/\0 ]/g, 'x')).join('/');

type Outcome = 'OK' | grpc.status;

interface Answer {
  code: Outcome;
  message: string;
}

interface Case {
  service: Service;
  rpc: string;
  /** The spec sentence this case proves. */
  what: string;
  request: () => Record<string, unknown>;
  /** The answers the spec allows. */
  allowed: Outcome[];
  /** The field a refusal must name (or, for NOT_FOUND, the value it must quote). */
  names: string;
}

const MOUNT = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const mountWith = (mount: Record<string, unknown>) => ({ mount, access_mode: { mode: 'SINGLE_NODE_WRITER' } });

describe('hostile input over the socket', () => {
  let dir: string;
  let sim: Simulator;
  let driver: DriverProcess;
  /** Fixtures: a volume, a snapshot of it, this node's ID, a staging directory and a target's parent. */
  const fx = { volumeId: '', snapshotId: '', nodeId: '', staging: '', targetParent: '', data: '', toRoot: '' };
  const made: string[] = [];
  const exercised = new Set<string>();

  const client = (service: Service) => driver.clients[service];

  async function answer(service: Service, method: string, request: unknown): Promise<Answer> {
    exercised.add(`${service}/${method}`);
    try {
      const res = await rpc(client(service), method, request, ANSWER_WITHIN_MS);
      const id = (res as { volume?: { volume_id?: string } })?.volume?.volume_id;
      if (method === 'CreateVolume' && id) made.push(id);
      return { code: 'OK', message: '' };
    } catch (e) {
      const err = e as grpc.ServiceError;
      return { code: err.code, message: err.details ?? err.message };
    }
  }

  const codeName = (c: Outcome) => (c === 'OK' ? 'OK' : Code[c]);

  async function check(c: Case): Promise<void> {
    const a = await answer(c.service, c.rpc, c.request());
    const said = `${c.rpc}: ${c.what}: got ${codeName(a.code)} ${JSON.stringify(a.message.slice(0, 300))}`;
    assert.notEqual(a.code, Code.DEADLINE_EXCEEDED, `${said} (no answer within ${ANSWER_WITHIN_MS} ms)`);
    assert.ok(a.code !== Code.INTERNAL && a.code !== Code.UNKNOWN, `${said}: a bad input is never INTERNAL or UNKNOWN`);
    assert.ok(c.allowed.includes(a.code), `${said}; the spec allows ${c.allowed.map(codeName).join(' or ')}`);
    if (a.code !== 'OK') assert.ok(a.message.includes(c.names), `${said}: the message must name ${JSON.stringify(c.names.slice(0, 60))}`);
    assert.ok(driver.child.exitCode === null && driver.child.signalCode === null, `${said}: the driver process died`);
  }

  /** Every case in turn (one request at a time); the failures are reported together. */
  const run = async (cases: Case[]) => {
    const failures: string[] = [];
    for (const c of cases) await check(c).catch((e: Error) => failures.push(e.message));
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} answers break the spec`);
  };

  /**
   * The ID field `field` of `rpc` set to each malformed value (INVALID_ARGUMENT) and each
   * unknown one (`unknown`: NOT_FOUND, or OK for the calls where unknown means done).
   */
  function idCases(service: Service, rpcName: string, field: string, base: () => Record<string, unknown>, unknown: Outcome[] | null): Case[] {
    const cases: Case[] = Object.entries(field === 'name' ? MALFORMED_NAMES : MALFORMED_IDS).map(([what, value]) => ({
      service,
      rpc: rpcName,
      what: `${field} with ${what} is INVALID_ARGUMENT`,
      request: () => ({ ...base(), [field]: value }),
      allowed: [Code.INVALID_ARGUMENT],
      names: field,
    }));
    if (unknown) {
      for (const [what, value] of Object.entries(UNKNOWN_IDS)) {
        cases.push({
          service,
          rpc: rpcName,
          what: `${field} of nothing that exists (${what}) is ${unknown.map(codeName).join(' or ')}`,
          request: () => ({ ...base(), [field]: value }),
          allowed: unknown,
          names: value,
        });
      }
    }
    return cases;
  }

  /** A refusal case: `request` must be answered with one of `allowed`, naming `names`. */
  const refuse = (service: Service, rpcName: string, what: string, request: () => Record<string, unknown>, allowed: Outcome[], names: string): Case => ({
    service,
    rpc: rpcName,
    what,
    request,
    allowed,
    names,
  });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-hostile-'));
    sim = await startSimulator({ stateDir: path.join(dir, 'sim'), hypervisor: isRoot() });
    driver = await DriverProcess.start({ sim, dir: path.join(dir, 'driver'), mode: 'all' });
    const created = await rpc(driver.clients.controller, 'CreateVolume', { name: 'hostile-fixture', volume_capabilities: [MOUNT], capacity_range: { required_bytes: GiB } });
    fx.volumeId = created.volume.volume_id;
    const snap = await rpc(driver.clients.controller, 'CreateSnapshot', { name: 'hostile-fixture-snap', source_volume_id: fx.volumeId });
    fx.snapshotId = snap.snapshot.snapshot_id;
    fx.nodeId = (await rpc(driver.clients.node, 'NodeGetInfo', {})).node_id;
    const work = path.join(dir, 'kubelet');
    fx.staging = path.join(work, 'staging');
    fx.targetParent = path.join(work, 'pod');
    fx.data = path.join(work, 'someones-data');
    fx.toRoot = path.join(work, 'link-to-root');
    await mkdir(fx.staging, { recursive: true });
    await mkdir(fx.targetParent, { recursive: true });
    await mkdir(fx.data, { recursive: true });
    await writeFile(path.join(fx.data, 'precious'), 'do not delete');
    await symlink('/', fx.toRoot);
  });

  after(async () => {
    if (driver) {
      await rpc(driver.clients.controller, 'DeleteSnapshot', { snapshot_id: fx.snapshotId }).catch(() => undefined);
      for (const id of [...made, fx.volumeId]) await rpc(driver.clients.controller, 'DeleteVolume', { volume_id: id }).catch(() => undefined);
      await driver.stop();
    }
    await sim?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('Identity', () => {
    it('answers GetPluginInfo, GetPluginCapabilities and Probe whatever else the request holds', async () => {
      for (const method of ['GetPluginInfo', 'GetPluginCapabilities', 'Probe']) {
        const a = await answer('identity', method, {});
        assert.equal(a.code, 'OK', `${method}: ${a.message}`);
      }
    });
  });

  describe('Controller', () => {
    const createBase = () => ({ name: 'hostile-create', volume_capabilities: [MOUNT], capacity_range: { required_bytes: GiB } });
    const publishBase = () => ({ volume_id: fx.volumeId, node_id: fx.nodeId, volume_capability: MOUNT });

    it('CreateVolume: a name that is empty, over the size limit or holds control characters is INVALID_ARGUMENT naming name', () =>
      run(idCases('controller', 'CreateVolume', 'name', createBase, null)));

    it('CreateVolume: a name with a tab or a newline, whitespace the spec allows in names, makes a volume', async () => {
      const a = await answer('controller', 'CreateVolume', { ...createBase(), name: 'hostile\tname\n' });
      assert.equal(a.code, 'OK', a.message);
    });

    it('CreateVolume: a capacity_range it cannot honour is INVALID_ARGUMENT or OUT_OF_RANGE naming the bound', () => {
      const create = (what: string, range: Record<string, number>, allowed: Outcome[], names: string) =>
        refuse('controller', 'CreateVolume', what, () => ({ ...createBase(), name: `hostile-range-${names}`, capacity_range: range }), allowed, names);
      return run([
        create('a negative required_bytes', { required_bytes: -1 }, [Code.INVALID_ARGUMENT], 'required_bytes'),
        create('a negative limit_bytes', { limit_bytes: -GiB }, [Code.INVALID_ARGUMENT], 'limit_bytes'),
        create('limit_bytes below required_bytes', { required_bytes: 2 * GiB, limit_bytes: GiB }, [Code.OUT_OF_RANGE, Code.INVALID_ARGUMENT], 'limit_bytes'),
        create('a limit_bytes below one GiB (Cinder sizes in whole GiB)', { limit_bytes: 1 }, [Code.OUT_OF_RANGE], 'limit_bytes'),
        create('required_bytes near 2^63', { required_bytes: 2 ** 63 - 1024 }, [Code.OUT_OF_RANGE, Code.RESOURCE_EXHAUSTED], 'required_bytes'),
        create('both bounds near 2^63, limit_bytes below required_bytes', { required_bytes: 2 ** 63 - 1024, limit_bytes: 2 ** 62 }, [Code.OUT_OF_RANGE], 'required_bytes'),
      ]);
    });

    it('CreateVolume: volume_capabilities that are missing, empty or self-contradictory are INVALID_ARGUMENT naming the capability', () => {
      const caps = (what: string, volume_capabilities: unknown[], names = 'capabilit') =>
        refuse('controller', 'CreateVolume', what, () => ({ ...createBase(), volume_capabilities }), [Code.INVALID_ARGUMENT], names);
      return run([
        caps('an empty volume_capabilities list', [], 'volume_capabilities'),
        caps('a capability with neither mount nor block', [{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }]),
        caps('a capability without an access mode', [{ mount: {} }], 'access mode'),
        caps('access mode UNKNOWN', [{ mount: {}, access_mode: { mode: 'UNKNOWN' } }], 'access mode'),
        caps('an access mode enum value the spec does not define', [{ mount: {}, access_mode: { mode: 99 } }], 'access mode'),
      ]);
    });

    it('CreateVolume: unknown StorageClass parameters and bad values are INVALID_ARGUMENT naming the key', () => {
      const params = (what: string, parameters: Record<string, string>, names: string, allowed: Outcome[] = [Code.INVALID_ARGUMENT]) =>
        refuse('controller', 'CreateVolume', what, () => ({ ...createBase(), parameters }), allowed, names);
      return run([
        params('an unknown key', { tpye: 'fast' }, 'tpye'),
        params('a key of 10,001 characters', { [LONG]: 'x' }, LONG.slice(0, 40)),
        params('a key with a NUL byte', { 'type\0': 'x' }, 'type'),
        params('an empty type', { type: '' }, 'type'),
        params('a type with a newline', { type: 'fast\nslow' }, 'type'),
        params('a type of 10,001 characters', { type: LONG }, 'type'),
        params('appendVolumeMetadata that is not JSON', { appendVolumeMetadata: '{"a":' }, 'appendVolumeMetadata'),
        params('appendVolumeMetadata that is not an object of strings', { appendVolumeMetadata: '{"a":1}' }, 'appendVolumeMetadata'),
        refuse('controller', 'CreateVolume', 'mutable_parameters with an unknown key', () => ({ ...createBase(), mutable_parameters: { iops: '5' } }), [Code.INVALID_ARGUMENT], 'iops'),
      ]);
    });

    it('CreateVolume: secrets with odd keys are ignored or refused, never a crash; an unknown cloud is INVALID_ARGUMENT naming it', () =>
      run([
        refuse('controller', 'CreateVolume', 'a secret cloud that is not configured', () => ({ ...createBase(), secrets: { cloud: 'nowhere' } }), [Code.INVALID_ARGUMENT], 'nowhere'),
        refuse('controller', 'CreateVolume', 'a secret cloud with a NUL byte', () => ({ ...createBase(), secrets: { cloud: 'a\0b' } }), [Code.INVALID_ARGUMENT], 'cloud'),
        refuse('controller', 'CreateVolume', 'secrets with empty, long and control-character keys', () => ({ ...createBase(), name: 'hostile-secrets', secrets: { '': 'x', [LONG]: 'y', 'a\nb': 'z' } }), ['OK', Code.INVALID_ARGUMENT], 'secrets'),
      ]));

    it('CreateVolume: a content source that names nothing is NOT_FOUND; one of neither type, or without an ID, INVALID_ARGUMENT', () =>
      run([
        refuse('controller', 'CreateVolume', 'a content source of neither type', () => ({ ...createBase(), volume_content_source: {} }), [Code.INVALID_ARGUMENT], 'neither a snapshot nor a volume'),
        refuse('controller', 'CreateVolume', 'a snapshot source without snapshot_id', () => ({ ...createBase(), volume_content_source: { snapshot: {} } }), [Code.INVALID_ARGUMENT], 'snapshot_id'),
        refuse('controller', 'CreateVolume', 'a volume source without volume_id', () => ({ ...createBase(), volume_content_source: { volume: {} } }), [Code.INVALID_ARGUMENT], 'volume_id'),
        refuse('controller', 'CreateVolume', 'an unknown snapshot source', () => ({ ...createBase(), volume_content_source: { snapshot: { snapshot_id: 'fake-snap-id' } } }), [Code.NOT_FOUND], 'fake-snap-id'),
        refuse('controller', 'CreateVolume', 'a snapshot source with a NUL byte', () => ({ ...createBase(), volume_content_source: { snapshot: { snapshot_id: 'a\0b' } } }), [Code.INVALID_ARGUMENT], 'snapshot_id'),
        refuse('controller', 'CreateVolume', 'a volume source of 10,001 characters', () => ({ ...createBase(), volume_content_source: { volume: { volume_id: LONG } } }), [Code.INVALID_ARGUMENT], 'volume_id'),
      ]));

    it('CreateVolume: a topology requirement no zone can meet is RESOURCE_EXHAUSTED; unknown keys are ignored', () =>
      run([
        refuse(
          'controller',
          'CreateVolume',
          'a requisite zone that does not exist',
          () => ({ ...createBase(), name: 'hostile-zone', accessibility_requirements: { requisite: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nowhere\n' } }] } }),
          [Code.RESOURCE_EXHAUSTED, Code.INVALID_ARGUMENT],
          'nowhere',
        ),
        refuse(
          'controller',
          'CreateVolume',
          'segments with unknown keys only',
          () => ({ ...createBase(), name: 'hostile-zone-keys', accessibility_requirements: { requisite: [{ segments: { [LONG]: LONG } }] } }),
          ['OK', Code.INVALID_ARGUMENT],
          'segments',
        ),
      ]));

    it('DeleteVolume: a malformed volume_id is INVALID_ARGUMENT; an unknown one is OK (already gone)', () =>
      run(idCases('controller', 'DeleteVolume', 'volume_id', () => ({}), ['OK'])));

    it('ControllerPublishVolume: malformed IDs are INVALID_ARGUMENT; an unknown volume or node is NOT_FOUND', () =>
      run([
        ...idCases('controller', 'ControllerPublishVolume', 'volume_id', publishBase, [Code.NOT_FOUND]),
        ...idCases('controller', 'ControllerPublishVolume', 'node_id', publishBase, [Code.NOT_FOUND]),
        // node_id overrides the general size limit: up to 256 bytes.
        refuse('controller', 'ControllerPublishVolume', 'a node_id of 200 bytes names no server', () => ({ ...publishBase(), node_id: 'n'.repeat(200) }), [Code.NOT_FOUND], 'n'.repeat(200)),
      ]));

    it('ControllerPublishVolume: a missing or self-contradictory volume_capability is INVALID_ARGUMENT', () =>
      run([
        refuse('controller', 'ControllerPublishVolume', 'no volume_capability', () => ({ ...publishBase(), volume_capability: null }), [Code.INVALID_ARGUMENT], 'volume_capability'),
        refuse('controller', 'ControllerPublishVolume', 'neither mount nor block', () => ({ ...publishBase(), volume_capability: { access_mode: { mode: 'SINGLE_NODE_WRITER' } } }), [Code.INVALID_ARGUMENT], 'access type'),
        refuse('controller', 'ControllerPublishVolume', 'an undefined access mode', () => ({ ...publishBase(), volume_capability: { mount: {}, access_mode: { mode: 42 } } }), [Code.INVALID_ARGUMENT], 'access mode'),
      ]));

    it('ControllerUnpublishVolume: a malformed volume_id or node_id is INVALID_ARGUMENT; unknown ones are OK (nothing to detach)', () =>
      run([
        ...idCases('controller', 'ControllerUnpublishVolume', 'volume_id', () => ({ node_id: fx.nodeId }), ['OK']),
        ...idCases('controller', 'ControllerUnpublishVolume', 'node_id', () => ({ volume_id: fx.volumeId }), ['OK']).filter((c) => !c.what.includes('an empty string')),
      ]));

    it('ValidateVolumeCapabilities: malformed IDs are INVALID_ARGUMENT, unknown NOT_FOUND; bad capabilities are refused or not confirmed', () =>
      run([
        ...idCases('controller', 'ValidateVolumeCapabilities', 'volume_id', () => ({ volume_capabilities: [MOUNT] }), [Code.NOT_FOUND]),
        refuse('controller', 'ValidateVolumeCapabilities', 'an empty volume_capabilities list', () => ({ volume_id: fx.volumeId, volume_capabilities: [] }), [Code.INVALID_ARGUMENT], 'volume_capabilities'),
        refuse('controller', 'ValidateVolumeCapabilities', 'a capability with both access types and an undefined mode', () => ({ volume_id: fx.volumeId, volume_capabilities: [{ mount: {}, block: {}, access_mode: { mode: 77 } }] }), ['OK', Code.INVALID_ARGUMENT], 'access'),
        refuse('controller', 'ValidateVolumeCapabilities', 'parameters with an unknown key', () => ({ volume_id: fx.volumeId, volume_capabilities: [MOUNT], parameters: { '\0': '' } }), ['OK', Code.INVALID_ARGUMENT], 'parameter'),
      ]));

    const listCases = (rpcName: string): Case[] => [
      refuse('controller', rpcName, 'a negative max_entries is INVALID_ARGUMENT', () => ({ max_entries: -1 }), [Code.INVALID_ARGUMENT], 'max_entries'),
      refuse('controller', rpcName, 'the most negative max_entries is INVALID_ARGUMENT', () => ({ max_entries: -(2 ** 31) }), [Code.INVALID_ARGUMENT], 'max_entries'),
      ...[
        ['garbage', 'garbage'],
        ['a dot only', '.'],
        ['two dots', 'a.b.c'],
        ['a forged signature', `${Buffer.from('{"list":"volumes","cloud":"sim"}').toString('base64url')}.AAAAAAAAAAAAAAAAAAAAAA`],
        ['10,001 characters', LONG],
        ['a NUL byte and a newline', 'a\0.b\n'],
      ].map(([what, token]) => refuse('controller', rpcName, `a starting_token that is ${what} is ABORTED`, () => ({ starting_token: token }), [Code.ABORTED], 'starting_token')),
    ];

    it('ListVolumes: max_entries negative is INVALID_ARGUMENT, a starting_token it did not issue ABORTED', () => run(listCases('ListVolumes')));

    it('GetCapacity: unknown parameters are INVALID_ARGUMENT; odd capabilities and topology answer OK', () =>
      run([
        refuse('controller', 'GetCapacity', 'an unknown parameter', () => ({ parameters: { [LONG]: '' } }), [Code.INVALID_ARGUMENT], LONG.slice(0, 40)),
        refuse('controller', 'GetCapacity', 'a capability with neither access type', () => ({ volume_capabilities: [{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }), ['OK', Code.INVALID_ARGUMENT], 'access'),
        refuse('controller', 'GetCapacity', 'a zone with control characters', () => ({ accessible_topology: { segments: { 'topology.cinder.csi.openstack.org/zone': 'a\0\n' } } }), ['OK', Code.INVALID_ARGUMENT], 'zone'),
      ]));

    it('ControllerGetCapabilities answers OK', async () => {
      assert.equal((await answer('controller', 'ControllerGetCapabilities', {})).code, 'OK');
    });

    it('CreateSnapshot: malformed names and source_volume_id are INVALID_ARGUMENT, an unknown source NOT_FOUND, bad parameters INVALID_ARGUMENT', () => {
      const base = () => ({ name: 'hostile-snapshot', source_volume_id: fx.volumeId });
      return run([
        ...idCases('controller', 'CreateSnapshot', 'name', base, null),
        ...idCases('controller', 'CreateSnapshot', 'source_volume_id', () => ({ name: 'hostile-snapshot-unknown' }), [Code.NOT_FOUND]),
        refuse('controller', 'CreateSnapshot', 'an unknown parameter', () => ({ ...base(), parameters: { 'force-creat': 'true' } }), [Code.INVALID_ARGUMENT], 'force-creat'),
        refuse('controller', 'CreateSnapshot', 'force-create that is not a boolean', () => ({ ...base(), parameters: { 'force-create': 'yes; rm -rf /' } }), [Code.INVALID_ARGUMENT], 'force-create'),
        refuse('controller', 'CreateSnapshot', 'a type that is neither snapshot nor backup', () => ({ ...base(), parameters: { type: '../backup' } }), [Code.INVALID_ARGUMENT], 'type'),
        refuse('controller', 'CreateSnapshot', 'backup-max-duration-seconds-per-gb negative', () => ({ ...base(), parameters: { 'backup-max-duration-seconds-per-gb': '-1' } }), [Code.INVALID_ARGUMENT], 'backup-max-duration-seconds-per-gb'),
      ]);
    });

    it('DeleteSnapshot: a malformed snapshot_id is INVALID_ARGUMENT; an unknown one is OK', () =>
      run(idCases('controller', 'DeleteSnapshot', 'snapshot_id', () => ({}), ['OK'])));

    it('ListSnapshots: max_entries negative is INVALID_ARGUMENT, a starting_token it did not issue ABORTED; filters of nothing list nothing', async () => {
      await run(listCases('ListSnapshots'));
      for (const filter of [{ snapshot_id: 'fake-snap-id' }, { source_volume_id: 'fake-vol-id' }, { snapshot_id: 'é漢🙂', source_volume_id: '%2e%2e' }]) {
        const res = await rpc(client('controller'), 'ListSnapshots', filter, ANSWER_WITHIN_MS);
        assert.deepEqual(res.entries, [], `ListSnapshots ${JSON.stringify(filter)} lists nothing`);
      }
      await run([
        ...Object.entries(MALFORMED_IDS)
          .filter(([what]) => what !== 'an empty string')
          .flatMap(([what, value]) =>
            ['snapshot_id', 'source_volume_id'].map((field) =>
              refuse('controller', 'ListSnapshots', `${field} with ${what}: nothing listed or INVALID_ARGUMENT`, () => ({ [field]: value }), ['OK', Code.INVALID_ARGUMENT], field),
            ),
          ),
      ]);
    });

    it('GetSnapshot: a malformed snapshot_id is INVALID_ARGUMENT, an unknown one NOT_FOUND', () =>
      run(idCases('controller', 'GetSnapshot', 'snapshot_id', () => ({}), [Code.NOT_FOUND])));

    it('ControllerExpandVolume: malformed IDs are INVALID_ARGUMENT, unknown NOT_FOUND; a capacity_range it cannot honour is refused naming the bound', () => {
      const expand = (what: string, capacity_range: Record<string, number> | null, allowed: Outcome[], names: string) =>
        refuse('controller', 'ControllerExpandVolume', what, () => ({ volume_id: fx.volumeId, capacity_range }), allowed, names);
      return run([
        ...idCases('controller', 'ControllerExpandVolume', 'volume_id', () => ({ capacity_range: { required_bytes: 2 * GiB } }), [Code.NOT_FOUND]),
        expand('no capacity_range', null, [Code.INVALID_ARGUMENT], 'capacity_range'),
        expand('a zero capacity_range', { required_bytes: 0, limit_bytes: 0 }, [Code.INVALID_ARGUMENT], 'capacity_range'),
        expand('a negative required_bytes', { required_bytes: -GiB }, [Code.INVALID_ARGUMENT], 'required_bytes'),
        expand('limit_bytes below required_bytes', { required_bytes: 3 * GiB, limit_bytes: 2 * GiB }, [Code.OUT_OF_RANGE, Code.INVALID_ARGUMENT], 'limit_bytes'),
        expand('a limit_bytes below the volume (volumes do not shrink)', { limit_bytes: 1 }, [Code.OUT_OF_RANGE], 'limit_bytes'),
        expand('required_bytes near 2^63', { required_bytes: 2 ** 63 - 1024 }, [Code.OUT_OF_RANGE, Code.RESOURCE_EXHAUSTED], 'required_bytes'),
      ]);
    });

    it('ControllerGetVolume: a malformed volume_id is INVALID_ARGUMENT, an unknown one NOT_FOUND', () =>
      run(idCases('controller', 'ControllerGetVolume', 'volume_id', () => ({}), [Code.NOT_FOUND])));

    it('ControllerModifyVolume: malformed IDs are INVALID_ARGUMENT, unknown NOT_FOUND; unknown mutable_parameters INVALID_ARGUMENT (none is a no-op, as csi-sanity expects)', () =>
      run([
        ...idCases('controller', 'ControllerModifyVolume', 'volume_id', () => ({ mutable_parameters: { type: 'fast' } }), [Code.NOT_FOUND]),
        refuse('controller', 'ControllerModifyVolume', 'an unknown mutable parameter', () => ({ volume_id: fx.volumeId, mutable_parameters: { 'type\n': 'fast' } }), [Code.INVALID_ARGUMENT], 'type'),
        refuse('controller', 'ControllerModifyVolume', 'a type Cinder does not have', () => ({ volume_id: fx.volumeId, mutable_parameters: { type: LONG } }), [Code.INVALID_ARGUMENT], 'type'),
      ]));
  });

  describe('Node', () => {
    const stageBase = () => ({ volume_id: 'fake-vol-id', staging_target_path: path.join(fx.staging, 'missing'), volume_capability: MOUNT });
    const publishBase = () => ({ volume_id: 'fake-vol-id', staging_target_path: fx.staging, target_path: path.join(fx.targetParent, 'target'), volume_capability: MOUNT });

    /** Paths the node must refuse as INVALID_ARGUMENT naming the field: kubelet never sends them. */
    const badPaths = (): Record<string, string> => ({
      'an empty string': '',
      'a relative path': 'var/lib/kubelet/pods/x/mount',
      'a path with ..': `${fx.staging}/../../../../etc`,
      'a path with .': `${fx.staging}/./x`,
      'the root directory': '/',
      'doubled slashes': `${fx.staging}//x`,
      'a NUL byte': `${fx.staging}/a\0b`,
      'a newline': `${fx.staging}/a\nb`,
      'a path longer than PATH_MAX': LONG_PATH,
      'a symlink to /': fx.toRoot,
    });

    /** The path field `field` of `rpc` set to each bad path. */
    const pathCases = (rpcName: string, field: string, base: () => Record<string, unknown>, allowed: Outcome[] = [Code.INVALID_ARGUMENT]): Case[] =>
      Object.entries(badPaths()).map(([what, value]) => ({
        service: 'node' as const,
        rpc: rpcName,
        what: `${field} with ${what} is ${allowed.map(codeName).join(' or ')}`,
        request: () => ({ ...base(), [field]: value }),
        allowed,
        names: field,
      }));

    /** Malformed volume IDs: a '/' in one would make a path of it (the device lookup joins it to /dev/disk/by-id). */
    const nodeIdCases = (rpcName: string, base: () => Record<string, unknown>): Case[] => [
      ...idCases('node', rpcName, 'volume_id', base, null),
      refuse('node', rpcName, 'a volume_id with a / is INVALID_ARGUMENT', () => ({ ...base(), volume_id: 'x/y' }), [Code.INVALID_ARGUMENT], 'volume_id'),
    ];

    const capabilityCases = (rpcName: string, base: () => Record<string, unknown>): Case[] => {
      const cap = (what: string, volume_capability: unknown, names: string) => refuse('node', rpcName, what, () => ({ ...base(), volume_capability }), [Code.INVALID_ARGUMENT], names);
      return [
        cap('no volume_capability', null, 'volume_capability'),
        cap('neither mount nor block', { access_mode: { mode: 'SINGLE_NODE_WRITER' } }, 'volume_capability'),
        cap('an undefined access mode', { mount: {}, access_mode: { mode: 1234 } }, 'access_mode'),
        cap('fs_type ../ext4', mountWith({ fs_type: '../ext4' }), 'fs_type'),
        cap('fs_type "ext4; rm -rf /"', mountWith({ fs_type: 'ext4; rm -rf /' }), 'fs_type'),
        cap('fs_type of 10,001 characters', mountWith({ fs_type: LONG }), 'fs_type'),
        cap('mount_flags bind behind a comma', mountWith({ mount_flags: ['noatime,bind'] }), 'mount_flags'),
        cap('mount_flags remount', mountWith({ mount_flags: ['remount'] }), 'mount_flags'),
        cap('mount_flags loop=/dev/loop0 (a loop device of ours to choose)', mountWith({ mount_flags: ['loop=/dev/loop0'] }), 'mount_flags'),
        cap('mount_flags with a NUL byte', mountWith({ mount_flags: ['ro\0bind'] }), 'mount_flags'),
        cap('mount_flags with a newline', mountWith({ mount_flags: ['ro\nbind'] }), 'mount_flags'),
      ];
    };

    it('NodeStageVolume: malformed volume_id, staging_target_path and volume_capability are INVALID_ARGUMENT naming the field', () =>
      run([
        ...nodeIdCases('NodeStageVolume', stageBase),
        ...pathCases('NodeStageVolume', 'staging_target_path', stageBase),
        ...capabilityCases('NodeStageVolume', stageBase),
        refuse('node', 'NodeStageVolume', 'garbage publish_context is only a hint: the answer is about the staging path', () => ({ ...stageBase(), publish_context: { DevicePath: '../../dev/sda\0', [LONG]: LONG } }), [Code.FAILED_PRECONDITION], 'staging_target_path'),
      ]));

    it('NodeUnstageVolume: malformed volume_id and staging_target_path are INVALID_ARGUMENT naming the field', () => {
      const base = () => ({ volume_id: 'fake-vol-id', staging_target_path: path.join(fx.staging, 'missing') });
      return run([...nodeIdCases('NodeUnstageVolume', base), ...pathCases('NodeUnstageVolume', 'staging_target_path', base)]);
    });

    it('NodePublishVolume: malformed volume_id, paths and volume_capability are INVALID_ARGUMENT naming the field', () =>
      run([
        ...nodeIdCases('NodePublishVolume', publishBase),
        ...pathCases('NodePublishVolume', 'target_path', publishBase),
        // An empty staging path of a STAGE_UNSTAGE_VOLUME plugin is FAILED_PRECONDITION by the spec's table.
        ...pathCases('NodePublishVolume', 'staging_target_path', publishBase).map((c) =>
          c.what.includes('an empty string') ? { ...c, allowed: [Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT] } : c,
        ),
        ...capabilityCases('NodePublishVolume', publishBase),
        refuse('node', 'NodePublishVolume', 'a volume not staged at staging_target_path is FAILED_PRECONDITION', () => ({ ...publishBase(), publish_context: { DevicePath: LONG } }), [Code.FAILED_PRECONDITION], 'not staged'),
      ]));

    it('NodeUnpublishVolume: malformed volume_id and target_path are INVALID_ARGUMENT; a directory with data in it is never removed', async () => {
      const base = () => ({ volume_id: 'fake-vol-id', target_path: path.join(fx.targetParent, 'missing') });
      await run([
        ...nodeIdCases('NodeUnpublishVolume', base),
        ...pathCases('NodeUnpublishVolume', 'target_path', base),
        refuse('node', 'NodeUnpublishVolume', 'a target_path holding files it did not put there', () => ({ ...base(), target_path: fx.data }), [Code.FAILED_PRECONDITION], 'target_path'),
      ]);
      assert.deepEqual(await readdir(fx.data), ['precious'], 'the data is still there');
    });

    it('NodeGetVolumeStats: malformed volume_id is INVALID_ARGUMENT; a volume_path that is bad or not a mount is NOT_FOUND or INVALID_ARGUMENT', () => {
      const base = () => ({ volume_id: 'fake-vol-id', volume_path: fx.staging });
      return run([
        ...nodeIdCases('NodeGetVolumeStats', base),
        // The spec's NOT_FOUND: "volume does not exist or is not published at volume_path" (a missing path is still INVALID_ARGUMENT).
        ...pathCases('NodeGetVolumeStats', 'volume_path', base, [Code.INVALID_ARGUMENT, Code.NOT_FOUND]),
        refuse('node', 'NodeGetVolumeStats', 'a directory that is not a mount is NOT_FOUND', base, [Code.NOT_FOUND], 'volume_path'),
        refuse('node', 'NodeGetVolumeStats', 'a staging_target_path with a NUL byte', () => ({ ...base(), staging_target_path: 'a\0' }), [Code.NOT_FOUND, Code.INVALID_ARGUMENT], 'path'),
      ]);
    });

    it('NodeExpandVolume: malformed volume_id is INVALID_ARGUMENT; a volume_path that is bad or not a mount is NOT_FOUND or INVALID_ARGUMENT', () => {
      const base = () => ({ volume_id: 'fake-vol-id', volume_path: fx.staging, capacity_range: { required_bytes: GiB } });
      return run([
        ...nodeIdCases('NodeExpandVolume', base),
        ...pathCases('NodeExpandVolume', 'volume_path', base, [Code.INVALID_ARGUMENT, Code.NOT_FOUND]),
        refuse('node', 'NodeExpandVolume', 'a directory that is not a mount is NOT_FOUND', base, [Code.NOT_FOUND], 'volume_path'),
        refuse('node', 'NodeExpandVolume', 'a capability with neither access type', () => ({ ...base(), volume_capability: { access_mode: { mode: 'SINGLE_NODE_WRITER' } } }), [Code.INVALID_ARGUMENT], 'volume_capability'),
        refuse('node', 'NodeExpandVolume', 'a negative required_bytes', () => ({ ...base(), capacity_range: { required_bytes: -1 } }), [Code.INVALID_ARGUMENT, Code.NOT_FOUND], 'required_bytes'),
      ]);
    });

    it('NodeGetCapabilities and NodeGetInfo answer OK', async () => {
      for (const method of ['NodeGetCapabilities', 'NodeGetInfo']) assert.equal((await answer('node', method, {})).code, 'OK', method);
    });

    it(
      'NodeStageVolume: a volume_id that climbs out of /dev/disk/by-id never reaches another block device',
      { skip: isRoot() ? false : 'needs root: makes a loop device to be the decoy' },
      async (t) => {
        const box = await Sandbox.create(t, 'cinder-csi-hostile-decoy-');
        const decoy = await box.loopDevice(64 * 1024 * 1024);
        const staging = (await box.volumePaths('decoy')).staging;
        // Joined to <device root>/disk/by-id/virtio-, this names the decoy: far more '..' than the depth, which stop at '/'.
        const volumeId = `x/${'../'.repeat(24)}${decoy.path.slice(1)}`;
        await check(refuse('node', 'NodeStageVolume', 'a volume_id made of .. segments and a device path', () => ({ volume_id: volumeId, staging_target_path: staging, volume_capability: MOUNT }), [Code.INVALID_ARGUMENT], 'volume_id'));
        assert.deepEqual(await box.mountsUnder(), [], 'nothing was mounted');
      },
    );
  });

  it('every Identity, Controller and Node RPC was sent hostile input', () => {
    const csi = loadCsi().csi.v1;
    const all = (['Identity', 'Controller', 'Node'] as const).flatMap((s) => Object.keys(csi[s].service).map((m) => `${s.toLowerCase()}/${m}`));
    assert.deepEqual(all.filter((m) => !exercised.has(m)), []);
  });

  it('after the barrage the driver still answers Probe and creates a volume', async () => {
    const probe = await rpc(client('identity'), 'Probe', {}, ANSWER_WITHIN_MS);
    assert.equal(probe.ready?.value, true);
    const res = await rpc(client('controller'), 'CreateVolume', { name: 'hostile-after', volume_capabilities: [MOUNT], capacity_range: { required_bytes: GiB } }, ANSWER_WITHIN_MS);
    made.push(res.volume.volume_id);
    assert.equal(res.volume.capacity_bytes, GiB);
    assert.ok(driver.child.exitCode === null && driver.child.signalCode === null, 'the driver process is still running');
  });
});

