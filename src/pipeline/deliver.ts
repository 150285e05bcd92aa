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

/**
 * Hand records as JSON lines (`text` ends with a newline; `count` lines) to each listener; a throw goes to
 * `report`, with the batch's first record as what the callback was given.
 */
export function deliverLines(listeners: ((text: string, count: number) => void)[], text: string, count: number, report: UserErrorHandler, self?: unknown): void {
  for (const l of listeners) {
    try {
      l.call(self, text, count);
    } catch (e) {
      report(new RecordCallbackError(e, JSON.parse(text.slice(0, text.indexOf('\n'))) as AnyRecord));
    }
  }
}

/** Call `fn` with each line of JSON lines `text` (every line ends with a newline; none is empty). */
export function forEachLine(text: string, fn: (line: string) => void): void {
  for (let i = 0; i < text.length;) {
    const j = text.indexOf('\n', i);
    fn(text.slice(i, j));
    i = j + 1;
  }
}
