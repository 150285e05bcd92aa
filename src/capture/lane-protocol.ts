/**
 * What the reading thread and a decoding thread of `flowtap read --threads` say to each other
 * (parallel.ts, read-worker.ts). Ops travel as numbers, STRIDE to an op, in one transferred array.
 */
import type { Peer } from '../records/types.js';
import type { TlsStats } from './tls/session.js';

/** Slots per op: [code, op index, connection, side, a, b, time]. */
export const STRIDE = 7;

export const OPEN = 0; // extras: LaneOpen
export const WRITE = 1; // a = offset in the batch's bytes, b = length
export const GAP = 2; // a = length
export const END = 3;
export const CLOSE = 4;
export const EXPIRE = 5; // time = before
export const SECRETS = 6; // extras: key log text
export const MARK = 7; // report the oldest open exchange at this point

/** Slots per record in a reply's `meta`: [startTime, op index, offset, length]. */
export const META = 4;

export interface LaneOpen { client: Peer; server: Peer; connectionId: string; protocol: string; midStream: boolean }

/** Plain data only: functions and registries cannot cross threads. */
export interface LaneOptions {
  format: 'jsonl' | 'table';
  bodyCapture?: number;
  traceKeys?: string[];
  spanKeys?: string[];
  decodeValues?: boolean;
  /** Loaded again in each thread. */
  protoDir?: string;
  /** Key log text (pcapng secrets come later, as SECRETS ops). */
  keylog?: string;
}

export interface LaneBatch { ops: Float64Array; count: number; bytes: ArrayBuffer; extras: unknown[]; last: boolean }

/**
 * A batch's answer. Records are lines (JSON or table rows) in `text`, UTF-8, in the order they were made;
 * `meta` holds META numbers per record; `marks` the oldest open exchange at each mark, in order.
 */
export interface LaneReply {
  text: ArrayBuffer;
  meta: Float64Array;
  marks: Float64Array;
  /** With the last batch's reply. */
  stats?: { undecoded: number; tls: TlsStats };
  error?: string;
}
