// What every service handler receives besides its request. Handlers are plain
// async functions; the gRPC layer (csi/pipeline.ts) builds this context.
import type { Logger } from '../log';

export interface CallContext {
  /** A short unique ID, also on every log line of this call. */
  requestId: string;
  /** The RPC's name, e.g. 'CreateVolume'. */
  method: string;
  /** Fires when the caller's deadline passes or the caller cancels. */
  signal: AbortSignal;
  /** The caller's deadline (epoch ms), or null when it set none. */
  deadline: number | null;
  /** Child logger carrying requestId and method. */
  log: Logger;
  /** Add fields (volume_id, node_id, snapshot_id, ...) to the call's one info line. */
  annotate(fields: Record<string, unknown>): void;
}

export type Handler<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;
