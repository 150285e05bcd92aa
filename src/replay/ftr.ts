/**
 * The flowtap recording (docs/recording.md): JSON lines, one payload each, after a header line. It holds
 * every protocol: HTTP/1 and Dubbo messages raw (base64), HTTP/2 and gRPC messages as their header lists,
 * trailers and DATA bytes. Greppable, appendable, and gzip-friendly like `.gor`.
 */
import type { Http2Half } from '../records/wire.js';
import type { Payload, PayloadType, RecordedProtocol } from './payload.js';

export const FTR_HEADER = '{"flowtap":"recording","version":1}';

interface Line {
  type: PayloadType;
  id: string;
  timestamp: string;
  latency: string;
  protocol: RecordedProtocol;
  connection?: string;
  raw?: string;
  headers?: [string, string][];
  trailers?: [string, string][] | null;
  body?: string;
  cut?: boolean;
}

export function encodeFtr(p: Payload): string {
  const line: Line = { type: p.type, id: p.id, timestamp: String(p.timestamp), latency: String(p.latency), protocol: p.protocol };
  if (p.connection) line.connection = p.connection;
  if (p.raw) line.raw = p.raw.toString('base64');
  if (p.http2) {
    line.headers = p.http2.headers;
    if (p.http2.trailers) line.trailers = p.http2.trailers;
    line.body = p.http2.body.toString('base64');
  }
  if (p.cut) line.cut = true;
  return JSON.stringify(line) + '\n';
}

const PROTOCOLS = new Set(['http1', 'http2', 'grpc', 'dubbo']);

/** One line of a recording as a payload, or a sentence saying what is wrong with it. */
export function decodeFtr(text: string): Payload | string {
  let l: Line;
  try { l = JSON.parse(text) as Line; } catch { return 'not JSON'; }
  if (![1, 2, 3].includes(l.type) || typeof l.id !== 'string' || !/^\d+$/.test(l.timestamp) || !PROTOCOLS.has(l.protocol)) {
    return 'not a payload (type, id, timestamp and protocol are required)';
  }
  const p: Payload = { type: l.type, id: l.id, timestamp: BigInt(l.timestamp), latency: /^-?\d+$/.test(l.latency) ? BigInt(l.latency) : -1n, protocol: l.protocol };
  if (l.connection) p.connection = l.connection;
  if (l.protocol === 'http1' || l.protocol === 'dubbo') {
    if (typeof l.raw !== 'string') return `a ${l.protocol} payload needs "raw"`;
    p.raw = Buffer.from(l.raw, 'base64');
  } else {
    if (!Array.isArray(l.headers)) return `a ${l.protocol} payload needs "headers"`;
    const half: Http2Half = { headers: l.headers, trailers: l.trailers ?? null, body: Buffer.from(l.body ?? '', 'base64'), bodyCut: l.cut === true };
    p.http2 = half;
  }
  if (l.cut) p.cut = true;
  return p;
}
