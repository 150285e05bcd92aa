/**
 * Replaying HTTP/2 and gRPC requests over node:http2 (h2c with prior knowledge): the recorded header list
 * minus connection-specific fields, the recorded DATA, trailers read back. The answer becomes an http2 or
 * grpc record through flowtap's record builders, with the replayed response kept as its wire.
 */
import http2 from 'node:http2';
import { GrpcMessageReader } from '../codecs/grpc/messages.js';
import type { Http2Message } from '../codecs/http2/decoder.js';
import { grpcRecord, http2Record } from '../records/http2.js';
import type { AnyRecord, Peer } from '../records/types.js';
import { attachWire, type Http2Half } from '../records/wire.js';
import { failed, type SendResult, type Target, type TargetOptions } from './connection.js';

/** RFC 9113 §8.2.2: fields that belong to one connection, never sent on a stream. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

const now = () => performance.timeOrigin + performance.now();
let nextConnection = 1;

export class Http2Target {
  private session: http2.ClientHttp2Session | null = null;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly peer: Peer;
  private readonly connectionId = `replay-h2-${nextConnection++}`;

  constructor(private readonly target: Target, private readonly concurrency: number, private readonly opts: TargetOptions) {
    this.peer = { ip: target.host, port: target.port };
  }

  get queued(): number {
    return this.waiting.length;
  }

  async send(protocol: 'http2' | 'grpc', req: Http2Half): Promise<SendResult> {
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await this.stream(protocol, req);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  close(): void {
    this.session?.destroy();
    this.session = null;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.destroyed && !this.session.closed) return this.session;
    const s = http2.connect(`http://${this.target.host}:${this.target.port}`);
    s.on('error', () => { if (this.session === s) this.session = null; });
    s.on('close', () => { if (this.session === s) this.session = null; });
    this.session = s;
    return s;
  }

  private stream(protocol: 'http2' | 'grpc', req: Http2Half): Promise<SendResult> {
    const started = now();
    const headers: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of req.headers) {
      if (CONNECTION_SPECIFIC.has(k) || (k === 'te' && v !== 'trailers')) continue;
      const prev = headers[k];
      headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
    }
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (r: SendResult) => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
      const timer = setTimeout(() => { stream?.close(http2.constants.NGHTTP2_CANCEL); done(failed(`no answer within ${this.opts.timeout} ms`, now() - started)); }, this.opts.timeout);
      let stream: http2.ClientHttp2Stream | undefined;
      try {
        const s = this.connect();
        stream = s.request(headers, { endStream: req.body.length === 0 && !req.trailers, waitForTrailers: !!req.trailers });
      } catch (e) {
        done(failed((e as Error).message, now() - started));
        return;
      }
      const resHeaders: [string, string][] = [];
      let resTrailers: [string, string][] | null = null;
      const data: Buffer[] = [];
      let size = 0;
      stream.on('response', (h) => { for (const [k, v] of Object.entries(h)) for (const one of [v].flat()) if (one !== undefined) resHeaders.push([k, String(one)]); });
      stream.on('trailers', (h) => { resTrailers = []; for (const [k, v] of Object.entries(h)) for (const one of [v].flat()) if (one !== undefined) resTrailers.push([k, String(one)]); });
      stream.on('data', (d: Buffer) => { size += d.length; if (size <= this.opts.keepRaw) data.push(d); });
      stream.on('wantTrailers', () => { stream!.sendTrailers(Object.fromEntries(req.trailers ?? [])); });
      stream.on('error', (e) => done(failed(`${this.target.host}:${this.target.port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, now() - started)));
      stream.on('close', () => {
        if (settled) return;
        if (resHeaders.length === 0) { done(failed(`stream closed without an answer (code ${stream!.rstCode})`, now() - started)); return; }
        const end = now();
        const res: Http2Half = { headers: resHeaders, trailers: resTrailers, body: Buffer.concat(data), bodyCut: size > this.opts.keepRaw };
        const record = this.record(protocol, req, res, started, end, size);
        done({ code: record.code, answer: { http2: res, cut: res.bodyCut }, error: null, latency: end - started, record: () => record });
      });
      if (req.body.length > 0) {
        if (req.trailers) stream.write(req.body);
        else stream.end(req.body);
      }
    });
  }

  /** The replayed exchange as flowtap's record builders make it. */
  private record(protocol: 'http2' | 'grpc', req: Http2Half, res: Http2Half, start: number, end: number, resSize: number): AnyRecord {
    const message = (h: Http2Half, bodySize: number, t: number): Http2Message => {
      const m: Http2Message = {
        streamId: 1, fields: h.headers, trailers: h.trailers, size: 0, bodySize, body: null, grpc: null, hpackIncomplete: false,
        startTime: t, endTime: t, ended: true,
      };
      if (protocol === 'grpc') {
        m.grpc = new GrpcMessageReader(h.headers.find(([k]) => k === 'grpc-encoding')?.[1] ?? null, this.opts.bodyCapture ?? 4096);
        m.grpc.write(h.body);
      } else m.body = h.body.subarray(0, this.opts.bodyCapture ?? 4096);
      return m;
    };
    const ctx = { client: { ip: '', port: 0 }, server: this.peer, connectionId: this.connectionId, options: {}, protos: this.opts.protos };
    const x = {
      streamId: 1, start, req: message(req, req.body.length, start), res: message(res, resSize, end), reset: null, end, failure: null,
      parseError: false, lost: null, gapped: false,
    };
    const r = protocol === 'grpc' ? grpcRecord(ctx, x) : http2Record(ctx, x);
    return attachWire(r, { protocol, request: req, response: res });
  }
}
