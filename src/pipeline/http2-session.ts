/**
 * An HTTP/2 connection: each direction's decoder assembles stream messages; the pairer pairs them by stream
 * id; records/http2.ts builds `http2` or `grpc` records. What is left here is what only a connection knows:
 * SETTINGS from one side bound the other side's HPACK table, a RST_STREAM from either side ends a stream,
 * and the h2c upgrade's stream 1.
 */
import type { DecodeError } from '../codecs/decoder.js';
import { grpcContentType, Http2Decoder, type Http2Message } from '../codecs/http2/decoder.js';
import type { HeaderField } from '../codecs/http2/hpack.js';
import { grpcRecord, http2Record, type Http2Exchange, type Http2RecordContext } from '../records/http2.js';
import type { GrpcRecord, Http2Record } from '../records/types.js';
import { attachWire, type Http2Half } from '../records/wire.js';
import { Pairer, type Exchange } from './pairer.js';
import { classifyHttp2 } from './http2-classify.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side, type UpgradeRequest } from './session.js';

interface StreamState {
  reset: string | null;
  end: number;
  lost: string | null;
  gapped: boolean;
  parseError: boolean;
}

type StreamExchange = Exchange<Http2Message, Http2Message, StreamState>;

const SETTINGS_HEADER_TABLE_SIZE = 1;
const RST_CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

export class Http2Session extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  protected readonly decoders: Record<Side, Http2Decoder>;
  private readonly pairer: Pairer<Http2Message, Http2Message, StreamState, Http2Record | GrpcRecord>;
  /** What gRPC records are built with: the connection's context and its schemas, made once, not per record. */
  private readonly grpcCtx: Http2RecordContext;

  constructor(private readonly ctx: SessionContext) {
    super();
    this.grpcCtx = { client: ctx.client, server: ctx.server, connectionId: ctx.connectionId, options: ctx.options, protos: ctx.options.protos };
    const { bodyCapture, midStream, keepRaw } = ctx.options;
    this.pairer = new Pairer({
      ordered: false,
      data: (): StreamState => ({ reset: null, end: 0, lost: null, gapped: false, parseError: false }),
      build: (x) => this.build(x),
      emit: ctx.emit,
    });
    const make = (side: Side): Http2Decoder => new Http2Decoder({
      side, midStream, bodyCapture, keepRaw,
      // A response is read as gRPC messages when its request was gRPC (whatever the response says). A
      // response head seen before its request's (a capture's two directions out of order) goes by its own
      // content-type.
      isGrpc: side === 'server' ? (id, fields) => {
        const req = this.pairer.get(String(id))?.req;
        return req ? req.grpc != null : grpcContentType(fields);
      } : undefined,
      onHead: (m) => this.head(side, m),
      onMessage: (m) => this.message(side, m),
      onReset: (id, code, time) => this.reset(side, id, code, time),
      // A side's SETTINGS bound what the other side's encoder may use: apply it to the other decoder.
      onSettings: (s) => {
        const size = s.get(SETTINGS_HEADER_TABLE_SIZE);
        if (size !== undefined) this.decoders[other(side)].hpack.setMaxTableSize(size);
      },
      onError: (e) => this.error(side, e),
      onLoss: (length) => {
        for (const x of this.pairer.pending()) {
          x.data.lost = `${length} bytes from the ${side} were lost from the capture while this stream was open`;
          x.data.gapped = true;
        }
      },
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
    const m: Http2Message = {
      streamId: 1, fields, trailers: null, size: req.size, bodySize: req.bodySize, body: req.body, grpc: null,
      hpackIncomplete: false, startTime: req.startTime, endTime: req.startTime, ended: true,
    };
    const x = this.pairer.open(req.startTime, m, '1');
    x.reqDone = true;
    const size = settings === null ? undefined : headerTableSize(settings);
    if (size !== undefined) this.decoders.server.hpack.setMaxTableSize(size);
  }

  close(time: number, reason?: string): void {
    for (const x of this.pairer.pending()) {
      this.attachPartial(x);
      // Seen to the end of what we have, not failed: a timeout with a note, unless a real failure is given.
      if (!reason) x.data.lost ??= 'the connection (or capture) ended before the stream did';
    }
    this.pairer.close(time, reason);
    this.decoders.client.close();
    this.decoders.server.close();
  }

  expire(before: number): void {
    for (const x of this.pairer.pending()) if (x.start < before && !x.res) this.attachPartial(x);
    this.pairer.expire(before);
  }

  oldestPending(): number {
    return this.pairer.oldestPending();
  }

  private head(side: Side, m: Http2Message): void {
    const key = String(m.streamId);
    if (side === 'client') {
      if (!this.pairer.get(key)) this.pairer.open(m.startTime, m, key);
      return;
    }
    const x = this.pairer.get(key);
    if (x) { x.res = m; return; }
    // A response on a stream we are not tracking answers one that was reset, finished or timed out (ignored,
    // as HTTP/2 ignores frames on closed streams) — unless the capture began mid-connection, when its
    // request came before.
    if (this.pairer.absorbLate(key) || !this.ctx.options.midStream) return;
    this.pairer.open(m.startTime, null, key).res = m;
  }

  private message(side: Side, m: Http2Message): void {
    const x = this.pairer.get(String(m.streamId));
    if (!x) return;
    if (side === 'client') {
      if (x.req === null || x.req === m) { x.req = m; x.reqDone = true; }
      return;
    }
    if (x.res !== null && x.res !== m) return; // a message of an earlier use of the id
    x.res = m;
    x.data.end = m.endTime;
    // The server ended the stream: the exchange is over, whether or not the client finished sending.
    if (!x.reqDone) this.attachPartial(x);
    x.reqDone = true;
    x.resDone = true;
    this.pairer.settle(x);
  }

  private reset(side: Side, id: number, code: number, time: number): void {
    const x = this.pairer.get(String(id));
    if (!x) return;
    this.attachPartial(x);
    x.data.reset = `stream reset by the ${side} (${RST_CODES[code] ?? code})`;
    x.data.end = time;
    this.pairer.emitNow(x);
  }

  private error(side: Side, e: DecodeError): void {
    // Framing or HPACK state is unsure for this direction: report open streams with the reason.
    for (const x of this.pairer.pending()) {
      this.attachPartial(x);
      x.failure = `${side} ${e.code}: ${e.reason}`;
      x.data.parseError = true;
      this.pairer.emitNow(x);
    }
  }

  /** The parts of a stream still being assembled by the decoders, as they stand. */
  private attachPartial(x: StreamExchange): void {
    const id = Number(x.key);
    if (!x.reqDone) x.req = this.decoders.client.take(id) ?? x.req;
    if (!x.resDone) x.res = this.decoders.server.take(id) ?? x.res;
  }

  private build(x: StreamExchange): Http2Record | GrpcRecord {
    const s: Http2Exchange = {
      streamId: Number(x.key), start: x.start, req: x.req, res: x.res, reset: x.data.reset, end: x.data.end,
      failure: x.failure, parseError: x.data.parseError, lost: x.data.lost, gapped: x.data.gapped,
    };
    const r = x.req?.grpc ? grpcRecord(this.grpcCtx, s) : http2Record(this.ctx, s);
    if (!this.ctx.options.keepRaw) return r;
    return attachWire(r, { protocol: r.protocol, request: half(x.req), response: half(x.res) });
  }
}

const other = (side: Side): Side => (side === 'client' ? 'server' : 'client');

/** One direction of a stream as the recording keeps it (fields HPACK could not resolve are left out). */
function half(m: Http2Message | null): Http2Half | null {
  if (!m?.fields) return null;
  const known = (f: HeaderField[]) => f.filter((x): x is [string, string] => x[0] !== null && x[1] !== null);
  return {
    headers: known(m.fields), trailers: m.trailers ? known(m.trailers) : null,
    body: m.data ? Buffer.concat(m.data) : Buffer.alloc(0), bodyCut: m.dataCut ?? false,
  };
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

export const http2Protocol: ProtocolModule = {
  name: 'http2',
  classify: classifyHttp2,
  create: (ctx) => new Http2Session(ctx),
  upgradeToken: 'h2c',
  upgrade(ctx, request) {
    const session = new Http2Session(ctx);
    session.upgradedFrom(request);
    return session;
  },
};

