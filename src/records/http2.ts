/** http2 and grpc records from assembled HTTP/2 stream messages: pure functions of one exchange. */
import type { Http2Message } from '../codecs/http2/decoder.js';
import { value } from '../codecs/http2/decoder.js';
import type { HeaderField } from '../codecs/http2/hpack.js';
import type { GrpcMessageReader } from '../codecs/grpc/messages.js';
import { protobufDump } from '../codecs/grpc/protobuf-dump.js';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import { lowerCaseLookup, traceContext } from '../trace.js';
import { joined, withBody } from './body.js';
import { withoutQuery } from './http1.js';
import type { RecordContext } from './context.js';
import { durationOf, grpcStatusClass, grpcStatusFromHttp, httpStatusClass } from './status.js';
import type {
  ExchangeStatus, GrpcRecord, GrpcRequestPart, GrpcResponsePart, HeaderMap, Http2Record, Http2RequestPart, Http2ResponsePart,
} from './types.js';

export interface Http2Exchange {
  streamId: number;
  start: number;
  req: Http2Message | null;
  res: Http2Message | null;
  /** `stream reset by the client (CANCEL)`, when a RST_STREAM ended it. */
  reset: string | null;
  /** Time of the response's END_STREAM or of the reset; 0 when neither came. */
  end: number;
  /** Why no answer can come (upstream unreachable, connection reset), or a decode error (with `parseError`). */
  failure: string | null;
  parseError: boolean;
  /** Bytes were lost while it was open, or the capture ended first: said in `error`. */
  lost: string | null;
  /** Bytes were lost from the capture (not only cut by its end). */
  gapped: boolean;
}

export interface Http2RecordContext extends RecordContext {
  protos?: ProtoRegistry;
}

export function http2Record(ctx: RecordContext, s: Http2Exchange): Http2Record {
  const req = toMap(s.req?.fields ?? null);
  const res = s.res?.fields ? toMap(s.res.fields) : null;
  const statusText = res?.pseudo[':status'];
  const code = statusText ? Number(statusText) : null;
  const complete = (s.res?.ended ?? false) && !s.reset;
  let status: ExchangeStatus;
  if (s.parseError) status = 'parse_error';
  else if (s.reset) status = code !== null && complete ? httpStatusClass(code) : s.reset.includes('client') ? 'client_error' : 'server_error';
  else if (code !== null) status = httpStatusClass(code);
  // Answered, but its :status is a table entry from before the capture: not a timeout, and not a guess.
  else if (res && s.res!.hpackIncomplete) status = 'parse_error';
  else status = s.failure ? 'server_error' : 'timeout';
  const unresolved = code === null && res && s.res!.hpackIncomplete
    ? 'the response :status refers to an HPACK table entry from before the capture began' : null;
  const path = req.pseudo[':path'] ?? null;
  const trace = traceContext(lowerCaseLookup(req.headers), ctx.options);
  const request: Http2RequestPart = {
    method: req.pseudo[':method'] ?? null, path, authority: req.pseudo[':authority'] ?? null, scheme: req.pseudo[':scheme'] ?? null,
    headers: req.headers, bodySize: 0,
  };
  withBody(request, s.req?.body ?? null, s.req?.bodySize ?? 0);
  if (s.req?.trailers) request.trailers = toMap(s.req.trailers).headers;
  let response: Http2ResponsePart | null = null;
  if (res) {
    response = withBody({ statusCode: code, headers: res.headers, bodySize: 0 }, s.res!.body, s.res!.bodySize);
    if (s.res!.trailers) response.trailers = toMap(s.res!.trailers).headers;
  }
  const endTime = s.end > 0 && (complete || s.reset) ? s.end : null;
  const record: Http2Record = {
    protocol: 'http2',
    client: ctx.client,
    server: ctx.server,
    connectionId: ctx.connectionId,
    streamId: s.streamId,
    startTime: s.start,
    endTime,
    duration: durationOf(s.start, endTime),
    status,
    code,
    endpoint: endpointOf(path),
    error: s.reset ?? s.failure ?? s.lost ?? unresolved,
    traceId: trace.traceId,
    spanId: trace.spanId,
    xRequestId: trace.xRequestId,
    forwardedFor: joined(req.headers['x-forwarded-for'] ?? req.headers['x-real-ip']),
    requestSize: s.req?.size ?? 0,
    responseSize: s.res?.size ?? 0,
    request,
    response,
  };
  if (s.req?.hpackIncomplete || s.res?.hpackIncomplete) record.hpackIncomplete = true;
  return record;
}

export function grpcRecord(ctx: Http2RecordContext, s: Http2Exchange): GrpcRecord {
  const req = toMap(s.req?.fields ?? null);
  const res = s.res?.fields ? toMap(s.res.fields) : null;
  // Trailers-only: the response's only HEADERS carry grpc-status.
  const trailers = s.res?.trailers ? toMap(s.res.trailers) : res && res.headers['grpc-status'] !== undefined ? res : null;
  const httpStatus = res?.pseudo[':status'] ? Number(res.pseudo[':status']) : null;
  const gs = trailers?.headers['grpc-status'];
  let grpcStatus = gs === undefined ? null : Number(Array.isArray(gs) ? gs[0] : gs);
  const gm = trailers?.headers['grpc-message'];
  const grpcMessage = percentDecode(gm === undefined ? null : Array.isArray(gm) ? gm[0] : gm);
  const timeout = grpcTimeout(value(s.req?.fields ?? [], 'grpc-timeout'));
  let deadline = false;
  if (grpcStatus === null && s.reset?.includes('client') && s.reset.includes('CANCEL')) {
    // Clients enforce deadlines themselves and cancel the stream: a cancel at the deadline is DEADLINE_EXCEEDED.
    deadline = timeout !== undefined && s.end - s.start >= timeout * 0.9;
    grpcStatus = deadline ? 4 : 1; // DEADLINE_EXCEEDED : CANCELLED
  }
  // No grpc-status: a non-200 HTTP status means what gRPC clients make of it; a 200 alone means nothing yet.
  const code = grpcStatus ?? (httpStatus !== null && httpStatus !== 200 ? grpcStatusFromHttp(httpStatus) : null);
  let status: ExchangeStatus;
  let unfinished: string | null = null;
  if (s.parseError) status = 'parse_error';
  else if (code !== null) status = grpcStatusClass(code);
  else if (s.reset) status = s.reset.includes('client') ? 'client_error' : 'server_error';
  else if (s.failure) status = 'server_error';
  else if (s.gapped) { status = 'parse_error'; unfinished = s.lost; }
  else { status = 'timeout'; unfinished = s.lost ?? 'no grpc-status was seen'; }
  const path = req.pseudo[':path'] ?? null;
  const [service, method] = serviceMethod(path);
  const trace = traceContext(lowerCaseLookup(req.headers), ctx.options);
  const request: GrpcRequestPart = {
    path, service, method, authority: req.pseudo[':authority'] ?? null, metadata: req.headers, messages: s.req?.grpc?.count ?? 0,
  };
  const reqMessage = dump(s.req?.grpc, ctx.protos, path, 'request');
  if (reqMessage !== undefined) request.message = reqMessage;
  if (timeout !== undefined) request.timeout = timeout;
  let response: GrpcResponsePart | null = null;
  if (res) {
    response = {
      httpStatus, grpcStatus, grpcMessage, metadata: trailers === res ? {} : res.headers, trailers: trailers?.headers ?? {},
      messages: s.res?.grpc?.count ?? 0,
    };
    const resMessage = dump(s.res?.grpc, ctx.protos, path, 'response');
    if (resMessage !== undefined) response.message = resMessage;
  }
  const complete = (s.res?.ended ?? false) || s.reset !== null;
  const endTime = s.end > 0 && complete ? s.end : null;
  const record: GrpcRecord = {
    protocol: 'grpc',
    client: ctx.client, server: ctx.server, connectionId: ctx.connectionId, streamId: s.streamId,
    startTime: s.start, endTime, duration: durationOf(s.start, endTime),
    status, code, endpoint: endpointOf(path),
    error: deadline ? `deadline exceeded (grpc-timeout ${timeout} ms; ${s.reset})`
      : grpcStatus !== null && grpcStatus !== 0 ? grpcMessage ?? s.reset
      : code !== null && code !== 0 ? `HTTP ${httpStatus} without grpc-status`
      : s.reset ?? s.failure ?? unfinished ?? s.lost ?? null,
    traceId: trace.traceId, spanId: trace.spanId, xRequestId: trace.xRequestId,
    requestSize: s.req?.size ?? 0, responseSize: s.res?.size ?? 0,
    request, response,
  };
  if (s.req?.hpackIncomplete || s.res?.hpackIncomplete) record.hpackIncomplete = true;
  return record;
}

function endpointOf(path: string | null): string {
  return path === null ? '' : withoutQuery(path);
}

/** `/pkg.Service/Method` → its two names; a connection calls few methods, so the last few are kept. */
const methods = new Map<string, [string | null, string | null]>();
function serviceMethod(path: string | null): [string | null, string | null] {
  if (path === null) return [null, null];
  let sm = methods.get(path);
  if (sm === undefined) {
    const m = /^\/([^/]+)\/([^/?]+)/.exec(path);
    sm = m ? [m[1], m[2]] : [null, null];
    if (methods.size >= 256) methods.clear();
    methods.set(path, sm);
  }
  return sm;
}

/** grpc-timeout ("2S", "100m", "5000u") in ms. */
function grpcTimeout(v: string | null): number | undefined {
  const m = v ? /^(\d{1,8})([HMSmun])$/.exec(v) : null;
  if (!m) return undefined;
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as 'H'];
  return Number(m[1]) * unit;
}

function percentDecode(v: string | null): string | null {
  if (v === null) return null;
  try { return decodeURIComponent(v); } catch { return v; }
}

function dump(r: GrpcMessageReader | null | undefined, protos?: ProtoRegistry, path?: string | null, direction?: 'request' | 'response'): unknown {
  if (!r) return undefined;
  if (r.firstError) return { $error: r.firstError };
  if (!r.first) return undefined;
  if (protos && path && direction && !r.firstTruncated) {
    const decoded = protos.decode(path, direction, r.first);
    if (decoded) return decoded;
  }
  return protobufDump(r.first, 0, r.firstTruncated) ?? { $base64: r.first.toString('base64'), ...(r.firstTruncated ? { $truncated: true } : {}) };
}

/** Pseudo-headers apart, the rest as a HeaderMap (repeats as arrays). */
export function toMap(fields: readonly HeaderField[] | null): { pseudo: Record<string, string | undefined>; headers: HeaderMap } {
  const pseudo: Record<string, string | undefined> = {};
  const headers: HeaderMap = {};
  const n = fields === null ? 0 : fields.length;
  for (let i = 0; i < n; i++) {
    const [name, v0] = fields![i];
    if (name === null) continue; // unknown entry (capture began mid-connection): the record says hpackIncomplete
    if (name.charCodeAt(0) === 58 /* : */) { pseudo[name] = v0 ?? undefined; continue; }
    const prev = headers[name];
    const v = v0 ?? '';
    if (prev === undefined || !Object.hasOwn(headers, name)) {
      if (name === '__proto__') Object.defineProperty(headers, name, { value: v, enumerable: true, writable: true, configurable: true });
      else headers[name] = v;
    } else if (typeof prev === 'string') headers[name] = [prev, v];
    else prev.push(v);
  }
  return { pseudo, headers };
}
