// The driver builds its gRPC service definitions from protobufjs directly
// (src/csi/proto.ts) instead of through @grpc/proto-loader, which costs ~6 MiB
// per process for reflection descriptors nobody uses. kubelet and the
// sidecars only see bytes: every RPC of every CSI service must encode and
// decode exactly as proto-loader's definitions (which test/csi/proto.test.ts
// pins against the spec) do, for messages that fill every field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { CSI_SERVICES, LOADER_OPTIONS, PROTO_PATH, codecReady, csiMessageTypes, loadCsi, loadCsiRoot, messageTypes } from '../../src/csi/proto';

const reference = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const ours = loadCsi().csi.v1;
// As the driver does after start-up (warmCodecsInBackground): every codec is generated
// ahead of its first use, so the comparisons below run on the codecs a running driver has.
for (const type of csiMessageTypes(CSI_SERVICES)) type.setup();
const root = loadCsiRoot();

type Method = protoLoader.MethodDefinition<object, object>;

function scalar(type: string, id: number, variant: number): unknown {
  switch (type) {
    case 'string':
      return `s${id}-${variant}`;
    case 'bool':
      return variant % 2 === 0;
    case 'bytes':
      return Buffer.from([id, variant, 0xff]);
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return 2 ** 40 + id + variant;
    case 'double':
    case 'float':
      return 1.5 + variant;
    default:
      return id * 7 + variant;
  }
}

/** A message with every field set (one member per oneof, chosen by `variant`), to a bounded depth. */
function sample(type: protobuf.Type, variant: number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const skip = new Set<string>();
  for (const oneof of type.oneofsArray) {
    const chosen = oneof.fieldsArray[variant % oneof.fieldsArray.length];
    for (const f of oneof.fieldsArray) if (f !== chosen) skip.add(f.name);
  }
  for (const field of type.fieldsArray) {
    if (skip.has(field.name)) continue;
    field.resolve();
    const value = (v: number): unknown => {
      if (field.resolvedType instanceof protobuf.Enum) {
        const names = Object.keys(field.resolvedType.values);
        return names[(1 + v) % names.length];
      }
      if (field.resolvedType instanceof protobuf.Type) return depth >= 4 ? {} : sample(field.resolvedType, v, depth + 1);
      return scalar(field.type, field.id, v);
    };
    if (field instanceof protobuf.MapField) out[field.name] = { a: value(variant), b: value(variant + 1) };
    else if (field.repeated) out[field.name] = [value(variant), value(variant + 1)];
    else out[field.name] = value(variant);
  }
  return out;
}

test('every CSI service has the same RPCs, paths and stream flags as proto-loader gives', () => {
  for (const service of CSI_SERVICES) {
    const ref = reference[`csi.v1.${service}`] as protoLoader.ServiceDefinition;
    const mine = ours[service].service;
    assert.deepEqual(Object.keys(mine), Object.keys(ref), service);
    for (const [rpc, m] of Object.entries(ref)) {
      const o = mine[rpc as keyof typeof mine] as unknown as Method;
      assert.equal(o.path, m.path);
      assert.equal(o.requestStream, m.requestStream);
      assert.equal(o.responseStream, m.responseStream);
      assert.equal(o.originalName, m.originalName);
    }
  }
});

test('every request and response encodes to the same bytes and decodes to the same object as with proto-loader', () => {
  let compared = 0;
  for (const service of CSI_SERVICES) {
    const ref = reference[`csi.v1.${service}`] as protoLoader.ServiceDefinition;
    const svc = root.lookupService(`csi.v1.${service}`);
    for (const method of svc.methodsArray) {
      const r = ref[method.name] as Method;
      const o = ours[service].service[method.name as never] as unknown as Method;
      const sides = [
        ['request', method.resolvedRequestType!, r.requestSerialize, o.requestSerialize, r.requestDeserialize, o.requestDeserialize],
        ['response', method.resolvedResponseType!, r.responseSerialize, o.responseSerialize, r.responseDeserialize, o.responseDeserialize],
      ] as const;
      for (const [side, type, refEncode, encode, refDecode, decode] of sides) {
        const where = `${service}/${method.name} ${side}`;
        // Empty bytes decode to the same defaults.
        assert.deepEqual(decode(Buffer.alloc(0)), refDecode(Buffer.alloc(0)), `${where}: defaults`);
        for (let variant = 0; variant < 3; variant++) {
          const msg = sample(type, variant);
          const bytes = encode(msg);
          assert.ok(bytes.length > 0 || type.fieldsArray.length === 0, `${where}: something was encoded`);
          assert.deepEqual([...bytes], [...refEncode(msg)], `${where} #${variant}: bytes`);
          assert.deepEqual(decode(bytes), refDecode(bytes), `${where} #${variant}: decoded`);
          compared++;
        }
      }
    }
  }
  assert.ok(compared >= 3 * 2 * 30, `compared ${compared} messages`);
});

test('serializing an array is refused as proto-loader refuses it', () => {
  const m = ours.Controller.service.CreateVolume as unknown as Method;
  assert.throws(() => m.requestSerialize([] as unknown as object), /expected object with CreateVolumeRequest structure/);
});

test('the messages a service carries include the nested ones, and no other service\'s', () => {
  const fresh = loadCsiRoot();
  const names = new Set(messageTypes(fresh, ['Identity', 'Node']).map((t) => t.fullName.slice(1)));
  for (const name of ['csi.v1.NodeStageVolumeRequest', 'csi.v1.VolumeCapability', 'csi.v1.VolumeCapability.MountVolume', 'csi.v1.VolumeCapability.AccessMode', 'csi.v1.NodeGetVolumeStatsResponse', 'csi.v1.VolumeUsage', 'csi.v1.ProbeResponse', 'google.protobuf.BoolValue']) {
    assert.ok(names.has(name), `${name} is missing`);
  }
  assert.equal(names.has('csi.v1.CreateVolumeRequest'), false, 'a Controller-only message is left to a controller process');
  assert.ok(messageTypes(fresh, ['Identity', 'Node']).every((t) => !codecReady(t)), 'a fresh root has generated nothing yet');
});
