// Loads proto/csi.proto at run time. The TypeScript types in src/gen/ are
// generated from the same file (`npm run gen`), so there is one source of truth.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
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

let cached: ProtoGrpcType | undefined;

export function loadCsi(): ProtoGrpcType {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return cached;
}
