import type { DecodeError } from '../codecs/decoder.js';
import { Http2FrameDecoder, PREFACE } from '../codecs/http2/frames.js';
import type { HeaderField } from '../codecs/http2/hpack.js';
import type { HeaderMap } from '../codecs/http1/decoder.js';
import { GrpcMessageReader } from '../codecs/grpc/messages.js';
import { protobufDump } from '../codecs/grpc/protobuf-dump.js';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import { bodyFields, grpcStatusClass, httpStatusClass, type BodyFields, type ExchangeRecord, type ExchangeStatus } from '../record.js';
import { lowerCaseLookup, traceContext } from '../trace.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side, type UpgradeRequest } from './session.js';

export interface Http2RequestPart extends BodyFields {
  method: string | null;
  path: string | null;
  authority: string | null;
  scheme: string | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export interface Http2ResponsePart extends BodyFields {
  statusCode: number | null;
  headers: HeaderMap;
  trailers?: HeaderMap;
}

export type Http2Record = ExchangeRecord<Http2RequestPart, Http2ResponsePart> & { hpackIncomplete?: boolean };

export interface GrpcRequestPart {
  path: string | null;
  service: string | null;
  method: string | null;
  authority: string | null;
  metadata: HeaderMap;
  /** Length-prefixed messages the client sent. */
  messages: number;
  /** The first message: a schema-less protobuf dump ({ "1": ..., "2": ... }). */
  message?: unknown;
  /** grpc-timeout, in ms. */
  timeout?: number;
}

export interface GrpcResponsePart {
  httpStatus: number | null;
  grpcStatus: number | null;
  grpcMessage: string | null;
  metadata: HeaderMap;
  trailers: HeaderMap;
  messages: number;
  message?: unknown;
}

export type GrpcRecord = ExchangeRecord<GrpcRequestPart, GrpcResponsePart> & { hpackIncomplete?: boolean };

interface Half {
  fields: HeaderField[] | null;
  trailers: HeaderField[] | null;
  bytes: number;
  bodySize: number;
  body: Buffer[];
  captured: number;
  ended: boolean;
}

interface Stream {
  id: number;
  start: number;
  end: number;
  req: Half;
  res: Half;
  incomplete: boolean;
  reset: string | null;
  /** Bytes were lost from the capture while the stream was open: its record says so. */
  lost?: string;
  /** Set when the request's content-type is application/grpc*: messages are read instead of bodies. */
  grpc: { req: GrpcMessageReader; res: GrpcMessageReader | null } | null;
}

const SETTINGS_HEADER_TABLE_SIZE = 1;
const RST_CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

const half = (): Half => ({ fields: null, trailers: null, bytes: 0, bodySize: 0, body: [], captured: 0, ended: false });

/** Both directions of an HTTP/2 connection: streams become `http2` records. */
export class Http2Session extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  private readonly streams = new Map<number, Stream>();
  protected readonly decoders: Record<Side, Http2FrameDecoder>;
  private readonly cap: number;

  constructor(private readonly ctx: SessionContext) {
    super();
    this.cap = ctx.options.bodyCapture ?? 4096;
    const make = (side: Side): Http2FrameDecoder => new Http2FrameDecoder({
      side,
      midStream: ctx.options.midStream,
      onHeaders: (id, fields, endStream, incomplete, bytes, time) => this.headers(side, id, fields, endStream, incomplete, bytes, time),
      onData: (id, data, endStream, bytes, time) => this.data(side, id, data, endStream, bytes, time),
      onRstStream: (id, code, time) => this.rst(side, id, code, time),
      // A side's SETTINGS bound what the other side's encoder may use: apply it to the other decoder.
      onSettings: (s) => {
        const size = s.get(SETTINGS_HEADER_TABLE_SIZE);
        if (size !== undefined) this.decoders[side === 'client' ? 'server' : 'client'].hpack.setMaxTableSize(size);
      },
      onError: (e) => this.error(side, e),
      onGap: (length) => { for (const st of this.streams.values()) st.lost = `${length} bytes from the ${side} were lost from the capture while this stream was open`; },
    });
    this.decoders = { client: make('client'), server: make('server') };
  }

  /**
   * h2c (RFC 7540 §3.2): the HTTP/1.1 request that asked for the upgrade is stream 1, half-closed by the
   * client; the server answers it in HTTP/2. Its HTTP2-Settings header is the client's first SETTINGS.
   */
  upgradedFrom(req: UpgradeRequest): void {
    const fields: HeaderField[] = [[':method', req.method ?? 'GET'], [':scheme', 'http']];
    const host = req.headers.host;
    if (host !== undefined) fields.push([':authority', Array.isArray(host) ? host[0] : host]);
    fields.push([':path', req.target ?? '/']);
    let settings: string | null = null;
    for (const [name, v] of Object.entries(req.headers)) {
      if (name === 'http2-settings') settings = Array.isArray(v) ? v[0] : v;
      if (HOP_BY_HOP.has(name)) continue;
      for (const one of Array.isArray(v) ? v : [v]) fields.push([name, one]);
    }
    const s = this.stream(1, req.startTime);
    this.headers('client', 1, fields, true, false, req.size, req.startTime);
    s.req.bodySize = req.bodySize;
    if (req.body) s.req.body.push(req.body);
    const size = settings === null ? undefined : headerTableSize(settings);
    if (size !== undefined) this.decoders.server.hpack.setMaxTableSize(size);
  }

  close(time: number, reason?: string): void {
    for (const s of this.streams.values()) {
      // Seen to the end of what we have, not failed: a timeout with a note, unless a real failure is given.
      if (!reason) s.lost ??= 'the connection (or capture) ended before the stream did';
      this.emit(s, reason ?? null);
    }
    this.streams.clear();
  }

  expire(before: number): void {
    for (const s of this.streams.values()) {
      if (s.start < before && !s.res.fields) {
        this.emit(s, null);
        this.streams.delete(s.id);
      }
    }
  }

  oldestPending(): number {
    let t = Infinity;
    for (const s of this.streams.values()) if (s.start < t) t = s.start;
    return t;
  }

  private stream(id: number, time: number): Stream {
    let s = this.streams.get(id);
    if (!s) {
      s = { id, start: time, end: 0, req: half(), res: half(), incomplete: false, reset: null, grpc: null };
      this.streams.set(id, s);
    }
    return s;
  }

  private headers(side: Side, id: number, fields: HeaderField[], endStream: boolean, incomplete: boolean, bytes: number, time: number): void {
    if (id === 0) return;
    // A response on a stream we are not tracking answers one that was reset or finished (ignored, as HTTP/2
    // ignores frames on closed streams) — unless the capture began mid-connection, when its request came before.
    if (side === 'server' && !this.streams.has(id) && !this.ctx.options.midStream) return;
    const s = this.stream(id, time);
    const h = side === 'client' ? s.req : s.res;
    s.incomplete ||= incomplete;
    h.bytes += bytes;
    if (side === 'server') {
      const status = fields.find((f) => f[0] === ':status')?.[1];
      if (!h.fields && status && status.startsWith('1')) return; // 1xx interim: the final headers follow
    }
    if (!h.fields) {
      h.fields = fields;
      if (side === 'client' && /^application\/grpc/.test(value(fields, 'content-type') ?? '')) {
        s.grpc = { req: new GrpcMessageReader(value(fields, 'grpc-encoding'), this.cap), res: null };
      } else if (side === 'server' && s.grpc) {
        s.grpc.res = new GrpcMessageReader(value(fields, 'grpc-encoding'), this.cap);
      }
    } else h.trailers = fields;
    if (endStream) this.ended(s, h, time);
  }

  private data(side: Side, id: number, data: Uint8Array, endStream: boolean, bytes: number, time: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    const h = side === 'client' ? s.req : s.res;
    h.bytes += bytes;
    h.bodySize += data.length;
    if (s.grpc) {
      (side === 'client' ? s.grpc.req : s.grpc.res)?.write(data);
      if (endStream) this.ended(s, h, time);
      return;
    }
    const room = this.cap - h.captured;
    if (room > 0 && data.length > 0) {
      const part = Buffer.from(data.subarray(0, room)); // a copy: the frame payload is only valid now
      h.body.push(part);
      h.captured += part.length;
    }
    if (endStream) this.ended(s, h, time);
  }

  private rst(side: Side, id: number, code: number, time: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    s.reset = `stream reset by the ${side} (${RST_CODES[code] ?? code})`;
    s.end = time;
    this.streams.delete(id);
    this.emit(s, null);
  }

  private ended(s: Stream, h: Half, time: number): void {
    h.ended = true;
    if (h === s.res) s.end = time;
    if (s.res.ended) {
      this.streams.delete(s.id);
      this.emit(s, null);
    }
  }

  private error(side: Side, e: DecodeError): void {
    // Framing or HPACK state is gone for this direction: report open streams with the reason.
    for (const s of this.streams.values()) this.emit(s, `${side} ${e.code}: ${e.reason}`, true);
    this.streams.clear();
  }

  private emit(s: Stream, failure: string | null, parseError = false): void {
    if (s.grpc) { this.emitGrpc(s, failure, parseError); return; }
    const req = toMap(s.req.fields);
    const res = s.res.fields ? toMap(s.res.fields) : null;
    const statusText = res?.pseudo[':status'];
    const code = statusText ? Number(statusText) : null;
    const complete = s.res.ended && !s.reset;
    let status: ExchangeStatus;
    if (parseError) status = 'parse_error';
    else if (s.reset) status = code !== null && complete ? httpStatusClass(code) : s.reset.includes('client') ? 'client_error' : 'server_error';
    else if (code !== null) status = httpStatusClass(code);
    else status = failure ? 'server_error' : 'timeout';
    const path = req.pseudo[':path'] ?? null;
    const trace = traceContext(lowerCaseLookup(req.headers), this.ctx.options);
    const request: Http2RequestPart = {
      method: req.pseudo[':method'] ?? null, path, authority: req.pseudo[':authority'] ?? null, scheme: req.pseudo[':scheme'] ?? null,
      headers: req.headers, ...bodyFields(concat(s.req.body), s.req.bodySize),
    };
    if (s.req.trailers) request.trailers = toMap(s.req.trailers).headers;
    let response: Http2ResponsePart | null = null;
    if (res) {
      response = { statusCode: code, headers: res.headers, ...bodyFields(concat(s.res.body), s.res.bodySize) };
      if (s.res.trailers) response.trailers = toMap(s.res.trailers).headers;
    }
    const endTime = s.end > 0 && (complete || s.reset) ? s.end : null;
    const record: Http2Record = {
      protocol: 'http2',
      client: this.ctx.client,
      server: this.ctx.server,
      connectionId: this.ctx.connectionId,
      streamId: s.id,
      startTime: s.start,
      endTime,
      duration: endTime === null ? null : Math.round((endTime - s.start) * 1000) / 1000,
      status,
      code,
      endpoint: path === null ? '' : path.split('?')[0],
      error: s.reset ?? failure ?? s.lost ?? null,
      traceId: trace.traceId,
      spanId: trace.spanId,
      xRequestId: trace.xRequestId,
      forwardedFor: first(req.headers['x-forwarded-for'] ?? req.headers['x-real-ip']),
      requestSize: s.req.bytes,
      responseSize: s.res.bytes,
      request,
      response,
    };
    if (s.incomplete) record.hpackIncomplete = true;
    this.ctx.emit(record);
  }

  private emitGrpc(s: Stream, failure: string | null, parseError: boolean): void {
    const g = s.grpc!;
    const req = toMap(s.req.fields);
    const res = s.res.fields ? toMap(s.res.fields) : null;
    // Trailers-only: the response's only HEADERS carry grpc-status.
    const trailers = s.res.trailers ? toMap(s.res.trailers) : res && res.headers['grpc-status'] !== undefined ? res : null;
    const httpStatus = res?.pseudo[':status'] ? Number(res.pseudo[':status']) : null;
    const gs = trailers?.headers['grpc-status'];
    let grpcStatus = gs === undefined ? null : Number(Array.isArray(gs) ? gs[0] : gs);
    const gm = trailers?.headers['grpc-message'];
    const grpcMessage = percentDecode(gm === undefined ? null : Array.isArray(gm) ? gm[0] : gm);
    const timeout = grpcTimeout(value(s.req.fields ?? [], 'grpc-timeout'));
    let deadline = false;
    if (grpcStatus === null && s.reset?.includes('client') && s.reset.includes('CANCEL')) {
      // Clients enforce deadlines themselves and cancel the stream: a cancel at the deadline is DEADLINE_EXCEEDED.
      deadline = timeout !== undefined && s.end - s.start >= timeout * 0.9;
      grpcStatus = deadline ? 4 : 1; // DEADLINE_EXCEEDED : CANCELLED
    }
    const code = grpcStatus ?? httpStatus;
    let status: ExchangeStatus;
    if (parseError) status = 'parse_error';
    else if (grpcStatus !== null) status = grpcStatusClass(grpcStatus);
    else if (httpStatus !== null && httpStatus !== 200) status = httpStatusClass(httpStatus) === 'ok' ? 'server_error' : httpStatusClass(httpStatus);
    else if (s.reset) status = s.reset.includes('client') ? 'client_error' : 'server_error';
    else status = failure ? 'server_error' : 'timeout';
    const path = req.pseudo[':path'] ?? null;
    const [, service = null, method = null] = path ? /^\/([^/]+)\/([^/?]+)/.exec(path) ?? [] : [];
    const trace = traceContext(lowerCaseLookup(req.headers), this.ctx.options);
    const request: GrpcRequestPart = { path, service, method, authority: req.pseudo[':authority'] ?? null, metadata: req.headers, messages: g.req.count };
    const reqMessage = dump(g.req, this.ctx.options.protos, path, 'request');
    if (reqMessage !== undefined) request.message = reqMessage;
    if (timeout !== undefined) request.timeout = timeout;
    let response: GrpcResponsePart | null = null;
    if (res) {
      response = {
        httpStatus, grpcStatus, grpcMessage, metadata: trailers === res ? {} : res.headers, trailers: trailers?.headers ?? {},
        messages: g.res?.count ?? 0,
      };
      const resMessage = dump(g.res, this.ctx.options.protos, path, 'response');
      if (resMessage !== undefined) response.message = resMessage;
    }
    const complete = s.res.ended || s.reset !== null;
    const endTime = s.end > 0 && complete ? s.end : null;
    const record: GrpcRecord = {
      protocol: 'grpc',
      client: this.ctx.client, server: this.ctx.server, connectionId: this.ctx.connectionId, streamId: s.id,
      startTime: s.start, endTime, duration: endTime === null ? null : Math.round((endTime - s.start) * 1000) / 1000,
      status, code, endpoint: path === null ? '' : path.split('?')[0],
      error: deadline ? `deadline exceeded (grpc-timeout ${timeout} ms; ${s.reset})`
        : grpcStatus !== null && grpcStatus !== 0 ? grpcMessage ?? s.reset : s.reset ?? failure ?? s.lost ?? null,
      traceId: trace.traceId, spanId: trace.spanId, xRequestId: trace.xRequestId,
      requestSize: s.req.bytes, responseSize: s.res.bytes,
      request, response,
    };
    if (s.incomplete) record.hpackIncomplete = true;
    this.ctx.emit(record);
  }
}

/** HTTP/1.1 connection-level headers, which have no place in an HTTP/2 header block. */
const HOP_BY_HOP = new Set(['host', 'connection', 'upgrade', 'http2-settings', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te']);

/** SETTINGS_HEADER_TABLE_SIZE from an HTTP2-Settings header (base64url SETTINGS payload), if present. */
function headerTableSize(base64url: string): number | undefined {
  const payload = Buffer.from(base64url.trim(), 'base64url');
  let size: number | undefined;
  for (let at = 0; at + 6 <= payload.length; at += 6) {
    if (payload.readUInt16BE(at) === SETTINGS_HEADER_TABLE_SIZE) size = payload.readUInt32BE(at + 2);
  }
  return size;
}

/** A field's value in a decoded block (first occurrence). */
function value(fields: HeaderField[], name: string): string | null {
  for (const [n, v] of fields) if (n === name) return v;
  return null;
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

function toMap(fields: HeaderField[] | null): { pseudo: Record<string, string | undefined>; headers: HeaderMap } {
  const pseudo: Record<string, string | undefined> = {};
  const headers: HeaderMap = {};
  for (const [name, value] of fields ?? []) {
    if (name === null) continue; // unknown entry (capture began mid-connection): the record says hpackIncomplete
    if (name.startsWith(':')) { pseudo[name] = value ?? undefined; continue; }
    const prev = headers[name];
    const v = value ?? '';
    if (prev === undefined || !Object.hasOwn(headers, name)) {
      if (name === '__proto__') Object.defineProperty(headers, name, { value: v, enumerable: true, writable: true, configurable: true });
      else headers[name] = v;
    } else if (typeof prev === 'string') headers[name] = [prev, v];
    else prev.push(v);
  }
  return { pseudo, headers };
}

function concat(parts: Buffer[]): Buffer | null {
  return parts.length === 0 ? null : parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function first(v: string | string[] | undefined): string | null {
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
}

export const http2Protocol: ProtocolModule = {
  name: 'http2',
  classify(first) {
    // The client preface; or, joined mid-connection, a plausible first frame: SETTINGS on stream 0 (a server's
    // opening), or HEADERS whose first HPACK field is an indexed :method (a request) or :status (a response).
    const n = Math.min(first.length, PREFACE.length);
    if (Buffer.from(first.subarray(0, n)).equals(PREFACE.subarray(0, n))) return n === PREFACE.length ? 'request' : undefined;
    if (first.length < 10) return first[0] === 0 ? undefined : null;
    const len = (first[0] << 16) | (first[1] << 8) | first[2];
    const type = first[3];
    const flags = first[4];
    const stream = ((first[5] & 0x7f) << 24) | (first[6] << 16) | (first[7] << 8) | first[8];
    if (type === 4 && stream === 0 && len % 6 === 0 && len <= 60) return 'response';
    if (type !== 1 || stream === 0 || len > 16384 || len === 0) return null;
    let at = 9;
    if (flags & 0x8) at += 1; // PADDED: pad length
    if (flags & 0x20) at += 5; // PRIORITY
    if (at >= first.length) return undefined;
    const b = first[at];
    if (b === 0x82 || b === 0x83) return 'request';
    if (b >= 0x88 && b <= 0x8e) return 'response';
    return null;
  },
  create: (ctx) => new Http2Session(ctx),
  upgradeToken: 'h2c',
  upgrade(ctx, request) {
    const session = new Http2Session(ctx);
    session.upgradedFrom(request);
    return session;
  },
};
