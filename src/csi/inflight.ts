// The registry of operations in flight, keyed by volume ID (or by name for
// CreateVolume and CreateSnapshot).
//
// The Kubernetes sidecars time out and retry long operations. A retry that
// arrives while the first attempt still runs must not start the work again:
// an identical request joins the running one and gets its result (bounded by
// its own deadline). A different operation on the same key is refused at once
// with ABORTED, which the sidecars retry later, as the CSI spec asks.
import { isDeepStrictEqual } from 'node:util';
import { aborted, deadlineExceeded } from './errors';

interface Entry {
  operation: string;
  /** The request as received; compared (without its secrets) only when another call arrives for the same key. */
  request: unknown;
  promise: Promise<unknown>;
  controller: AbortController;
  waiters: number;
}

export class InFlight {
  private readonly entries = new Map<string, Entry>();

  /** How many operations are running (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Run `work` for `key` unless the same operation with the same request is
   * already running, in which case wait for that one. `work` gets a signal that
   * fires only when every caller waiting for it has gone (deadline or cancel).
   */
  async run<T>(
    key: string,
    operation: string,
    request: unknown,
    callerSignal: AbortSignal,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      if (entry.operation !== operation || !sameRequest(entry.request, request)) {
        const what = entry.operation === operation ? `another ${operation} with different arguments` : entry.operation;
        throw aborted(`${what} is already in progress for ${key}; retry when it has finished`);
      }
      // Everyone who waited for it has gone and it is being cancelled: joining
      // would hand this caller the cancellation as its result.
      if (entry.controller.signal.aborted) {
        throw aborted(`an abandoned ${operation} for ${key} is still being cancelled; retry when it has finished`);
      }
    } else {
      const controller = new AbortController();
      const created: Entry = { operation, request, controller, waiters: 0, promise: Promise.resolve() };
      // Registered before the work starts: a work that throws synchronously
      // runs its `finally` at once, and must find its own entry to remove.
      this.entries.set(key, created);
      created.promise = (async () => {
        try {
          return await work(controller.signal);
        } finally {
          if (this.entries.get(key) === created) this.entries.delete(key);
        }
      })();
      // A rejection nobody awaits any more must not crash the process.
      created.promise.catch(() => undefined);
      entry = created;
    }
    return (await this.wait(entry, callerSignal)) as T;
  }

  private wait(entry: Entry, callerSignal: AbortSignal): Promise<unknown> {
    entry.waiters++;
    return new Promise((resolve, reject) => {
      let settled = false;
      const leave = () => {
        if (settled) return;
        settled = true;
        callerSignal.removeEventListener('abort', onAbort);
        entry.waiters--;
      };
      const onAbort = () => {
        leave();
        if (entry.waiters === 0) entry.controller.abort(callerSignal.reason);
        reject(deadlineExceeded(`${entry.operation} did not finish before the caller's deadline; it is safe to retry`));
      };
      if (callerSignal.aborted) return onAbort();
      callerSignal.addEventListener('abort', onAbort, { once: true });
      entry.promise.then(
        (value) => {
          leave();
          resolve(value);
        },
        (err) => {
          leave();
          reject(err);
        },
      );
    });
  }
}

/**
 * Whether a second call is a retry of the first: the same request, its
 * `secrets` field aside (a retry may carry rotated credentials). Only that
 * field: the log's wider net of secret-looking names would also hide a
 * StorageClass parameter or metadata key that merely contains "token".
 */
function sameRequest(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(withoutSecrets(a), withoutSecrets(b));
}

function withoutSecrets(request: unknown): unknown {
  if (request === null || typeof request !== 'object' || !('secrets' in request)) return request;
  const { secrets: _secrets, ...rest } = request as Record<string, unknown>;
  return rest;
}
