// Loads proto/csi.proto at run time. The TypeScript types in src/gen/ are
// generated from the same file (`npm run gen`), so there is one source of truth.
//
// The service definitions are built here from protobufjs reflection, the way
// @grpc/proto-loader builds them (same parse options, same
// fromObject/encode and decode/toObject calls with the same conversion
// options), minus what the driver never uses: proto-loader also encodes a
// descriptor of every message and file for gRPC server reflection, which
// costs ~6 MiB of RSS in every driver process. test/csi/proto-codec.test.ts
// checks byte for byte that both encode and decode every CSI message alike.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import type { ProtoGrpcType } from '../gen/csi';

/** Loader options; the generated types assume exactly these. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** proto/csi.proto, found from both src/csi (tsc's rootDir) and dist/src/csi. */
export const PROTO_PATH = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..', 'proto', 'csi.proto');

/** The CSI services (the only part of the package the driver and its clients use). */
export const CSI_SERVICES = ['Identity', 'Controller', 'Node', 'GroupController'] as const;

type V1 = ProtoGrpcType['csi']['v1'];
export type CsiPackage = { csi: { v1: Pick<V1, (typeof CSI_SERVICES)[number]> } };

/** csi.proto parsed and resolved, as proto-loader parses it (keepCase; google/protobuf/* from protobufjs). */
export function loadCsiRoot(): protobuf.Root {
  const root = new protobuf.Root();
  const protobufDir = path.dirname(require.resolve('protobufjs/package.json'));
  root.resolvePath = (origin: string, target: string): string =>
    target.startsWith('google/protobuf/') ? path.join(protobufDir, target) : protobuf.util.path.resolve(origin, target);
  root.loadSync(PROTO_PATH, { keepCase: LOADER_OPTIONS.keepCase });
  root.resolveAll();
  return root;
}

/** One service's definition for grpc-js: what proto-loader gives, without the reflection descriptors. */
export function serviceDefinition(service: protobuf.Service, fullName: string): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    const req = method.resolvedRequestType!;
    const res = method.resolvedResponseType!;
    def[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      // proto-loader's camelCase of an RPC name (CSI's are all PascalCase words).
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return def;
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    return type.encode(type.fromObject(value)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), LOADER_OPTIONS as protobuf.IConversionOptions);
}

export type CsiServiceName = (typeof CSI_SERVICES)[number];

/** Every message type the services' RPCs carry, nested ones included (enums are not types). */
export function messageTypes(root: protobuf.Root, services: readonly CsiServiceName[]): protobuf.Type[] {
  const found = new Set<protobuf.Type>();
  const visit = (type: protobuf.Type | null | undefined): void => {
    if (!type || found.has(type)) return;
    found.add(type);
    for (const field of type.fieldsArray) {
      if (field.resolve().resolvedType instanceof protobuf.Type) visit(field.resolvedType as protobuf.Type);
    }
  };
  for (const name of services) {
    for (const method of root.lookupService(`csi.v1.${name}`).methodsArray) {
      visit(method.resolvedRequestType);
      visit(method.resolvedResponseType);
    }
  }
  return [...found];
}

/** Whether protobufjs has generated this type's codec (it does so on first use, replacing the prototype's stubs). */
export function codecReady(type: protobuf.Type): boolean {
  return Object.hasOwn(type, 'encode');
}

let cached: CsiPackage | undefined;
let cachedRoot: protobuf.Root | undefined;

/**
 * Generate, in the background, the codecs of every message the given
 * services carry. protobufjs generates a type's encode/decode/fromObject/
 * toObject on its first use, which in the `--jitless` node plugin made the
 * first call of each kind several milliseconds slower (the first
 * NodeStageVolume + NodePublishVolume ~12 ms). One type per turn of the event
 * loop, so a call that arrives meanwhile waits for one type at most.
 */
export function warmCodecsInBackground(services: readonly CsiServiceName[], onError: (err: unknown) => void): void {
  loadCsi();
  const pending = messageTypes(cachedRoot!, services);
  const next = (): void => {
    const type = pending.pop();
    if (!type) return;
    try {
      if (!codecReady(type)) type.setup();
    } catch (err) {
      onError(err);
      return;
    }
    setImmediate(next);
  };
  setImmediate(next);
}

/** The message types of loadCsi()'s package that `services` carry. */
export function csiMessageTypes(services: readonly CsiServiceName[]): protobuf.Type[] {
  loadCsi();
  return messageTypes(cachedRoot!, services);
}

export function loadCsi(): CsiPackage {
  if (!cached) {
    const root = (cachedRoot = loadCsiRoot());
    const definition: grpc.GrpcObject | Record<string, grpc.ServiceDefinition> = {};
    for (const name of CSI_SERVICES) {
      const fullName = `csi.v1.${name}`;
      (definition as Record<string, grpc.ServiceDefinition>)[fullName] = serviceDefinition(root.lookupService(fullName), fullName);
    }
    cached = grpc.loadPackageDefinition(definition as protoLoader.PackageDefinition) as unknown as CsiPackage;
  }
  return cached;
}
