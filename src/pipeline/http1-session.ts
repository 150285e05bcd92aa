import { Http1Decoder, type HeaderMap, type Http1Message } from '../codecs/http1/decoder.js';
import type { DecodeError } from '../codecs/decoder.js';
import {
  bodyFields, httpStatusClass, type Http1Record, type Http1RequestPart, type Http1ResponsePart,
} from '../record.js';
import { lowerCaseLookup, traceContext } from '../trace.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side } from './session.js';

/** One exchange in flight, in request order (HTTP/1 answers in order). */
interface Exchange {
  req: Http1Message | null;
  reqDone: boolean;
  res: Http1Message | null;
  resDone: boolean;
  interim: number[];
  error: string | null;
  /** A timeout record was already emitted; a late response is absorbed, not reported twice. */
  expired: boolean;
  /** Why no response can come (upstream unreachable, reset): a server_error, not a timeout. */
  failure?: string;
  start: number;
}

export class Http1Session extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  private readonly queue: Exchange[] = [];
  private readonly requests: Http1Decoder;
  private readonly responses: Http1Decoder;
  protected readonly decoders: Record<Side, Http1Decoder>;
  /** The session that took over after an accepted protocol upgrade (h2c), if flowtap decodes that protocol. */
  private switched: ProtocolSession | null = null;

  constructor(private readonly ctx: SessionContext) {
    super();
    const { bodyCapture, maxHeaderSize, midStream } = ctx.options;
    this.requests = new Http1Decoder({
      type: 'request', bodyCapture, maxHeaderSize, midStream,
      onHead: (m) => this.queue.push({
        req: m, reqDone: false, res: null, resDone: false, interim: [], error: null, expired: false, start: m.startTime,
      }),
      onMessage: (m) => {
        const x = this.queue.find((e) => e.req === m);
        if (x) x.reqDone = true;
        this.drain();
      },
      onError: (e) => this.requestError(e),
      onTunnel: (c, t) => { this.tunnelBytes.client += c.length; this.switched?.write('client', c, t); },
    });
    this.responses = new Http1Decoder({
      type: 'response', bodyCapture, maxHeaderSize, midStream,
      requestMethod: () => this.answering()?.req?.method,
      onHead: (m) => this.responseHead(m),
      onMessage: (m) => {
        if (m.interim) return;
        const x = this.queue.find((e) => e.res === m);
        if (x) x.resDone = true;
        this.drain();
      },
      onError: (e) => this.responseError(e),
      onTunnel: (c, t) => { this.tunnelBytes.server += c.length; this.switched?.write('server', c, t); },
    });
    this.decoders = { client: this.requests, server: this.responses };
  }

  override gap(side: Side, length: number, time: number): void {
    if (this.switched) this.switched.gap(side, length, time);
    else super.gap(side, length, time);
  }

  override end(side: Side, time: number): void {
    super.end(side, time);
    this.switched?.end(side, time);
  }

  close(time: number, reason?: string): void {
    this.switched?.close(time, reason);
    for (const x of this.queue.splice(0)) {
      if (x.expired && !x.res) continue;
      if (!x.res && reason) x.failure = reason;
      else if (!x.resDone && x.res && !x.error) x.error = 'the connection ended before the response did';
      this.emit(x, time);
    }
    // The connection is over: free the native parsers (Node keeps them, and all they reach, until closed).
    this.requests.close();
    this.responses.close();
  }

  expire(before: number): void {
    for (const x of this.queue) {
      if (x.start >= before) break;
      if (!x.res && !x.expired && !x.error) {
        this.emit(x, before);
        x.expired = true;
      }
    }
    this.drain();
    this.switched?.expire(before);
  }

  oldestPending(): number {
    const t = Math.min(this.requests.messageStart, this.responses.messageStart, this.switched?.oldestPending() ?? Infinity);
    for (const x of this.queue) if (!x.expired) return Math.min(t, x.start);
    return t;
  }

  /** The exchange the next final response answers. */
  private answering(): Exchange | undefined {
    return this.queue.find((e) => !e.res && !(e.resDone && e.error));
  }

  private responseHead(m: Http1Message): void {
    let x = this.answering();
    if (!x) {
      // A response whose request we never saw (capture started mid-exchange): still worth a record.
      x = { req: null, reqDone: true, res: null, resDone: false, interim: [], error: null, expired: false, start: m.startTime };
      this.queue.push(x);
    }
    if (m.interim) { x.interim.push(m.statusCode!); return; }
    x.res = m;
    if (x.req?.upgrade) {
      // Before the held request bytes are released: they belong to the new protocol's session.
      if (m.upgrade && m.statusCode === 101) this.switchTo(x.req, m);
      this.requests.upgradeAnswered(m.upgrade);
    }
  }

  /** 101 Switching Protocols: hand later bytes to the protocol the server agreed to, if flowtap decodes it. */
  private switchTo(req: Http1Message, res: Http1Message): void {
    const token = (joined(res.headers.upgrade) ?? joined(req.headers.upgrade) ?? '').split(',')[0].trim().split('/')[0];
    if (!token || !this.ctx.upgrade) return;
    this.switched = this.ctx.upgrade(token, {
      method: req.method ?? null, target: req.target ?? null, headers: req.headers, body: req.body, bodySize: req.bodySize,
      size: req.size, startTime: req.startTime,
    });
  }

  private requestError(e: DecodeError): void {
    const last = this.queue[this.queue.length - 1];
    const reason = `${e.code}: ${e.reason}`;
    if (last && last.req && !last.reqDone) {
      last.reqDone = true;
      last.error = `request ${reason}`;
    } else {
      // Keep a place in the queue: the server's answer to the bad request (often a 400) pairs with it.
      this.queue.push({ req: null, reqDone: true, res: null, resDone: false, interim: [], error: `request ${reason}`,
        expired: false, start: e.startTime });
    }
    this.drain();
  }

  private responseError(e: DecodeError): void {
    const reason = `response ${e.code}: ${e.reason}`;
    const x = this.queue.find((q) => !q.resDone) ?? null;
    if (x) {
      x.resDone = true;
      x.error ??= reason;
      if (x.res && x.res.endTime === 0) x.res.endTime = e.endTime;
    } else {
      this.queue.push({ req: null, reqDone: true, res: null, resDone: true, interim: [], error: reason, expired: false,
        start: e.startTime });
    }
    this.drain();
  }

  /** Emit finished exchanges from the head of the queue, in order. */
  private drain(): void {
    while (this.queue.length > 0) {
      const x = this.queue[0];
      if (x.expired && x.resDone) { this.queue.shift(); continue; } // late answer to a timed-out request
      if (!(x.reqDone && x.resDone) || x.expired) return;
      this.queue.shift();
      this.emit(x, 0);
    }
  }

  private emit(x: Exchange, closedAt: number): void {
    const req = x.req;
    const res = x.res && !x.expired ? x.res : null;
    const complete = res !== null && x.resDone && res.endTime > 0;
    const endTime = complete ? res.endTime : null;
    const start = req?.startTime ?? res?.startTime ?? x.start;
    const status = x.error !== null ? 'parse_error'
      : res ? httpStatusClass(res.statusCode!)
      : x.failure ? 'server_error'
      : 'timeout';
    const headers: HeaderMap = req?.headers ?? {};
    const trace = traceContext(lowerCaseLookup(headers), this.ctx.options);
    const request = requestPart(req);
    const record: Http1Record = {
      protocol: 'http1',
      client: this.ctx.client,
      server: this.ctx.server,
      connectionId: this.ctx.connectionId,
      startTime: start,
      endTime,
      duration: endTime === null ? null : Math.round((endTime - start) * 1000) / 1000, // µs: float noise is not information
      status,
      code: res?.statusCode ?? null,
      endpoint: request.path ?? '',
      error: x.error ?? x.failure ?? (res && !complete && closedAt ? 'the connection ended before the response did' : null),
      traceId: trace.traceId,
      spanId: trace.spanId,
      xRequestId: trace.xRequestId,
      forwardedFor: joined(headers['x-forwarded-for'] ?? headers['x-real-ip']),
      requestSize: req?.size ?? 0,
      responseSize: res?.size ?? 0,
      request,
      response: res ? responsePart(res, x.interim) : null,
    };
    this.ctx.emit(record);
  }
}

function requestPart(m: Http1Message | null): Http1RequestPart {
  if (!m) return { method: null, target: null, path: null, host: null, version: null, headers: {}, bodySize: 0 };
  const target = m.target ?? '';
  const part: Http1RequestPart = {
    method: m.method ?? null,
    target,
    path: pathOf(target, m.method),
    host: joined(m.headers.host) ?? hostOf(target),
    version: m.version,
    headers: m.headers,
    ...bodyFields(m.body, m.bodySize),
  };
  if (m.trailers) part.trailers = m.trailers;
  return part;
}

function responsePart(m: Http1Message, interim: number[]): Http1ResponsePart {
  const part: Http1ResponsePart = {
    statusCode: m.statusCode!,
    reason: m.reason ?? '',
    version: m.version,
    headers: m.headers,
    ...bodyFields(m.body, m.bodySize),
  };
  if (m.trailers) part.trailers = m.trailers;
  if (interim.length > 0) part.interim = interim;
  return part;
}

/** The request path without the query; absolute-form targets (proxies) give their path. */
function pathOf(target: string, method: string | undefined): string {
  if (method === 'CONNECT') return target;
  let t = target;
  if (!t.startsWith('/') && /^[a-z][a-z0-9+.-]*:\/\//i.test(t)) {
    const slash = t.indexOf('/', t.indexOf('//') + 2);
    t = slash < 0 ? '/' : t.slice(slash);
  }
  const q = t.indexOf('?');
  return q < 0 ? t : t.slice(0, q);
}

function hostOf(target: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(target);
  return m ? m[1] : null;
}

function joined(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

const METHOD = /^[A-Z]{3,10} /;

export const http1Protocol: ProtocolModule = {
  name: 'http1',
  classify(first) {
    if (first.length < 8) {
      // Could still become "HTTP/1." or "METHOD ": ask for more unless it already cannot.
      const s = Buffer.from(first).toString('latin1');
      return /^(H(T(T(P(\/)?)?)?)?|[A-Z]{0,10} ?)$/.test(s) ? undefined : null;
    }
    const s = Buffer.from(first.subarray(0, 16)).toString('latin1');
    if (s.startsWith('HTTP/1.')) return 'response';
    if (METHOD.test(s) && !s.startsWith('PRI * HTTP/2')) return 'request';
    return null;
  },
  create: (ctx) => new Http1Session(ctx),
};
