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
