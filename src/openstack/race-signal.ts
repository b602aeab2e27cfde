// Waiting on work shared by many callers: each caller gives up at its own
// deadline while the shared work goes on for the others (a Keystone token, the
// Cinder version document, the instance's identity). The shared work is
// bounded by its own timeouts, never by the first caller's signal.
import { OpenStackError } from './errors';

/** `promise`, or a timeout error naming `what` as soon as `signal` fires. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortError(what: string): OpenStackError {
  return new OpenStackError('timeout', `the caller's deadline passed while waiting for ${what}`);
}
