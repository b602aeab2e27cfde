// One GET of a JSON document from the Nova metadata service. The node plugin
// makes this one HTTP call and nothing else, so it uses http.ts's exchange()
// alone: plain HTTP to a link-local address, no TLS, no token, no pool, one
// small JSON document. The errors are the same typed OpenStackErrors the rest
// of the module throws.
import { exchange, parseBody } from './http';
import { errorFromException, errorFromResponse } from './http-errors';
import { OpenStackError } from './errors';

/** The largest document accepted: meta_data.json is a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function getMetadataJson(url: string, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  const target = new URL(url);
  const path = target.pathname;
  if (target.protocol !== 'http:') {
    throw new OpenStackError('bad_request', `the metadata service URL must be plain http:// (it is link-local), not ${target.protocol}`);
  }
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let result;
  try {
    combined.throwIfAborted();
    // agent: false, one connection per request: nothing is kept open between the rare lookups.
    result = await exchange(target, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: combined,
      agent: false,
      maxBodyBytes: MAX_BODY_BYTES,
      connectTimeoutMs: timeoutMs,
    });
  } catch (err) {
    throw errorFromException('GET', path, err, signal);
  }
  const body = parseBody(result.text, result.headers['content-type']);
  // Its plain 404 means "no such document": not_found, which ends the retries.
  if (result.status < 200 || result.status >= 300) throw errorFromResponse('GET', path, result.status, result.headers, body, { plainNotFound: true });
  return body;
}
