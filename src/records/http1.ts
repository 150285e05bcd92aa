/** http1 records from decoded HTTP/1 messages: a pure function of one exchange. */
import type { Http1Message } from '../codecs/http1/decoder.js';
import { lowerCaseLookup, traceContext } from '../trace.js';
import { joined, withBody } from './body.js';
import type { RecordContext } from './context.js';
import { durationOf, httpStatusClass } from './status.js';
import type { HeaderMap, Http1Record, Http1RequestPart, Http1ResponsePart } from './types.js';

export interface Http1Exchange {
  req: Http1Message | null;
  res: Http1Message | null;
  /** The response was decoded to its end. */
  resDone: boolean;
  /** 1xx answers (100 Continue, 103 Early Hints) before the final response. */
  interim: readonly number[];
  /** Decoding failed: a parse_error saying this. */
  error: string | null;
  /** Why no response can come (no response was seen): a server_error saying this. */
  failure: string | null;
  /** It timed out: whatever response came later is not part of it. */
  expired: boolean;
  /** The connection closed with it open (0: it completed). */
  closedAt: number;
  start: number;
}

export function http1Record(ctx: RecordContext, x: Http1Exchange): Http1Record {
  const req = x.req;
  const res = x.res && !x.expired ? x.res : null;
  let error = x.error;
  // The connection closed in the middle of the response: the head is good, the rest never came.
  if (error === null && x.closedAt && res && !x.resDone) error = 'the connection ended before the response did';
  const failure = res ? null : x.failure;
  const complete = res !== null && x.resDone && res.endTime > 0;
  const endTime = complete ? res.endTime : null;
  const start = req?.startTime ?? res?.startTime ?? x.start;
  const status = error !== null ? 'parse_error'
    : res ? httpStatusClass(res.statusCode!)
    : failure ? 'server_error'
    : 'timeout';
  const headers: HeaderMap = req?.headers ?? {};
  const trace = traceContext(lowerCaseLookup(headers), ctx.options);
  const request = requestPart(req);
  return {
    protocol: 'http1',
    client: ctx.client,
    server: ctx.server,
    connectionId: ctx.connectionId,
    startTime: start,
    endTime,
    duration: durationOf(start, endTime),
    status,
    code: res?.statusCode ?? null,
    endpoint: request.path ?? '',
    error: error ?? failure ?? (res && !complete && x.closedAt ? 'the connection ended before the response did' : null),
    traceId: trace.traceId,
    spanId: trace.spanId,
    xRequestId: trace.xRequestId,
    forwardedFor: joined(headers['x-forwarded-for'] ?? headers['x-real-ip']),
    requestSize: req?.size ?? 0,
    responseSize: res?.size ?? 0,
    request,
    response: res ? responsePart(res, x.interim) : null,
  };
}

function requestPart(m: Http1Message | null): Http1RequestPart {
  if (!m) return { method: null, target: null, path: null, host: null, version: null, headers: {}, bodySize: 0 };
  const target = m.target ?? '';
  const part: Http1RequestPart = withBody({
    method: m.method ?? null,
    target,
    path: pathOf(target, m.method),
    host: joined(m.headers.host) ?? hostOf(target),
    version: m.version,
    headers: m.headers,
    bodySize: 0,
  }, m.body, m.bodySize);
  if (m.trailers) part.trailers = m.trailers;
  return part;
}

function responsePart(m: Http1Message, interim: readonly number[]): Http1ResponsePart {
  const part: Http1ResponsePart = withBody({
    statusCode: m.statusCode!,
    reason: m.reason ?? '',
    version: m.version,
    headers: m.headers,
    bodySize: 0,
  }, m.body, m.bodySize);
  if (m.trailers) part.trailers = m.trailers;
  if (interim.length > 0) part.interim = [...interim];
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
  return withoutQuery(t);
}

/** A request target or path without its query. */
export function withoutQuery(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

function hostOf(target: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(target);
  return m ? m[1] : null;
}
