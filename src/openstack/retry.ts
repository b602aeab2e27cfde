// THE retry policy for OpenStack calls. Idempotent methods (GET, PUT, DELETE,
// HEAD) are retried on 5xx, 429 (and 413 with Retry-After), connection
// resets and socket timeouts, with exponential backoff and full jitter,
// honouring Retry-After, and never sleeping past the caller's deadline.
// A POST is retried only when it was rate limited (429, or 413 with
// Retry-After): the server refused it before acting on it. After any other
// failure it may have acted (a lost response to a create may have created
// the object), so callers make creates idempotent by looking up by name.
// A Retry-After longer than MAX_RETRY_AFTER_MS is not waited out: the
// request fails at once, saying how long the cloud asked to wait.
import type { Logger } from '../log';
import { OpenStackError } from './errors';
import { isPermanentNetworkFailure } from './http-errors';

export interface RetryPolicy {
  /** Total attempts, the first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

/**
 * The longest Retry-After waited out within one call. Creates, attaches and
 * detaches are sent without a deadline (they must not be cut off halfway),
 * so nothing else bounds the wait: a cloud answering `Retry-After: 86400`
 * would park the operation, and the volume's in-flight entry with it (every
 * repeat of the CO's call is ABORTED meanwhile), for a day. A minute is what
 * rate limiters commonly ask for (Nova's and Cinder's old limits middleware
 * counted per minute), twice the default request timeout, and with the
 * policy's attempts bounds a call at a few minutes. A longer wait fails the
 * call (rate_limited, UNAVAILABLE to the CO), whose own backoff (up to five
 * minutes in the sidecars) then paces the next try.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE', 'HEAD']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

/** Whether this failure of an idempotent request is worth another try. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof OpenStackError)) return false;
  switch (err.kind) {
    case 'unavailable':
    case 'rate_limited':
    case 'timeout':
      return true;
    case 'network':
      return !isPermanentNetworkFailure(err);
    default:
      return false;
  }
}

/** Whether the server refused the request before acting on it (a rate limit), so that even a POST may be sent again. */
export function refusedBeforeActing(err: unknown): boolean {
  return err instanceof OpenStackError && err.kind === 'rate_limited';
}

/** Backoff before attempt `attempt + 1` (attempt counts from 1): full jitter over an exponential cap. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // Half fixed, half random: never zero (which would hammer a failing
  // service), still spread so many clients do not retry in step.
  return Math.round(cap / 2 + (random() * cap) / 2);
}

export interface RetryOptions {
  method: string;
  /** Allow retries of a POST that the caller knows is safe to repeat (e.g. a metadata merge). */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** The caller's deadline, epoch ms. */
  deadline?: number;
  policy?: RetryPolicy;
  logger?: Logger;
  random?: () => number;
  /** For tests: the sleep to use. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY_POLICY;
  const retriable = opts.idempotent ?? isIdempotent(opts.method);
  const doSleep = opts.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const mayRepeat = retriable || refusedBeforeActing(err);
      if (!mayRepeat || attempt >= policy.maxAttempts || !isRetryable(err) || opts.signal?.aborted) throw err;
      const e = err as OpenStackError;
      let delay = backoffMs(attempt, policy, opts.random);
      if (e.retryAfter !== undefined) {
        if (e.retryAfter * 1000 > MAX_RETRY_AFTER_MS) throw tooLongToWait(e);
        delay = Math.max(delay, e.retryAfter * 1000);
      }
      // Sleeping past the deadline only to fail then helps nobody: give the
      // caller the real reason now.
      if (opts.deadline !== undefined && Date.now() + delay >= opts.deadline) throw err;
      opts.logger?.debug({ method: e.method, path: e.path, kind: e.kind, attempt, delayMs: delay }, 'retrying openstack request');
      try {
        await doSleep(delay, opts.signal);
      } catch {
        throw new OpenStackError('timeout', `${e.message} (the caller's deadline passed while waiting to retry)`, {
          method: e.method,
          path: e.path,
          status: e.status,
          requestId: e.requestId,
          cause: err,
        });
      }
    }
  }
}

/** A failure whose Retry-After is more than this call waits: its own kind (rate_limited for a rate limit), the wait in the message. */
function tooLongToWait(e: OpenStackError): OpenStackError {
  return new OpenStackError(
    e.kind,
    `${e.message} (the cloud asks to wait ${Math.round(e.retryAfter ?? 0)} s before trying again, longer than the ${MAX_RETRY_AFTER_MS / 1000} s one call waits)`,
    { method: e.method, path: e.path, status: e.status, requestId: e.requestId, retryAfter: e.retryAfter, cause: e },
  );
}
