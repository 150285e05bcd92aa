/**
 * REST → Dubbo: HTTP method + path (with `{param}` segments) mapped to a service, version, method,
 * parameter types and where each argument comes from; answers mapped back to HTTP by the Dubbo status byte
 * and response kind (the table in docs/gateways.md). Each HTTP exchange and its Dubbo call are emitted as
 * exchange records sharing a trace id (the caller's `traceparent`, or a new one, carried in the attachments).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { EventEmitter } from 'eventemitter3';
import { durationOf } from '../records/status.js';
import type { DubboRecord, Http1Record } from '../records/types.js';
import { DubboCallError, DubboClient, type DubboAnswer, type DubboClientOptions } from './dubbo-client.js';
import { descriptor, toJava, toJson } from './java-json.js';

export type ArgumentSource = { from: 'body'; field?: string } | { from: 'path'; name: string } | { from: 'query'; name: string };

export interface Rest2DubboRoute {
  /** HTTP method, e.g. POST. */
  method: string;
  /** Path with `{name}` segments: `/v1/books/{id}`. */
  path: string;
  service: string;
  version?: string | null;
  /** The Java method name. */
  call: string;
  /** Java parameter types: `java.lang.String`, `long`, `com.x.Book`, ... */
  parameterTypes: string[];
  /** Where each argument comes from, in order: a JSON body field (or the whole body), a path or query parameter. */
  args: ArgumentSource[];
  /** Per-call timeout, ms (else the client's). */
  timeout?: number;
}

export interface Rest2DubboConfig {
  routes: Rest2DubboRoute[];
  /** The provider and connection pool. */
  upstream: DubboClientOptions;
  /** Largest request body accepted, bytes. Default 1 MiB. */
  maxBody?: number;
}

export interface Rest2DubboEvents {
  /** The HTTP exchange and its Dubbo call (null when none was made), sharing a trace id. */
  record: (http: Http1Record, dubbo: DubboRecord | null) => void;
}

/** The HTTP status for a Dubbo answer or failure (docs/gateways.md). */
export function httpStatusForDubbo(a: DubboAnswer | DubboCallError): number {
  if (a instanceof DubboCallError) return a.kind === 'timeout' ? 504 : a.kind === 'encode' ? 400 : 503;
  if (a.status === 20) return a.kind === 'exception' ? 500 : a.kind === 'null' ? 204 : 200;
  switch (a.status) {
    case 30: case 31: return 504; // client / server timeout
    case 40: return 400; // bad request
    case 90: return 502; // client error (the gateway's side of the call)
    case 60: case 100: case 35: return 503; // service not found, thread pool exhausted, channel inactive
    default: return 502; // 25 serialization, 50 bad response, 70 service error, 80 server error
  }
}

interface Compiled { route: Rest2DubboRoute; parts: string[]; types: string }

export class Rest2Dubbo extends EventEmitter<Rest2DubboEvents> {
  readonly client: DubboClient;
  private readonly routes: Compiled[];
  private readonly maxBody: number;

  constructor(config: Rest2DubboConfig) {
    super();
    this.routes = config.routes.map((route) => {
      if (route.args.length !== route.parameterTypes.length) throw new Error(`route ${route.method} ${route.path}: ${route.args.length} argument sources for ${route.parameterTypes.length} parameter types`);
      return { route, parts: route.path.split('/'), types: descriptor(route.parameterTypes) };
    });
    this.client = new DubboClient(config.upstream);
    this.maxBody = config.maxBody ?? 1 << 20;
  }

  /** The request handler: `http.createServer(gateway.handler)`. */
  readonly handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = performance.timeOrigin + performance.now();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= this.maxBody) chunks.push(d);
    });
    req.on('end', () => { void this.serve(req, res, Buffer.concat(chunks), size, started); });
  };

  close(): void {
    this.client.close();
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, size: number, started: number): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const traceId = traceparent.split('-')[1] ?? null;
    const reply = (status: number, payload: unknown, dubbo: DubboRecord | null) => {
      const text = payload === undefined ? '' : JSON.stringify(payload);
      res.statusCode = status;
      if (text) res.setHeader('content-type', 'application/json');
      res.end(text);
      this.emit('record', this.httpRecord(req, url, status, body, size, text, started, traceId), dubbo);
    };
    const matches = this.routes.filter((r) => match(r.parts, url.pathname));
    if (matches.length === 0) { reply(404, { error: `no route for ${url.pathname}` }, null); return; }
    const hit = matches.find((r) => r.route.method.toUpperCase() === req.method);
    if (!hit) {
      res.setHeader('allow', matches.map((r) => r.route.method.toUpperCase()).join(', '));
      reply(405, { error: `${req.method} is not allowed on ${url.pathname} (use ${matches.map((r) => r.route.method.toUpperCase()).join(', ')})` }, null);
      return;
    }
    if (size > this.maxBody) { reply(413, { error: `the body is over ${this.maxBody} bytes` }, null); return; }
    const { route, parts, types } = hit;
    let json: unknown;
    if (route.args.some((a) => a.from === 'body')) {
      try { json = body.length ? JSON.parse(body.toString('utf8')) : undefined; } catch (e) {
        reply(400, { error: `the body is not JSON: ${(e as Error).message}` }, null);
        return;
      }
    }
    const params = pathParams(parts, url.pathname);
    let args: unknown[];
    try {
      args = route.args.map((src, i) => {
        const where = src.from === 'body' ? (src.field ? `body field "${src.field}"` : 'the body') : `${src.from} parameter "${src.name}"`;
        const v = src.from === 'path' ? params[src.name] : src.from === 'query' ? url.searchParams.get(src.name) ?? undefined
          : src.field ? (json as Record<string, unknown> | undefined)?.[src.field] : json;
        if (v === undefined) throw new Error(`${where} is missing`);
        return toJava(v, route.parameterTypes[i], where);
      });
    } catch (e) {
      reply(400, { error: (e as Error).message }, null);
      return;
    }
    const attachments: Record<string, string> = { traceparent };
    if (typeof req.headers.sw8 === 'string') attachments.sw8 = req.headers.sw8;
    const callStart = performance.timeOrigin + performance.now();
    let answer: DubboAnswer | DubboCallError;
    try {
      answer = await this.client.invoke({ service: route.service, version: route.version ?? null, method: route.call, parameterTypes: types, args, attachments, timeout: route.timeout });
    } catch (e) {
      answer = e instanceof DubboCallError ? e : new DubboCallError('unavailable', (e as Error).message);
    }
    const status = httpStatusForDubbo(answer);
    const dubbo = this.dubboRecord(route, types, attachments, answer, callStart, traceId);
    if (answer instanceof DubboCallError) reply(status, { error: answer.message }, dubbo);
    else if (answer.kind === 'value') reply(status, toJson(answer.value), dubbo);
    else if (answer.kind === 'null') reply(status, undefined, dubbo);
    else if (answer.kind === 'exception') reply(status, { exception: answer.exception?.class ?? null, message: answer.exception?.message ?? null }, dubbo);
    else reply(status, { error: answer.error ?? answer.statusName, dubboStatus: answer.status, statusName: answer.statusName }, dubbo);
  }

  private httpRecord(req: http.IncomingMessage, url: URL, status: number, body: Buffer, size: number, out: string, start: number, traceId: string | null): Http1Record {
    const end = performance.timeOrigin + performance.now();
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = v;
    return {
      protocol: 'http1', client: { ip: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 }, server: { ip: req.socket.localAddress ?? '', port: req.socket.localPort ?? 0 },
      connectionId: `rest2dubbo`, startTime: start, endTime: end, duration: durationOf(start, end),
      status: status >= 500 ? 'server_error' : status >= 400 ? 'client_error' : 'ok', code: status, endpoint: url.pathname,
      error: status >= 400 ? out : null, traceId, spanId: null, xRequestId: typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : null,
      forwardedFor: null, requestSize: size, responseSize: Buffer.byteLength(out),
      request: { method: req.method ?? null, target: req.url ?? null, path: url.pathname, host: req.headers.host ?? null, version: req.httpVersion, headers,
        bodySize: size, ...(body.length ? { body: body.subarray(0, 4096).toString('utf8') } : {}) },
      response: { statusCode: status, reason: http.STATUS_CODES[status] ?? '', version: '1.1', headers: {}, bodySize: Buffer.byteLength(out), ...(out ? { body: out.slice(0, 4096) } : {}) },
    };
  }

  private dubboRecord(route: Rest2DubboRoute, types: string, attachments: Record<string, string>, a: DubboAnswer | DubboCallError, start: number, traceId: string | null): DubboRecord {
    const end = performance.timeOrigin + performance.now();
    const failed = a instanceof DubboCallError;
    return {
      protocol: 'dubbo', client: { ip: '', port: 0 }, server: { ip: '', port: 0 }, connectionId: 'rest2dubbo', requestId: failed ? undefined : a.requestId,
      startTime: start, endTime: failed ? null : end, duration: failed ? null : durationOf(start, end),
      status: failed ? (a.kind === 'timeout' ? 'timeout' : 'server_error') : a.status === 20 ? (a.kind === 'exception' ? 'server_error' : 'ok') : [30, 35, 40, 90].includes(a.status) ? 'client_error' : 'server_error',
      code: failed ? null : a.status, endpoint: `${route.service}/${route.call}`,
      error: failed ? a.message : a.kind === 'exception' ? a.exception?.message ?? null : a.kind === 'error' ? a.error ?? null : null,
      traceId, spanId: null, xRequestId: null, requestSize: 0, responseSize: 0,
      request: { dubboVersion: '2.0.2', service: route.service, serviceVersion: route.version ?? null, method: route.call, parameterTypes: types, attachments, serializationId: 2, twoWay: true },
      response: failed ? null : { status: a.status, statusName: a.statusName, kind: a.kind, ...(a.attachments ? { attachments: a.attachments } : {}) },
    };
  }
}

function match(parts: string[], path: string): boolean {
  const p = path.split('/');
  return p.length === parts.length && parts.every((seg, i) => /^\{[^}]+\}$/.test(seg) || seg === p[i]);
}

function pathParams(parts: string[], path: string): Record<string, string> {
  const p = path.split('/');
  const out: Record<string, string> = {};
  parts.forEach((seg, i) => { const m = /^\{([^}]+)\}$/.exec(seg); if (m) out[m[1]] = decodeURIComponent(p[i]); });
  return out;
}
