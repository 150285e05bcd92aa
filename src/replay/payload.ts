/**
 * The unit of a recording: one message, as GoReplay's payloads are — a request (type 1), the original
 * response (2) or a replayed response (3), sharing the id of their exchange. HTTP/1 and Dubbo messages are
 * kept raw; HTTP/2 and gRPC ones as their header lists and DATA bytes (docs/recording.md).
 */
import { randomBytes } from 'node:crypto';
import type { AnyRecord } from '../records/types.js';
import { wireOf, type Http2Half, type Wire } from '../records/wire.js';

export type PayloadType = 1 | 2 | 3;
export type RecordedProtocol = 'http1' | 'http2' | 'grpc' | 'dubbo';

export interface Payload {
  type: PayloadType;
  /** 24 hex characters, shared by a request and its responses. */
  id: string;
  /** Unix ns of the message start (requests) or of the response's end (responses). */
  timestamp: bigint;
  /** ns; the round trip for responses, -1 when unknown. */
  latency: bigint;
  protocol: RecordedProtocol;
  /** The original connection ("client ip:port connectionId"), so a replay can keep its requests together. */
  connection?: string;
  /** HTTP/1 and Dubbo: the message bytes. */
  raw?: Buffer;
  /** HTTP/2 and gRPC: headers, trailers, body. */
  http2?: Http2Half;
  /** The capture cap kept only the message's first bytes. */
  cut?: boolean;
}

/** A fresh exchange id: 24 hex characters, as GoReplay makes them. */
export function newId(): string {
  return randomBytes(12).toString('hex');
}

export const msToNs = (ms: number): bigint => BigInt(Math.round(ms * 1e6));
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

/**
 * The payloads of a record made with `keepRaw`: its request and, when it had one, its response. Null when
 * the record carries no wire (not recorded with `keepRaw`, or a copy made by a stage) or no request bytes.
 */
export function payloadsOf(record: AnyRecord, id = newId()): Payload[] | null {
  const wire = wireOf(record);
  if (!wire || wire.request === null) return null;
  const protocol = wire.protocol;
  const connection = `${record.client.ip}:${record.client.port} ${record.connectionId}`;
  const start = msToNs(record.startTime);
  const latency = record.endTime === null ? -1n : msToNs(record.endTime) - start;
  const out: Payload[] = [];
  const base = { id, protocol, connection } as const;
  if (wire.protocol === 'http1' || wire.protocol === 'dubbo') {
    out.push({ ...base, type: 1, timestamp: start, latency: -1n, raw: wire.request, ...(wire.requestCut ? { cut: true } : {}) });
    if (wire.response) {
      out.push({ ...base, type: 2, timestamp: start + (latency < 0n ? 0n : latency), latency, raw: wire.response,
        ...(wire.responseCut ? { cut: true } : {}) });
    }
  } else {
    const h2 = wire as Extract<Wire, { protocol: 'http2' | 'grpc' }>; // (TypeScript loses the narrowing here)
    out.push({ ...base, type: 1, timestamp: start, latency: -1n, http2: h2.request!, ...(h2.request!.bodyCut ? { cut: true } : {}) });
    if (h2.response) {
      out.push({ ...base, type: 2, timestamp: start + (latency < 0n ? 0n : latency), latency, http2: h2.response,
        ...(h2.response.bodyCut ? { cut: true } : {}) });
    }
  }
  return out;
}
