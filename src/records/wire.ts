/**
 * A record's messages as they crossed the wire, for recording and replay: raw HTTP/1 messages and Dubbo
 * frames; for HTTP/2 and gRPC, the header lists in order and every DATA byte. Kept only when the reader or
 * proxy was asked to (`keepRaw`), beside the record rather than in it: records stay what record.md says,
 * and what a sink serialises never grows. A record copied by a stage (mask, a plugin) has no wire.
 */
import type { AnyRecord } from './types.js';

export interface Http2Half {
  /** The header block, pseudo-headers first, in the order sent. */
  headers: [string, string][];
  trailers: [string, string][] | null;
  /** Every DATA byte (for gRPC, the length-prefixed messages), up to the cap. */
  body: Buffer;
  /** The cap cut the body: `body` is its start. */
  bodyCut: boolean;
}

export type Wire =
  /** Raw messages; `…Cut`: the cap kept only the message's first bytes. */
  | { protocol: 'http1' | 'dubbo'; request: Buffer | null; response: Buffer | null; requestCut: boolean; responseCut: boolean }
  | { protocol: 'http2' | 'grpc'; request: Http2Half | null; response: Http2Half | null };

const wires = new WeakMap<object, Wire>();

/** The wire of a record made with `keepRaw`, if any. */
export function wireOf(record: AnyRecord): Wire | undefined {
  return wires.get(record);
}

export function attachWire<R extends AnyRecord>(record: R, wire: Wire): R {
  wires.set(record, wire);
  return record;
}
