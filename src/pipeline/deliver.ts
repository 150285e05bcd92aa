/**
 * The error boundary between flowtap and a user's record callback: a callback that throws is the user's
 * error, reported as such, and never reaches a decoder (where it would look like a parse error) or the
 * forwarding path.
 */
import type { AnyRecord } from '../records/types.js';

/** A user's record callback threw; `cause` is what it threw, `record` what it was given. */
export class RecordCallbackError extends Error {
  constructor(override readonly cause: unknown, readonly record: AnyRecord) {
    super(`a record callback threw: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'RecordCallbackError';
  }
}

export type UserErrorHandler = (error: RecordCallbackError) => void;

/** Call `fn(record)` (with `self` as this); a throw goes to `report` as a RecordCallbackError. */
export function deliver(fn: (r: AnyRecord) => void, record: AnyRecord, report: UserErrorHandler, self?: unknown): void {
  try {
    fn.call(self, record);
  } catch (e) {
    report(new RecordCallbackError(e, record));
  }
}
