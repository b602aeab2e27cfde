// The one request pipeline every RPC goes through: request ID, deadline as an
// AbortSignal, one info log line per call (method, IDs, duration, code), the
// request at debug with secrets scrubbed, and the one place where any error
// becomes a gRPC status.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log';
import { scrub } from '../log';
import { CsiError, unimplemented } from './errors';
import type { CallContext, Handler } from './context';
import { OpenStackError, type OpenStackErrorKind } from '../openstack/errors';
import { CommandError, CommandNotFoundError } from '../util/exec';

/**
 * Calls the sidecars repeat every few seconds (the livenessprobe's Probe,
 * kubelet's stats): their one line goes to debug, or the log is all noise.
 */
const ROUTINE_METHODS = new Set(['Probe', 'NodeGetVolumeStats', 'GetPluginInfo', 'GetPluginCapabilities', 'NodeGetCapabilities', 'ControllerGetCapabilities']);

/** Request fields worth a place on the info line, by the key they get there ('name' is pino's logger name). */
const ID_FIELDS = [
  ['volume_id', 'volume_id'],
  ['node_id', 'node_id'],
  ['snapshot_id', 'snapshot_id'],
  ['source_volume_id', 'source_volume_id'],
  ['name', 'request_name'],
  ['target_path', 'target_path'],
  ['staging_target_path', 'staging_target_path'],
] as const;

const OPENSTACK_CODES: Record<OpenStackErrorKind, grpc.status> = {
  not_found: grpc.status.NOT_FOUND,
  conflict: grpc.status.FAILED_PRECONDITION,
  bad_request: grpc.status.FAILED_PRECONDITION,
  over_quota: grpc.status.RESOURCE_EXHAUSTED,
  forbidden: grpc.status.PERMISSION_DENIED,
  unauthorized: grpc.status.UNAUTHENTICATED,
  unavailable: grpc.status.UNAVAILABLE,
  rate_limited: grpc.status.UNAVAILABLE,
  timeout: grpc.status.DEADLINE_EXCEEDED,
  network: grpc.status.UNAVAILABLE,
  // The cloud was reached and its certificate refused (or it speaks no TLS): final, like config.
  tls: grpc.status.FAILED_PRECONDITION,
  state: grpc.status.INTERNAL,
  config: grpc.status.FAILED_PRECONDITION,
};

/** What the operator, or the CO, does about an OpenStack failure that no operation translated into its own words. */
const OPENSTACK_ADVICE: Partial<Record<OpenStackErrorKind, string>> = {
  unavailable: 'the cloud is unavailable or overloaded; the CO retries',
  rate_limited: 'the cloud limits the request rate; the CO retries',
  network: "the cloud cannot be reached; check the driver's network path to its endpoints; the CO retries",
  timeout: 'the cloud did not answer in time; the CO retries',
  unauthorized: "the cloud refused the driver's credentials; check them in the driver's config (the cinder-csi-config Secret)",
  forbidden: "the cloud's policy does not let the driver's user do this; give the user the role it needs",
};

export interface StatusAnswer {
  code: grpc.status;
  message: string;
  /** Unexpected errors are logged with their stack. */
  unexpected: boolean;
}

/** The one mapping from any thrown value to a gRPC status. */
export function toStatus(err: unknown, ctx: { requestId: string; signal?: AbortSignal }): StatusAnswer {
  if (err instanceof CsiError) return { code: err.code, message: err.message, unexpected: false };
  if (err instanceof OpenStackError) {
    const where = err.requestId ? ` (OpenStack request ${err.requestId})` : '';
    const advice = OPENSTACK_ADVICE[err.kind];
    return { code: OPENSTACK_CODES[err.kind], message: `${err.message}${where}${advice ? `; ${advice}` : ''}`, unexpected: false };
  }
  if (ctx.signal?.aborted) {
    return { code: grpc.status.DEADLINE_EXCEEDED, message: 'the caller deadline passed before the operation finished; retry', unexpected: false };
  }
  // The node's image lacks a tool: a fact about the node to fix there, not a fault of the driver.
  if (err instanceof CommandNotFoundError) return { code: grpc.status.FAILED_PRECONDITION, message: err.message, unexpected: false };
  if (err instanceof CommandError) return { code: grpc.status.INTERNAL, message: err.message, unexpected: true };
  return {
    code: grpc.status.INTERNAL,
    message: `internal error; see the driver log for request ${ctx.requestId}`,
    unexpected: true,
  };
}

export interface PipelineOptions {
  logger: Logger;
  /** Service name for the log line ('Controller', 'Node', 'Identity'). */
  service: string;
  /** Where running calls are listed (the server's), so that a shutdown can say which it waits for or cuts off. */
  calls?: CallsInFlight;
}

/** A running call as a shutdown names it: method, request ID, the request's IDs, and how long it has run. */
export type RunningCall = Record<string, unknown> & { method: string; request_id: string; running_ms: number };

/** The calls running in a server's handlers. */
export class CallsInFlight {
  private readonly calls = new Map<Record<string, unknown>, number>();

  get size(): number {
    return this.calls.size;
  }

  add(fields: Record<string, unknown>): void {
    this.calls.set(fields, performance.now());
  }

  delete(fields: Record<string, unknown>): void {
    this.calls.delete(fields);
  }

  /** Each running call's identifying fields (not its request: no secrets), oldest first. */
  list(): RunningCall[] {
    const now = performance.now();
    return [...this.calls].map(([fields, started]) => {
      const { method, request_id, ...ids } = fields;
      return { method: String(method), request_id: String(request_id), ...ids, running_ms: Math.round(now - started) };
    });
  }
}

/**
 * Turn a record of plain handlers into a grpc-js service implementation. RPCs
 * of the definition without a handler answer UNIMPLEMENTED.
 */
export function wrapService(
  definition: grpc.ServiceDefinition,
  handlers: Record<string, Handler<any, any>>,
  opts: PipelineOptions,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, def] of Object.entries(definition)) {
    if (def.requestStream || def.responseStream) continue;
    // An RPC without a handler goes through the pipeline too, so that it gets
    // its one log line like every other call.
    const handler: Handler<any, any> =
      handlers[method] ??
      (async () => {
        throw unimplemented(`${method} is not implemented by this driver`);
      });
    impl[method] = (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
      void handle(method, handler, call, callback, opts);
    };
  }
  return impl;
}

async function handle(
  method: string,
  handler: Handler<any, any>,
  call: grpc.ServerUnaryCall<any, any>,
  callback: grpc.sendUnaryData<any>,
  opts: PipelineOptions,
): Promise<void> {
  const started = performance.now();
  const requestId = randomUUID().slice(0, 8);
  const fields: Record<string, unknown> = { method, request_id: requestId };
  const request = call.request ?? {};
  for (const [field, key] of ID_FIELDS) {
    const v = request[field];
    if (typeof v === 'string' && v !== '') fields[key] = v;
  }
  // The child logger is made on first use: most calls never log beyond their
  // one info line, and a child per call is garbage at thousands of calls.
  let log: Logger | undefined;
  const callLog = (): Logger => (log ??= opts.logger.child({ request_id: requestId, method }));
  const deadline = deadlineOf(call);
  const controller = new AbortController();
  const timer = deadline !== null ? setTimeout(() => controller.abort(new Error('deadline')), Math.max(0, deadline - Date.now())) : undefined;
  const onCancel = () => controller.abort(new Error('cancelled by the caller'));
  call.on('cancelled', onCancel);
  const ctx: CallContext = {
    requestId,
    method,
    signal: controller.signal,
    deadline,
    get log() {
      return callLog();
    },
    annotate: (more) => Object.assign(fields, more),
  };
  const debug = opts.logger.isLevelEnabled('debug');
  if (debug) callLog().debug({ request: scrub(request) }, 'request');
  opts.calls?.add(fields);
  try {
    const response = await handler(request, ctx);
    fields.code = 'OK';
    fields.duration_ms = Math.round(performance.now() - started);
    if (debug) callLog().debug({ response: scrub(response) }, 'response');
    // A Probe that answers "not ready" is news, and keeps its info line, which says so.
    if (fields.not_ready !== undefined) opts.logger.info(fields, `${method}: not ready`);
    else if (ROUTINE_METHODS.has(method)) opts.logger.debug(fields, `${method} OK`);
    else opts.logger.info(fields, `${method} OK`);
    callback(null, response);
  } catch (err) {
    const answer = toStatus(err, ctx);
    fields.code = grpc.status[answer.code];
    fields.duration_ms = Math.round(performance.now() - started);
    fields.error = answer.message;
    if (answer.unexpected) {
      opts.logger.error({ ...fields, err }, `${method} failed`);
    } else {
      opts.logger.info(fields, `${method} ${fields.code}`);
    }
    callback({ code: answer.code, details: answer.message });
  } finally {
    opts.calls?.delete(fields);
    if (timer) clearTimeout(timer);
    call.removeListener('cancelled', onCancel);
  }
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number | null {
  const d = call.getDeadline();
  if (d instanceof Date) return d.getTime();
  if (typeof d === 'number' && Number.isFinite(d)) return d;
  return null;
}
