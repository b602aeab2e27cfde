// Pins the wire contract of proto/csi.proto against the CSI specification.
//
// kubelet and the sidecars only ever see bytes, so these tests encode known
// messages the way the driver does at run time (proto-loader's serializers
// for the service methods, with the driver's loader options) and read the
// field tags back from the bytes. A field renumbered, an enum value shifted or
// an RPC dropped fails here before it fails against a real cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

const PROTO = path.resolve(__dirname, '..', '..', '..', 'proto', 'csi.proto');
const OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

const definition = protoLoader.loadSync(PROTO, OPTIONS);

/** The raw protobufjs view of the same file, for enums and field options. */
function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  const protobufDir = path.dirname(require.resolve('protobufjs/package.json'));
  root.resolvePath = (origin: string, target: string): string =>
    target.startsWith('google/protobuf/') ? path.join(protobufDir, target) : protobuf.util.path.resolve(origin, target);
  root.loadSync(PROTO, { keepCase: true });
  root.resolveAll();
  return root;
}
const root = loadRoot();

type Method = protoLoader.MethodDefinition<object, object>;

function method(service: string, name: string): Method {
  const svc = definition[`csi.v1.${service}`] as protoLoader.ServiceDefinition | undefined;
  assert.ok(svc, `service csi.v1.${service} is defined`);
  const m = svc[name] as Method | undefined;
  assert.ok(m, `csi.v1.${service}/${name} is defined`);
  return m;
}

const encodeRequest = (service: string, name: string, msg: object): Buffer => method(service, name).requestSerialize(msg);
const encodeResponse = (service: string, name: string, msg: object): Buffer => method(service, name).responseSerialize(msg);
const decodeRequest = (service: string, name: string, buf: Buffer): Record<string, unknown> =>
  method(service, name).requestDeserialize(buf) as Record<string, unknown>;
const decodeResponse = (service: string, name: string, buf: Buffer): Record<string, unknown> =>
  method(service, name).responseDeserialize(buf) as Record<string, unknown>;

// ------------------------------------------------------------ wire reading

interface WireField {
  field: number;
  wire: number;
  /** The first byte(s) of the key as written: (field << 3) | wire. */
  tag: number;
  varint?: bigint;
  bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    assert.ok(pos < buf.length, 'varint runs past the end of the buffer');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

/** Splits one message's bytes into its top-level fields, in wire order. */
function fields(buf: Buffer): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    pos = afterKey;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    const tag = Number(key);
    if (wire === 0) {
      const [v, next] = readVarint(buf, pos);
      out.push({ field, wire, tag, varint: v });
      pos = next;
    } else if (wire === 2) {
      const [len, next] = readVarint(buf, pos);
      const end = next + Number(len);
      assert.ok(end <= buf.length, 'length-delimited field runs past the end');
      out.push({ field, wire, tag, bytes: buf.subarray(next, end) });
      pos = end;
    } else if (wire === 1) {
      out.push({ field, wire, tag, bytes: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      out.push({ field, wire, tag, bytes: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else {
      assert.fail(`unexpected wire type ${wire}`);
    }
  }
  return out;
}

const tags = (buf: Buffer): number[] => fields(buf).map((f) => f.tag);
const uniqueTags = (buf: Buffer): number[] => [...new Set(tags(buf))];

function only(buf: Buffer, field: number): WireField {
  const found = fields(buf).filter((f) => f.field === field);
  assert.equal(found.length, 1, `exactly one occurrence of field ${field}`);
  return found[0]!;
}
const sub = (buf: Buffer, field: number): Buffer => {
  const f = only(buf, field);
  assert.equal(f.wire, 2, `field ${field} is length-delimited`);
  return f.bytes!;
};
const varint = (buf: Buffer, field: number): bigint => {
  const f = only(buf, field);
  assert.equal(f.wire, 0, `field ${field} is a varint`);
  return f.varint!;
};
const str = (buf: Buffer, field: number): string => sub(buf, field).toString('utf8');

/** A map entry on the wire: key is field 1, value is field 2. */
function mapEntry(entry: Buffer): [string, string] {
  assert.deepEqual(tags(entry), [0x0a, 0x12]);
  return [str(entry, 1), str(entry, 2)];
}
function mapField(buf: Buffer, field: number): Record<string, string> {
  return Object.fromEntries(fields(buf).filter((f) => f.field === field).map((f) => mapEntry(f.bytes!)));
}

const mountCap = {
  mount: { fs_type: 'ext4', mount_flags: ['noatime'], volume_mount_group: '1000' },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};

// ------------------------------------------------------------ the reader itself

test('the wire reader reads a hand-made message', () => {
  // field 1 varint 150, field 2 string "hi", field 3 fixed64
  const buf = Buffer.from([0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69, 0x19, 1, 2, 3, 4, 5, 6, 7, 8]);
  const f = fields(buf);
  assert.deepEqual(
    f.map((x) => [x.field, x.wire]),
    [
      [1, 0],
      [2, 2],
      [3, 1],
    ],
  );
  assert.equal(f[0]!.varint, 150n);
  assert.equal(f[1]!.bytes!.toString(), 'hi');
  assert.throws(() => fields(Buffer.from([0x12, 0x05, 0x68])));
});

// ------------------------------------------------------------ Controller messages

test('CreateVolumeRequest: exact bytes for name and capacity_range', () => {
  const buf = encodeRequest('Controller', 'CreateVolume', { name: 'pvc-1', capacity_range: { required_bytes: 2 ** 30 } });
  // 0a 05 "pvc-1" | 12 06 (08 <2^30 as varint>)
  assert.deepEqual([...buf], [0x0a, 0x05, ...Buffer.from('pvc-1'), 0x12, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x04]);
});

test('CreateVolumeRequest: every field number', () => {
  const buf = encodeRequest('Controller', 'CreateVolume', {
    name: 'pvc-1',
    capacity_range: { required_bytes: 1, limit_bytes: 2 },
    volume_capabilities: [mountCap],
    parameters: { type: 'ssd' },
    secrets: { password: 'p' },
    volume_content_source: { snapshot: { snapshot_id: 'snap-1' } },
    accessibility_requirements: {
      requisite: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }],
      preferred: [{ segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } }],
    },
    mutable_parameters: { iops: '100' },
  });
  assert.deepEqual(uniqueTags(buf), [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x3a, 0x42]);
  assert.equal(str(buf, 1), 'pvc-1');
  const range = sub(buf, 2);
  assert.deepEqual(tags(range), [0x08, 0x10]);
  assert.equal(varint(range, 1), 1n);
  assert.equal(varint(range, 2), 2n);
  assert.deepEqual(mapField(buf, 4), { type: 'ssd' });
  assert.deepEqual(mapField(buf, 5), { password: 'p' });
  assert.deepEqual(mapField(buf, 8), { iops: '100' });
  // VolumeContentSource: snapshot = 1 { snapshot_id = 1 }
  const source = sub(buf, 6);
  assert.deepEqual(tags(source), [0x0a]);
  assert.equal(str(sub(source, 1), 1), 'snap-1');
  // TopologyRequirement: requisite = 1, preferred = 2; Topology: segments = 1
  const topo = sub(buf, 7);
  assert.deepEqual(tags(topo), [0x0a, 0x12]);
  assert.deepEqual(mapField(sub(topo, 1), 1), { 'topology.cinder.csi.openstack.org/zone': 'nova' });
});

test('VolumeContentSource: volume = 2 { volume_id = 1 }', () => {
  const buf = encodeRequest('Controller', 'CreateVolume', { name: 'c', volume_content_source: { volume: { volume_id: 'vol-1' } } });
  const source = sub(buf, 6);
  assert.deepEqual(tags(source), [0x12]);
  assert.equal(str(sub(source, 2), 1), 'vol-1');
  const back = decodeRequest('Controller', 'CreateVolume', buf);
  assert.equal((back.volume_content_source as Record<string, unknown>).type, 'volume');
});

test('VolumeCapability: access_type oneof (block = 1, mount = 2) and access_mode = 3', () => {
  const mount = sub(encodeRequest('Controller', 'ControllerPublishVolume', { volume_capability: mountCap }), 3);
  assert.deepEqual(tags(mount), [0x12, 0x1a]);
  const mv = sub(mount, 2);
  assert.deepEqual(tags(mv), [0x0a, 0x12, 0x1a]);
  assert.equal(str(mv, 1), 'ext4');
  assert.equal(str(mv, 2), 'noatime');
  assert.equal(str(mv, 3), '1000');
  assert.deepEqual([...sub(mount, 3)], [0x08, 0x01]);

  const blockReq = encodeRequest('Controller', 'ControllerPublishVolume', {
    volume_capability: { block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } },
  });
  const block = sub(blockReq, 3);
  // 0a 00 (empty BlockVolume) | 1a 02 08 05
  assert.deepEqual([...block], [0x0a, 0x00, 0x1a, 0x02, 0x08, 0x05]);

  // The oneof comes back named by its member, which the driver switches on.
  const back = decodeRequest('Controller', 'ControllerPublishVolume', blockReq);
  const cap = back.volume_capability as Record<string, unknown>;
  assert.equal(cap.access_type, 'block');
  assert.deepEqual(cap.access_mode, { mode: 'MULTI_NODE_MULTI_WRITER' });
  const backMount = decodeRequest('Controller', 'ControllerPublishVolume', encodeRequest('Controller', 'ControllerPublishVolume', { volume_capability: mountCap }));
  assert.equal((backMount.volume_capability as Record<string, unknown>).access_type, 'mount');
});

test('Volume (in CreateVolumeResponse.volume = 1): every field number', () => {
  const buf = encodeResponse('Controller', 'CreateVolume', {
    volume: {
      capacity_bytes: 5 * 2 ** 30,
      volume_id: 'vol-1',
      volume_context: { k: 'v' },
      content_source: { snapshot: { snapshot_id: 's' } },
      accessible_topology: [{ segments: { zone: 'nova' } }],
    },
  });
  assert.deepEqual(tags(buf), [0x0a]);
  const vol = sub(buf, 1);
  assert.deepEqual(tags(vol), [0x08, 0x12, 0x1a, 0x22, 0x2a]);
  assert.equal(varint(vol, 1), BigInt(5 * 2 ** 30));
  assert.equal(str(vol, 2), 'vol-1');
  assert.deepEqual(mapField(vol, 3), { k: 'v' });
  assert.deepEqual(mapField(sub(vol, 5), 1), { zone: 'nova' });
  // int64 comes back as a JS number with longs: Number.
  const back = decodeResponse('Controller', 'CreateVolume', buf);
  assert.equal((back.volume as Record<string, unknown>).capacity_bytes, 5 * 2 ** 30);
});

test('DeleteVolumeRequest and ControllerUnpublishVolumeRequest', () => {
  assert.deepEqual(tags(encodeRequest('Controller', 'DeleteVolume', { volume_id: 'v', secrets: { a: 'b' } })), [0x0a, 0x12]);
  assert.deepEqual(tags(encodeRequest('Controller', 'ControllerUnpublishVolume', { volume_id: 'v', node_id: 'n', secrets: { a: 'b' } })), [0x0a, 0x12, 0x1a]);
});

test('ControllerPublishVolumeRequest: every field number; response publish_context = 1', () => {
  const buf = encodeRequest('Controller', 'ControllerPublishVolume', {
    volume_id: 'vol-1',
    node_id: 'node-1',
    volume_capability: mountCap,
    readonly: true,
    secrets: { s: 'x' },
    volume_context: { c: 'y' },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12, 0x1a, 0x20, 0x2a, 0x32]);
  assert.equal(str(buf, 1), 'vol-1');
  assert.equal(str(buf, 2), 'node-1');
  assert.equal(varint(buf, 4), 1n);
  assert.deepEqual(mapField(buf, 5), { s: 'x' });
  assert.deepEqual(mapField(buf, 6), { c: 'y' });
  const resp = encodeResponse('Controller', 'ControllerPublishVolume', { publish_context: { device: '/dev/vdb' } });
  assert.deepEqual(mapField(resp, 1), { device: '/dev/vdb' });
});

test('ValidateVolumeCapabilities request and response.confirmed', () => {
  const req = encodeRequest('Controller', 'ValidateVolumeCapabilities', {
    volume_id: 'v',
    volume_context: { a: '1' },
    volume_capabilities: [mountCap],
    parameters: { b: '2' },
    secrets: { c: '3' },
    mutable_parameters: { d: '4' },
  });
  assert.deepEqual(uniqueTags(req), [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32]);
  const resp = encodeResponse('Controller', 'ValidateVolumeCapabilities', {
    confirmed: { volume_context: { a: '1' }, volume_capabilities: [mountCap], parameters: { b: '2' }, mutable_parameters: { d: '4' } },
    message: 'ok',
  });
  assert.deepEqual(tags(resp), [0x0a, 0x12]);
  assert.deepEqual(uniqueTags(sub(resp, 1)), [0x0a, 0x12, 0x1a, 0x22]);
});

test('ListVolumes: request max_entries = 1 (int32), starting_token = 2; response entries/status/next_token', () => {
  assert.deepEqual([...encodeRequest('Controller', 'ListVolumes', { max_entries: 3, starting_token: 't' })], [0x08, 0x03, 0x12, 0x01, 0x74]);
  const buf = encodeResponse('Controller', 'ListVolumes', {
    entries: [
      {
        volume: { volume_id: 'vol-1', capacity_bytes: 1 },
        status: { published_node_ids: ['n1', 'n2'], volume_condition: { abnormal: true, message: 'gone' } },
      },
    ],
    next_token: 'next',
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12]);
  assert.equal(str(buf, 2), 'next');
  const entry = sub(buf, 1);
  assert.deepEqual(tags(entry), [0x0a, 0x12]);
  assert.equal(str(sub(entry, 1), 2), 'vol-1');
  const status = sub(entry, 2);
  assert.deepEqual(tags(status), [0x0a, 0x0a, 0x12]);
  const condition = sub(status, 2);
  assert.deepEqual(tags(condition), [0x08, 0x12]);
  assert.equal(varint(condition, 1), 1n);
  assert.equal(str(condition, 2), 'gone');
});

test('GetCapacity: request fields and response wrappers (Int64Value)', () => {
  const req = encodeRequest('Controller', 'GetCapacity', { volume_capabilities: [mountCap], parameters: { a: 'b' }, accessible_topology: { segments: { z: 'nova' } } });
  assert.deepEqual(tags(req), [0x0a, 0x12, 0x1a]);
  const buf = encodeResponse('Controller', 'GetCapacity', {
    available_capacity: 100,
    maximum_volume_size: { value: 2 ** 40 },
    minimum_volume_size: { value: 2 ** 30 },
  });
  assert.deepEqual(tags(buf), [0x08, 0x12, 0x1a]);
  assert.equal(varint(buf, 1), 100n);
  // google.protobuf.Int64Value: value = 1 (varint)
  assert.equal(varint(sub(buf, 2), 1), BigInt(2 ** 40));
  assert.equal(varint(sub(buf, 3), 1), BigInt(2 ** 30));
  const back = decodeResponse('Controller', 'GetCapacity', buf);
  assert.deepEqual(back.maximum_volume_size, { value: 2 ** 40 });
  assert.deepEqual(back.minimum_volume_size, { value: 2 ** 30 });
  // Unset wrappers stay absent (null), not a zero: "no limit" differs from 0.
  const none = decodeResponse('Controller', 'GetCapacity', encodeResponse('Controller', 'GetCapacity', { available_capacity: 1 }));
  assert.equal(none.maximum_volume_size, null);
});

test('Snapshot (in CreateSnapshotResponse.snapshot = 1): creation_time is a Timestamp', () => {
  const req = encodeRequest('Controller', 'CreateSnapshot', { source_volume_id: 'v', name: 'n', secrets: { a: 'b' }, parameters: { c: 'd' } });
  assert.deepEqual(tags(req), [0x0a, 0x12, 0x1a, 0x22]);
  const buf = encodeResponse('Controller', 'CreateSnapshot', {
    snapshot: {
      size_bytes: 2 ** 30,
      snapshot_id: 'snap-1',
      source_volume_id: 'vol-1',
      creation_time: { seconds: 1_700_000_000, nanos: 5 },
      ready_to_use: true,
      group_snapshot_id: 'g',
    },
  });
  const snap = sub(buf, 1);
  assert.deepEqual(tags(snap), [0x08, 0x12, 0x1a, 0x22, 0x28, 0x32]);
  assert.equal(varint(snap, 1), BigInt(2 ** 30));
  assert.equal(str(snap, 2), 'snap-1');
  assert.equal(str(snap, 3), 'vol-1');
  const ts = sub(snap, 4);
  // google.protobuf.Timestamp: seconds = 1, nanos = 2
  assert.deepEqual(tags(ts), [0x08, 0x10]);
  assert.equal(varint(ts, 1), 1_700_000_000n);
  assert.equal(varint(ts, 2), 5n);
  assert.equal(varint(snap, 5), 1n);
  assert.equal(str(snap, 6), 'g');
  const back = decodeResponse('Controller', 'CreateSnapshot', buf);
  assert.deepEqual((back.snapshot as Record<string, unknown>).creation_time, { seconds: 1_700_000_000, nanos: 5 });
});

test('DeleteSnapshot, ListSnapshots and GetSnapshot', () => {
  assert.deepEqual(tags(encodeRequest('Controller', 'DeleteSnapshot', { snapshot_id: 's', secrets: { a: 'b' } })), [0x0a, 0x12]);
  assert.deepEqual(
    tags(encodeRequest('Controller', 'ListSnapshots', { max_entries: 1, starting_token: 't', source_volume_id: 'v', snapshot_id: 's', secrets: { a: 'b' } })),
    [0x08, 0x12, 0x1a, 0x22, 0x2a],
  );
  const list = encodeResponse('Controller', 'ListSnapshots', { entries: [{ snapshot: { snapshot_id: 's' } }], next_token: 'n' });
  assert.deepEqual(tags(list), [0x0a, 0x12]);
  assert.equal(str(sub(sub(list, 1), 1), 2), 's');
  assert.deepEqual(tags(encodeRequest('Controller', 'GetSnapshot', { snapshot_id: 's', secrets: { a: 'b' } })), [0x0a, 0x12]);
  assert.deepEqual(tags(encodeResponse('Controller', 'GetSnapshot', { snapshot: { snapshot_id: 's' } })), [0x0a]);
});

test('ControllerExpandVolume request and response', () => {
  const buf = encodeRequest('Controller', 'ControllerExpandVolume', {
    volume_id: 'vol-1',
    capacity_range: { required_bytes: 2 ** 31 },
    secrets: { a: 'b' },
    volume_capability: mountCap,
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12, 0x1a, 0x22]);
  assert.equal(varint(sub(buf, 2), 1), BigInt(2 ** 31));
  const resp = encodeResponse('Controller', 'ControllerExpandVolume', { capacity_bytes: 2 ** 31, node_expansion_required: true });
  assert.deepEqual(tags(resp), [0x08, 0x10]);
  assert.equal(varint(resp, 2), 1n);
});

test('ControllerGetVolume and ControllerModifyVolume', () => {
  assert.deepEqual(tags(encodeRequest('Controller', 'ControllerGetVolume', { volume_id: 'v' })), [0x0a]);
  const resp = encodeResponse('Controller', 'ControllerGetVolume', { volume: { volume_id: 'v' }, status: { published_node_ids: ['n'] } });
  assert.deepEqual(tags(resp), [0x0a, 0x12]);
  assert.deepEqual(tags(encodeRequest('Controller', 'ControllerModifyVolume', { volume_id: 'v', secrets: { a: 'b' }, mutable_parameters: { c: 'd' } })), [0x0a, 0x12, 0x1a]);
});

// ------------------------------------------------------------ Node messages

test('NodeStageVolumeRequest: every field number', () => {
  const buf = encodeRequest('Node', 'NodeStageVolume', {
    volume_id: 'vol-1',
    publish_context: { device: '/dev/vdb' },
    staging_target_path: '/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount',
    volume_capability: mountCap,
    secrets: { a: 'b' },
    volume_context: { c: 'd' },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32]);
  assert.deepEqual(mapField(buf, 2), { device: '/dev/vdb' });
  assert.equal(str(buf, 3), '/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount');
  assert.deepEqual(tags(encodeRequest('Node', 'NodeUnstageVolume', { volume_id: 'v', staging_target_path: '/s' })), [0x0a, 0x12]);
});

test('NodePublishVolumeRequest: every field number (readonly = 6 is a varint)', () => {
  const buf = encodeRequest('Node', 'NodePublishVolume', {
    volume_id: 'vol-1',
    publish_context: { device: '/dev/vdb' },
    staging_target_path: '/stage',
    target_path: '/target',
    volume_capability: mountCap,
    readonly: true,
    secrets: { a: 'b' },
    volume_context: { c: 'd' },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x30, 0x3a, 0x42]);
  assert.equal(str(buf, 3), '/stage');
  assert.equal(str(buf, 4), '/target');
  assert.equal(varint(buf, 6), 1n);
  assert.deepEqual(mapField(buf, 7), { a: 'b' });
  assert.deepEqual(mapField(buf, 8), { c: 'd' });
  assert.deepEqual(tags(encodeRequest('Node', 'NodeUnpublishVolume', { volume_id: 'v', target_path: '/t' })), [0x0a, 0x12]);
});

test('NodeGetVolumeStats request, response and VolumeUsage', () => {
  assert.deepEqual(tags(encodeRequest('Node', 'NodeGetVolumeStats', { volume_id: 'v', volume_path: '/p', staging_target_path: '/s' })), [0x0a, 0x12, 0x1a]);
  const buf = encodeResponse('Node', 'NodeGetVolumeStats', {
    usage: [{ available: 1, total: 2, used: 3, unit: 'INODES' }],
    volume_condition: { abnormal: false, message: 'fine' },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12]);
  assert.deepEqual([...sub(buf, 1)], [0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x20, 0x02]);
});

test('NodeGetInfoResponse: node_id = 1, max_volumes_per_node = 2, accessible_topology = 3', () => {
  const buf = encodeResponse('Node', 'NodeGetInfo', {
    node_id: 'i-123',
    max_volumes_per_node: 25,
    accessible_topology: { segments: { 'topology.cinder.csi.openstack.org/zone': 'nova' } },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x10, 0x1a]);
  assert.equal(str(buf, 1), 'i-123');
  assert.equal(varint(buf, 2), 25n);
  assert.deepEqual(mapField(sub(buf, 3), 1), { 'topology.cinder.csi.openstack.org/zone': 'nova' });
});

test('NodeExpandVolume request and response', () => {
  const buf = encodeRequest('Node', 'NodeExpandVolume', {
    volume_id: 'vol-1',
    volume_path: '/target',
    capacity_range: { required_bytes: 2 ** 31 },
    staging_target_path: '/stage',
    volume_capability: mountCap,
    secrets: { a: 'b' },
  });
  assert.deepEqual(tags(buf), [0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32]);
  assert.equal(str(buf, 2), '/target');
  assert.equal(str(buf, 4), '/stage');
  assert.deepEqual([...encodeResponse('Node', 'NodeExpandVolume', { capacity_bytes: 1 })], [0x08, 0x01]);
});

// ------------------------------------------------------------ Identity and capabilities

test('Identity messages', () => {
  const info = encodeResponse('Identity', 'GetPluginInfo', { name: 'cinder.csi.openstack.org', vendor_version: '0.1.0', manifest: { a: 'b' } });
  assert.deepEqual(tags(info), [0x0a, 0x12, 0x1a]);
  // ProbeResponse.ready = 1 is a BoolValue wrapper.
  assert.deepEqual([...encodeResponse('Identity', 'Probe', { ready: { value: true } })], [0x0a, 0x02, 0x08, 0x01]);
  // PluginCapability oneof: service = 1, volume_expansion = 2.
  const caps = encodeResponse('Identity', 'GetPluginCapabilities', {
    capabilities: [{ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } }, { volume_expansion: { type: 'ONLINE' } }],
  });
  assert.deepEqual([...caps], [0x0a, 0x04, 0x0a, 0x02, 0x08, 0x02, 0x0a, 0x04, 0x12, 0x02, 0x08, 0x01]);
});

test('capability responses encode the enum numbers of the spec', () => {
  const ctrl = encodeResponse('Controller', 'ControllerGetCapabilities', { capabilities: [{ rpc: { type: 'GET_SNAPSHOT' } }] });
  assert.deepEqual([...ctrl], [0x0a, 0x04, 0x0a, 0x02, 0x08, 0x0f]);
  const node = encodeResponse('Node', 'NodeGetCapabilities', { capabilities: [{ rpc: { type: 'VOLUME_MOUNT_GROUP' } }] });
  assert.deepEqual([...node], [0x0a, 0x04, 0x0a, 0x02, 0x08, 0x06]);
  const group = encodeResponse('GroupController', 'GroupControllerGetCapabilities', {
    capabilities: [{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' } }],
  });
  assert.deepEqual([...group], [0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01]);
});

test('enum values match the spec exactly', () => {
  // protobufjs builds `values` without a prototype; copy it into a plain object.
  const values = (name: string): Record<string, number> => ({ ...root.lookupEnum(name).values });
  assert.deepEqual(values('csi.v1.VolumeCapability.AccessMode.Mode'), {
    UNKNOWN: 0,
    SINGLE_NODE_WRITER: 1,
    SINGLE_NODE_READER_ONLY: 2,
    MULTI_NODE_READER_ONLY: 3,
    MULTI_NODE_SINGLE_WRITER: 4,
    MULTI_NODE_MULTI_WRITER: 5,
    SINGLE_NODE_SINGLE_WRITER: 6,
    SINGLE_NODE_MULTI_WRITER: 7,
  });
  assert.deepEqual(values('csi.v1.ControllerServiceCapability.RPC.Type'), {
    UNKNOWN: 0,
    CREATE_DELETE_VOLUME: 1,
    PUBLISH_UNPUBLISH_VOLUME: 2,
    LIST_VOLUMES: 3,
    GET_CAPACITY: 4,
    CREATE_DELETE_SNAPSHOT: 5,
    LIST_SNAPSHOTS: 6,
    CLONE_VOLUME: 7,
    PUBLISH_READONLY: 8,
    EXPAND_VOLUME: 9,
    LIST_VOLUMES_PUBLISHED_NODES: 10,
    VOLUME_CONDITION: 11,
    GET_VOLUME: 12,
    SINGLE_NODE_MULTI_WRITER: 13,
    MODIFY_VOLUME: 14,
    GET_SNAPSHOT: 15,
  });
  assert.deepEqual(values('csi.v1.NodeServiceCapability.RPC.Type'), {
    UNKNOWN: 0,
    STAGE_UNSTAGE_VOLUME: 1,
    GET_VOLUME_STATS: 2,
    EXPAND_VOLUME: 3,
    VOLUME_CONDITION: 4,
    SINGLE_NODE_MULTI_WRITER: 5,
    VOLUME_MOUNT_GROUP: 6,
  });
  assert.deepEqual(values('csi.v1.PluginCapability.Service.Type'), {
    UNKNOWN: 0,
    CONTROLLER_SERVICE: 1,
    VOLUME_ACCESSIBILITY_CONSTRAINTS: 2,
    GROUP_CONTROLLER_SERVICE: 3,
    SNAPSHOT_METADATA_SERVICE: 4,
  });
  assert.deepEqual(values('csi.v1.PluginCapability.VolumeExpansion.Type'), { UNKNOWN: 0, ONLINE: 1, OFFLINE: 2 });
  assert.deepEqual(values('csi.v1.VolumeUsage.Unit'), { UNKNOWN: 0, BYTES: 1, INODES: 2 });
  assert.deepEqual(values('csi.v1.GroupControllerServiceCapability.RPC.Type'), { UNKNOWN: 0, CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT: 1 });
});

test('numeric scalar types match the spec (int64 sizes, int32 page sizes)', () => {
  const type = (t: string, f: string): string => {
    const field = root.lookupType(`csi.v1.${t}`).fields[f];
    assert.ok(field, `${t}.${f} exists`);
    return field.type;
  };
  const int64 = [
    ['CapacityRange', 'required_bytes'],
    ['CapacityRange', 'limit_bytes'],
    ['Volume', 'capacity_bytes'],
    ['Snapshot', 'size_bytes'],
    ['GetCapacityResponse', 'available_capacity'],
    ['ControllerExpandVolumeResponse', 'capacity_bytes'],
    ['NodeExpandVolumeResponse', 'capacity_bytes'],
    ['NodeGetInfoResponse', 'max_volumes_per_node'],
    ['VolumeUsage', 'available'],
    ['VolumeUsage', 'total'],
    ['VolumeUsage', 'used'],
  ];
  for (const [t, f] of int64) assert.equal(type(t!, f!), 'int64', `${t}.${f}`);
  for (const t of ['ListVolumesRequest', 'ListSnapshotsRequest']) assert.equal(type(t, 'max_entries'), 'int32');
  assert.equal(type('Snapshot', 'creation_time'), '.google.protobuf.Timestamp');
  assert.equal(type('VolumeGroupSnapshot', 'creation_time'), '.google.protobuf.Timestamp');
  assert.equal(type('GetCapacityResponse', 'maximum_volume_size'), '.google.protobuf.Int64Value');
  assert.equal(type('ProbeResponse', 'ready'), '.google.protobuf.BoolValue');
});

test('oneofs are where the spec puts them', () => {
  const oneof = (type: string, name: string): string[] => {
    const o = root.lookupType(type).oneofs?.[name];
    assert.ok(o, `${type} has oneof ${name}`);
    return o.fieldsArray.map((f) => `${f.name}=${f.id}`);
  };
  assert.deepEqual(oneof('csi.v1.VolumeCapability', 'access_type'), ['block=1', 'mount=2']);
  assert.deepEqual(oneof('csi.v1.VolumeContentSource', 'type'), ['snapshot=1', 'volume=2']);
  assert.deepEqual(oneof('csi.v1.PluginCapability', 'type'), ['service=1', 'volume_expansion=2']);
  assert.deepEqual(oneof('csi.v1.ControllerServiceCapability', 'type'), ['rpc=1']);
  assert.deepEqual(oneof('csi.v1.NodeServiceCapability', 'type'), ['rpc=1']);
  assert.deepEqual(oneof('csi.v1.GroupControllerServiceCapability', 'type'), ['rpc=1']);
});

// ------------------------------------------------------------ services

const EXPECTED_SERVICES: Record<string, string[]> = {
  Identity: ['GetPluginInfo', 'GetPluginCapabilities', 'Probe'],
  Controller: [
    'CreateVolume',
    'DeleteVolume',
    'ControllerPublishVolume',
    'ControllerUnpublishVolume',
    'ValidateVolumeCapabilities',
    'ListVolumes',
    'GetCapacity',
    'ControllerGetCapabilities',
    'CreateSnapshot',
    'DeleteSnapshot',
    'ListSnapshots',
    'GetSnapshot',
    'ControllerExpandVolume',
    'ControllerGetVolume',
    'ControllerModifyVolume',
  ],
  GroupController: ['GroupControllerGetCapabilities', 'CreateVolumeGroupSnapshot', 'DeleteVolumeGroupSnapshot', 'GetVolumeGroupSnapshot'],
  Node: [
    'NodeStageVolume',
    'NodeUnstageVolume',
    'NodePublishVolume',
    'NodeUnpublishVolume',
    'NodeGetVolumeStats',
    'NodeExpandVolume',
    'NodeGetCapabilities',
    'NodeGetInfo',
  ],
};

test('every service lists exactly the expected RPCs, unary, with Request/Response types', () => {
  const services = Object.keys(definition)
    .filter((k) => {
      const v = definition[k] as Record<string, unknown>;
      return !('format' in v) && !('type' in v && 'fileDescriptorProtos' in v);
    })
    .filter((k) => k.startsWith('csi.v1.'))
    .map((k) => k.slice('csi.v1.'.length))
    .sort();
  assert.deepEqual(services, Object.keys(EXPECTED_SERVICES).sort());
  for (const [service, rpcs] of Object.entries(EXPECTED_SERVICES)) {
    const svc = definition[`csi.v1.${service}`] as protoLoader.ServiceDefinition;
    assert.deepEqual(Object.keys(svc), rpcs, `RPCs of ${service}`);
    for (const rpc of rpcs) {
      const m = svc[rpc]!;
      assert.equal(m.path, `/csi.v1.${service}/${rpc}`);
      assert.equal(m.requestStream, false);
      assert.equal(m.responseStream, false);
      assert.equal((m.requestType.type as { name?: string }).name, `${rpc}Request`);
      assert.equal((m.responseType.type as { name?: string }).name, `${rpc}Response`);
    }
  }
});

test('alpha RPCs are marked as the spec marks them', () => {
  const alpha = (service: string): string[] =>
    Object.values(root.lookupService(`csi.v1.${service}`).methods)
      .filter((m) => m.options?.['(alpha_method)'] === true)
      .map((m) => m.name);
  assert.deepEqual(alpha('Controller').sort(), ['ControllerGetVolume', 'GetSnapshot']);
  assert.deepEqual(alpha('Node'), []);
  assert.deepEqual(alpha('Identity'), []);
  assert.deepEqual(alpha('GroupController'), []);
});

// ------------------------------------------------------------ secrets

/** Every message that carries secrets in the spec. */
const SECRET_FIELDS = [
  'ControllerExpandVolumeRequest.secrets',
  'ControllerModifyVolumeRequest.secrets',
  'ControllerPublishVolumeRequest.secrets',
  'ControllerUnpublishVolumeRequest.secrets',
  'CreateSnapshotRequest.secrets',
  'CreateVolumeGroupSnapshotRequest.secrets',
  'CreateVolumeRequest.secrets',
  'DeleteSnapshotRequest.secrets',
  'DeleteVolumeGroupSnapshotRequest.secrets',
  'DeleteVolumeRequest.secrets',
  'GetSnapshotRequest.secrets',
  'GetVolumeGroupSnapshotRequest.secrets',
  'ListSnapshotsRequest.secrets',
  'NodeExpandVolumeRequest.secrets',
  'NodePublishVolumeRequest.secrets',
  'NodeStageVolumeRequest.secrets',
  'ValidateVolumeCapabilitiesRequest.secrets',
];

function allTypes(ns: protobuf.NamespaceBase, prefix = ''): Array<[string, protobuf.Type]> {
  const out: Array<[string, protobuf.Type]> = [];
  for (const nested of ns.nestedArray) {
    const name = prefix ? `${prefix}.${nested.name}` : nested.name;
    if (nested instanceof protobuf.Type) out.push([name, nested]);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) out.push(...allTypes(nested, name));
  }
  return out;
}

test('csi_secret marks every secrets field, and only those (the logger redacts by the name "secrets")', () => {
  const csi = root.lookup('csi.v1') as protobuf.Namespace;
  const marked: string[] = [];
  const named: string[] = [];
  for (const [typeName, type] of allTypes(csi)) {
    for (const field of type.fieldsArray) {
      if (field.options?.['(csi_secret)'] === true) marked.push(`${typeName}.${field.name}`);
      if (field.name === 'secrets') named.push(`${typeName}.${field.name}`);
    }
  }
  assert.deepEqual(marked.sort(), SECRET_FIELDS);
  assert.deepEqual(named.sort(), SECRET_FIELDS);
  // Every secrets field is a map<string, string>.
  for (const f of SECRET_FIELDS) {
    const [typeName, fieldName] = f.split('.') as [string, string];
    const field = root.lookupType(`csi.v1.${typeName}`).fields[fieldName]!;
    assert.ok(field instanceof protobuf.MapField, `${f} is a map`);
    assert.equal(field.keyType, 'string');
    assert.equal(field.type, 'string');
  }
  // The extension itself is field 1059 of FieldOptions, as in the spec.
  const ext = root.lookup('csi.v1.csi_secret') as protobuf.Field;
  assert.equal(ext.id, 1059);
  assert.equal(ext.extend, 'google.protobuf.FieldOptions');
});

test('the package is csi.v1', () => {
  assert.ok(root.lookup('csi.v1.CreateVolumeRequest'));
  assert.equal(root.lookup('csi.v0'), null);
  assert.ok(definition['csi.v1.Controller']);
});
