// One GET of a JSON document from the Nova metadata service, with node:http.
//
// Why not the OpenStack HTTP client (http.ts, undici): undici parses HTTP with
// a WebAssembly build of llhttp, and the node plugin runs with --lite-mode
// (bin/cinder-csi), where V8 has no WebAssembly at all; node:http parses with
// Node's built-in native llhttp. The metadata service needs nothing else: plain
// HTTP to a link-local address, no TLS, no token, one small JSON document. The
// errors are the same typed OpenStackErrors the rest of the module throws.
import http from 'node:http';
import { errorFromException, errorFromResponse } from './http-errors';
import { OpenStackError } from './errors';

/** The largest document accepted: meta_data.json is a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function getMetadataJson(url: string, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  // Not http.ts's helpers: loading http.ts loads undici.
  const target = new URL(url);
  const path = target.pathname;
  if (target.protocol !== 'http:') {
    throw new OpenStackError('bad_request', `the metadata service URL must be plain http:// (it is link-local), not ${target.protocol}`);
  }
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    combined.throwIfAborted();
    const { status, headers, text } = await get(target, combined);
    const body = parseJson(text);
    if (status < 200 || status >= 300) throw errorFromResponse('GET', path, status, headers, body);
    return body;
  } catch (err) {
    throw errorFromException('GET', path, err, signal);
  }
}

function get(url: URL, signal: AbortSignal): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  return new Promise((resolve, reject) => {
    // agent: false, one connection per request: nothing is kept open between the rare lookups.
    const req = http.get(url, { signal, agent: false, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        // Not a network failure: asking again would get the same answer.
        if (size > MAX_BODY_BYTES) return res.destroy(new OpenStackError('bad_request', `the metadata service sent more than ${MAX_BODY_BYTES} bytes`));
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
