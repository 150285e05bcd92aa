/**
 * An HTTP/1 connection: the request and response decoders give messages; the pairer pairs them in order
 * (HTTP/1 answers in order) and records/http1.ts builds the records. What is left here is HTTP/1's own:
 * a response's framing depends on its request's method, 1xx answers come before the final one, a decode
 * error still holds its place in the order, and an accepted Upgrade hands the connection to another session.
 */
import { Http1Decoder, type Http1Message } from '../codecs/http1/decoder.js';
import type { DecodeError } from '../codecs/decoder.js';
import { joined } from '../records/body.js';
import { http1Record } from '../records/http1.js';
import { attachWire } from '../records/wire.js';
import type { Http1Record } from '../records/types.js';
import { Pairer, type Exchange } from './pairer.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side } from './session.js';

type Slot = Exchange<Http1Message, Http1Message, { interim: number[] }>;

export class Http1Session extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  private readonly pairer: Pairer<Http1Message, Http1Message, { interim: number[] }, Http1Record>;
  private readonly requests: Http1Decoder;
  private readonly responses: Http1Decoder;
  protected readonly decoders: Record<Side, Http1Decoder>;
  /** The session that took over after an accepted protocol upgrade (h2c), if flowtap decodes that protocol. */
  private switched: ProtocolSession | null = null;

  constructor(private readonly ctx: SessionContext) {
    super();
    const { bodyCapture, maxHeaderSize, midStream, keepRaw } = ctx.options;
    this.pairer = new Pairer({
      ordered: true,
      data: (): { interim: number[] } => ({ interim: [] }),
      build: (x) => {
        const r = http1Record(ctx, {
          req: x.req, res: x.res, resDone: x.resDone, interim: x.data.interim, error: x.error, failure: x.failure,
          expired: x.expired, closedAt: x.closedAt, start: x.start,
        });
        if (!keepRaw) return r;
        const res = r.response ? x.res : null;
        return attachWire(r, { protocol: 'http1', request: x.req?.raw ?? null, response: res?.raw ?? null,
          requestCut: x.req?.rawCut ?? false, responseCut: res?.rawCut ?? false });
      },
      emit: ctx.emit,
    });
    this.requests = new Http1Decoder({
      type: 'request', bodyCapture, maxHeaderSize, midStream, keepRaw,
      onHead: (m) => { this.pairer.open(m.startTime, m); },
      onMessage: (m) => {
        const x = this.pairer.first((e) => e.req === m);
        if (x) {
          x.reqDone = true;
          if (m.missing) x.error ??= missingBody('request', m);
        }
        this.pairer.settle();
      },
      onError: (e) => this.requestError(e),
      onTunnel: (c, t) => { this.tunnelBytes.client += c.length; this.switched?.write('client', c, t); },
    });
    this.responses = new Http1Decoder({
      type: 'response', bodyCapture, maxHeaderSize, midStream, keepRaw,
      requestMethod: () => this.answering()?.req?.method,
      onHead: (m) => this.responseHead(m),
      onMessage: (m) => {
        if (m.interim) return;
        const x = this.pairer.first((e) => e.res === m);
        if (x) {
          x.resDone = true;
          if (m.missing) x.error ??= missingBody('response', m);
        }
        this.pairer.settle();
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
    // Messages still in progress are reported as far as they were seen, before their exchanges close.
    const how = reason ? `the connection ended (${reason})` : 'the capture ended';
    this.requests.cut(time, how);
    this.responses.cut(time, how);
    this.switched?.close(time, reason);
    this.pairer.close(time, reason);
    // The connection is over: free the parsers.
    this.requests.close();
    this.responses.close();
  }

  expire(before: number): void {
    this.pairer.expire(before);
    this.switched?.expire(before);
  }

  oldestPending(): number {
    return Math.min(this.requests.messageStart, this.responses.messageStart, this.switched?.oldestPending() ?? Infinity,
      this.pairer.oldestPending());
  }

  /** The exchange the next final response answers. */
  private answering(): Slot | undefined {
    return this.pairer.first((e) => !e.res && !(e.resDone && e.error));
  }

  private responseHead(m: Http1Message): void {
    // A response whose request we never saw (capture started mid-exchange) is still worth a record.
    let x = this.answering();
    if (!x) {
      x = this.pairer.open(m.startTime, null);
      x.reqDone = true;
    }
    if (m.interim) { x.data.interim.push(m.statusCode!); return; }
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
    const last = this.pairer.last();
    const reason = `request ${e.code}: ${e.reason}`;
    if (last && last.req && !last.reqDone) {
      last.reqDone = true;
      last.error = reason;
    } else {
      // Keep a place in the queue: the server's answer to the bad request (often a 400) pairs with it.
      const x = this.pairer.open(e.startTime, null);
      x.reqDone = true;
      x.error = reason;
    }
    this.pairer.settle();
  }

  private responseError(e: DecodeError): void {
    const reason = `response ${e.code}: ${e.reason}`;
    let x = this.pairer.first((q) => !q.resDone);
    if (x) {
      x.error ??= reason;
      if (x.res && x.res.endTime === 0) x.res.endTime = e.endTime;
    } else {
      x = this.pairer.open(e.startTime, null);
      x.reqDone = true;
      x.error = reason;
    }
    x.resDone = true;
    this.pairer.settle();
  }
}

function missingBody(side: string, m: Http1Message): string {
  return `${side} body incomplete: ${m.missing} of its ${m.bodySize} bytes are missing from the capture`;
}

const METHOD = /^[A-Z]{3,10} /;
const H2_PREFACE_LINE = 'PRI * HTTP/2';

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
    // "PRI * HT" is a method and a space, and also the start of the HTTP/2 preface: wait until it is not.
    if (s.startsWith(H2_PREFACE_LINE)) return null;
    if (H2_PREFACE_LINE.startsWith(s)) return undefined;
    if (METHOD.test(s)) return 'request';
    return null;
  },
  create: (ctx) => new Http1Session(ctx),
};
