// Errors that carry their gRPC status. Services throw these; the request
// pipeline (csi/pipeline.ts) is the one place that turns any error into a
// gRPC status, including errors from the OpenStack module.
import { status } from '@grpc/grpc-js';

export { status as Code };

export class CsiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'CsiError';
  }
}

export const invalidArgument = (msg: string) => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CsiError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string) => new CsiError(status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string) => new CsiError(status.FAILED_PRECONDITION, msg);
export const resourceExhausted = (msg: string) => new CsiError(status.RESOURCE_EXHAUSTED, msg);
export const aborted = (msg: string) => new CsiError(status.ABORTED, msg);
export const outOfRange = (msg: string) => new CsiError(status.OUT_OF_RANGE, msg);
export const unavailable = (msg: string) => new CsiError(status.UNAVAILABLE, msg);
export const deadlineExceeded = (msg: string) => new CsiError(status.DEADLINE_EXCEEDED, msg);
export const internal = (msg: string) => new CsiError(status.INTERNAL, msg);
export const unimplemented = (msg: string) => new CsiError(status.UNIMPLEMENTED, msg);

/** INVALID_ARGUMENT naming the missing field, the way the CSI spec wants required fields checked. */
export function requireField<T>(value: T | null | undefined | '', field: string): T {
  if (value === undefined || value === null || value === '') {
    throw invalidArgument(`${field} is required`);
  }
  if (Array.isArray(value) && value.length === 0) throw invalidArgument(`${field} must not be empty`);
  return value as T;
}

/** The CSI spec's size limit for a string field ("Size Limits"): a CO sends no longer one. */
export const MAX_STRING_BYTES = 128;
/** node_id overrides the general limit (NodeGetInfoResponse): up to 256 bytes. */
export const MAX_NODE_ID_BYTES = 256;

/** The characters the spec bans from a name: control characters other than tab, newline and carriage return. */
const BANNED_IN_NAMES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/** Whether `s` holds any control character (NUL, newline, ...): no ID, path or mount flag does. */
export const hasControlCharacter = (s: string): boolean => /[\u0000-\u001f\u007f-\u009f]/.test(s);

function requireWithin(value: string | null | undefined, field: string, maxBytes: number): string {
  const v = requireField(value, field);
  const bytes = Buffer.byteLength(v);
  if (bytes > maxBytes) throw invalidArgument(`${field} is ${bytes} bytes long; the CSI spec allows at most ${maxBytes}`);
  return v;
}

/** A required name (of a new volume or snapshot): within the spec's 128 bytes and without the characters it bans. */
export function requireName(value: string | null | undefined, field: string): string {
  const v = requireWithin(value, field, MAX_STRING_BYTES);
  if (BANNED_IN_NAMES.test(v)) throw invalidArgument(`${field} ${JSON.stringify(v)} holds a control character the CSI spec bans from names`);
  return v;
}

/**
 * A required ID (of a volume, snapshot or node) this driver issued: within the spec's limit, without
 * control characters and without '/'. No Cinder or Nova ID holds one, and on the node a '/' would
 * make the volume ID a path (its device is looked up by file name).
 */
export function requireId(value: string | null | undefined, field: string, maxBytes = MAX_STRING_BYTES): string {
  const v = requireWithin(value, field, maxBytes);
  if (hasControlCharacter(v)) throw invalidArgument(`${field} ${JSON.stringify(v)} must not contain control characters`);
  if (v.includes('/')) throw invalidArgument(`${field} ${JSON.stringify(v)} must not contain '/': it is not a Cinder or Nova ID`);
  return v;
}
