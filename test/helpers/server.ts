// A real CsiServer on a unix socket in a fresh temp directory, serving only
// the services a test hands it (through wrapService, the way the driver
// does), with every log line captured, and real gRPC clients.
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { createLogger, type Logger, type LogLevel } from '../../src/log';
import { CsiServer } from '../../src/csi/server';
import { wrapService } from '../../src/csi/pipeline';
import type { Handler } from '../../src/csi/context';
import { connect, type CsiClients } from './grpc';

/** A logger whose lines are kept raw (to search for leaks) and parsed (to inspect). */
export interface CapturedLog {
  logger: Logger;
  /** Everything written, byte for byte. */
  text(): string;
  lines(): Array<Record<string, unknown>>;
}

export function captureLog(level: LogLevel = 'info'): CapturedLog {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface ServiceSpec {
  definition: grpc.ServiceDefinition;
  handlers: Record<string, Handler<any, any>>;
  name: string;
}

export interface TestServer {
  dir: string;
  socketPath: string;
  address: string;
  server: CsiServer;
  clients: CsiClients;
  log: CapturedLog;
  /** Close the clients, shut the server down (grace 2 s) and remove the temp dir. */
  stop(): Promise<void>;
}

export async function startTestServer(services: ServiceSpec[], opts: { logLevel?: LogLevel } = {}): Promise<TestServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-core-'));
  const log = captureLog(opts.logLevel ?? 'info');
  const server = new CsiServer(log.logger);
  for (const s of services) {
    server.addService(s.definition, wrapService(s.definition, s.handlers, { logger: log.logger, service: s.name, calls: server.calls }));
  }
  const socketPath = path.join(dir, 'csi.sock');
  try {
    await server.listen({ kind: 'unix', path: socketPath });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const address = `unix://${socketPath}`;
  const clients = connect(address);
  return {
    dir,
    socketPath,
    address,
    server,
    clients,
    log,
    async stop() {
      clients.close();
      await server.shutdown(2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolve once `predicate` holds, polling every few ms; fail after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise with its resolve function outside, to hold a handler until the test lets it go. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}
