// Real @grpc/grpc-js clients for the CSI services over a real socket, and a
// promise-returning `call` with a deadline.
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from '../../src/csi/proto';

export interface CsiClients {
  identity: grpc.Client;
  controller: grpc.Client;
  node: grpc.Client;
  close(): void;
}

export function connect(address: string): CsiClients {
  const csi = loadCsi().csi.v1;
  const creds = grpc.credentials.createInsecure();
  const identity = new csi.Identity(address, creds);
  const controller = new csi.Controller(address, creds);
  const node = new csi.Node(address, creds);
  return {
    identity,
    controller,
    node,
    close() {
      identity.close();
      controller.close();
      node.close();
    },
  };
}

export interface CallOptions {
  /** Deadline from now, ms (default 30 s). */
  deadlineMs?: number;
}

/** Call a unary RPC; rejects with the grpc ServiceError (its .code and .details). */
export function call<Res = any>(client: grpc.Client, method: string, request: unknown, opts: CallOptions = {}): Promise<Res> {
  const fn = (client as unknown as Record<string, Function>)[method];
  if (typeof fn !== 'function') throw new Error(`no RPC ${method} on this client`);
  const deadline = new Date(Date.now() + (opts.deadlineMs ?? 30_000));
  return new Promise((resolve, reject) => {
    fn.call(client, request, { deadline }, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

/** Assert helper: the call fails with this gRPC code; returns the error. */
export async function expectCode(promise: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (e) {
    const err = e as grpc.ServiceError;
    if (err.code !== code) {
      throw new Error(`expected ${grpc.status[code]}, got ${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}`);
    }
    return err;
  }
  throw new Error(`expected ${grpc.status[code]}, but the call succeeded`);
}
