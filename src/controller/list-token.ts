// The opaque next_token of ListVolumes and ListSnapshots. It says where a
// listing stopped: which cloud, which Cinder collection (snapshots are listed
// before backups) and Cinder's own marker. It is base64url JSON with an HMAC,
// so a token we did not issue, or one of the other List call, is refused
// with ABORTED as the CSI spec asks, instead of being fed to Cinder.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { aborted } from '../csi/errors';

export interface ListPosition {
  /** 'volumes' or 'snapshots': which List call issued the token. */
  list: 'volumes' | 'snapshots';
  cloud: string;
  /** Within ListSnapshots: 'snapshot' then 'backup'. */
  collection?: 'snapshot' | 'backup';
  /** Cinder's marker (the last item's ID); absent at the start of a collection. */
  marker?: string;
}

const MAC_BYTES = 16;

function mac(key: string, payload: string): Buffer {
  return createHmac('sha256', key).update(payload).digest().subarray(0, MAC_BYTES);
}

export function encodeListToken(position: ListPosition, key: string): string {
  const payload = Buffer.from(JSON.stringify(position)).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

export function decodeListToken(token: string, list: ListPosition['list'], key: string): ListPosition {
  const refuse = () =>
    aborted(`starting_token '${token.slice(0, 40)}' was not issued by this driver's List${list === 'volumes' ? 'Volumes' : 'Snapshots'}; start the listing again without a token`);
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) throw refuse();
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refuse();
  let position: unknown;
  try {
    position = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const p = position as Partial<ListPosition>;
  if (p === null || typeof p !== 'object' || p.list !== list || typeof p.cloud !== 'string') throw refuse();
  return p as ListPosition;
}
