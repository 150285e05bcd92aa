/**
 * The exchange record of `docs/record.md` (shared/docs): one request and its response, or a request that
 * never got one. Field names are public API.
 */
import { isUtf8 } from 'node:buffer';
import type { HeaderMap } from './codecs/http1/decoder.js';

export type Protocol = 'http1' | 'http2' | 'grpc' | 'dubbo';
export type ExchangeStatus = 'ok' | 'client_error' | 'server_error' | 'timeout' | 'parse_error';

export interface Peer {
  ip: string;
  port: number;
}

export interface ExchangeRecord<Req = unknown, Res = unknown> {
  protocol: Protocol;
  client: Peer;
  server: Peer;
  connectionId: string;
  streamId?: number;
  requestId?: string;
  startTime: number;
  endTime: number | null;
  duration: number | null;
  status: ExchangeStatus;
  code: number | null;
  endpoint: string;
  error: string | null;
  traceId: string | null;
  spanId: string | null;
  xRequestId: string | null;
  forwardedFor?: string | null;
  requestSize: number;
  responseSize: number;
  request: Req;
  response: Res | null;
}

export interface BodyFields {
  bodySize: number;
  body?: string;
  bodyEncoding?: 'base64';
}

export interface Http1RequestPart extends BodyFields {
  method: string | null;
  target: string | null;
  path: string | null;
  host: string | null;
  version: string | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export interface Http1ResponsePart extends BodyFields {
  statusCode: number;
  reason: string;
  version: string;
  headers: HeaderMap;
  trailers?: HeaderMap;
  /** Status codes of 1xx interim responses that came before this one (100 Continue, 103 Early Hints). */
  interim?: number[];
}

export type Http1Record = ExchangeRecord<Http1RequestPart, Http1ResponsePart>;

/** HTTP: < 400 ok, 4xx client_error, 5xx server_error. */
export function httpStatusClass(code: number): ExchangeStatus {
  if (code >= 500) return 'server_error';
  if (code >= 400) return 'client_error';
  return 'ok';
}

const GRPC_CLIENT_ERRORS = new Set([1, 3, 5, 6, 7, 9, 11, 16]);
/** gRPC: 0 ok; 1, 3, 5, 6, 7, 9, 11, 16 client_error; any other server_error. */
export function grpcStatusClass(code: number): ExchangeStatus {
  if (code === 0) return 'ok';
  return GRPC_CLIENT_ERRORS.has(code) ? 'client_error' : 'server_error';
}

/** Dubbo status byte: 20 ok (unless it carries an exception); 30, 35, 40, 90 client_error; others server_error. */
export function dubboStatusClass(status: number, exception = false): ExchangeStatus {
  if (status === 20) return exception ? 'server_error' : 'ok';
  if (status === 30 || status === 35 || status === 40 || status === 90) return 'client_error';
  return 'server_error';
}

/** Record body fields: UTF-8 text when the captured bytes are valid UTF-8, else base64. */
export function bodyFields(body: Uint8Array | null, bodySize: number): BodyFields {
  if (!body || body.length === 0) return { bodySize };
  let b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length);
  // A cap can cut a multi-byte character: drop the cut tail rather than call the whole body binary.
  if (b.length < bodySize) b = b.subarray(0, utf8Boundary(b));
  if (isUtf8(b)) return { bodySize, body: b.toString('utf8') };
  return { bodySize, body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' };
}

/** Length of `b` without a trailing incomplete UTF-8 sequence. */
function utf8Boundary(b: Uint8Array): number {
  const n = b.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const c = b[n - back];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
