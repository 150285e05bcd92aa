/**
 * The plugin proxy of Pipy's tutorial (router → logger → balancer → default 404) on flowtap's primitives:
 * a reverse proxy that streams request and response bodies (only the logger's capture, 256 KiB of each,
 * is held), handles Host and X-Forwarded-* as a reverse proxy should, balances over a service's targets
 * (skipping failed ones), answers `404 No handler` to what no route takes, and emits one access record per
 * exchange in the shape of Pipy's logger.
 */
import http from 'node:http';
import { EventEmitter } from 'eventemitter3';
import { brotliDecompressSync, constants, gunzipSync, inflateSync } from 'node:zlib';
import type { Balancer, Target } from './balancer.js';
import type { Router } from './router.js';

export interface AccessRecord {
  req: { protocol: string; method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string };
  res: { protocol: string; status: number; statusText: string; headers: Record<string, string | string[] | undefined>; body: string };
  /** ms since the epoch: the request's arrival, the response head's, the last byte's. */
  reqTime: number;
  resTime: number;
  endTime: number;
  remoteAddr: string;
  remotePort: number;
  localAddr: string;
  localPort: number;
  /** Which route, service and target served it (null for the default 404). */
  route: string | null;
  service: string | null;
  target: string | null;
}

export interface PluginProxyOptions {
  router: Router;
  balancer: Balancer;
  /** Body bytes of each direction kept for the access record (after decompression). Default 256 KiB. */
  captureBody?: number;
  /** Give up on a target that does not answer its head within this long, ms. Default 30 000. */
  upstreamTimeout?: number;
}

export interface PluginProxyEvents {
  access: (record: AccessRecord) => void;
}

/** RFC 9110 §7.6.1: fields for one connection only, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function forwardable(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const named = new Set(String(h.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Keeps the first `cap` bytes of a stream. */
class Capture {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}
  add(d: Buffer): void {
    if (this.size >= this.cap) return;
    const take = d.subarray(0, this.cap - this.size);
    this.parts.push(Buffer.from(take));
    this.size += take.length;
  }
  /** The captured bytes as text, decompressed (as far as they go) when the message says so. */
  text(encoding: string | string[] | undefined, cap: number): string {
    let b = Buffer.concat(this.parts);
    const enc = String(encoding ?? '').toLowerCase();
    try {
      const opts = { maxOutputLength: cap, finishFlush: constants.Z_SYNC_FLUSH };
      if (enc === 'gzip') b = gunzipSync(b, opts);
      else if (enc === 'deflate') b = inflateSync(b, opts);
      else if (enc === 'br') b = brotliDecompressSync(b, { maxOutputLength: cap, finishFlush: constants.BROTLI_OPERATION_FLUSH });
    } catch { /* a cut stream: keep what decoded, else the raw bytes */ }
    return b.subarray(0, cap).toString('utf8');
  }
}

export class PluginProxy extends EventEmitter<PluginProxyEvents> {
  private readonly cap: number;

  constructor(private readonly opts: PluginProxyOptions) {
    super();
    this.cap = opts.captureBody ?? 256 * 1024;
  }

  readonly handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const reqTime = Date.now();
    const reqBody = new Capture(this.cap);
    req.on('data', (d: Buffer) => reqBody.add(d));
    const route = this.opts.router.route(req.headers.host, req.url ?? '/');
    const target = route && this.opts.balancer.pick(route.service);
    if (!route || !target) {
      req.resume();
      req.on('end', () => {
        const body = route ? `No target for service ${route.service}` : 'No handler';
        res.writeHead(route ? 502 : 404, { 'content-type': 'text/plain' }).end(body);
        this.log(req, res, reqBody, body, reqTime, reqTime, route, null);
      });
      return;
    }
    this.forward(req, res, reqBody, reqTime, route, target, false);
  };

  private forward(req: http.IncomingMessage, res: http.ServerResponse, reqBody: Capture, reqTime: number,
    route: NonNullable<ReturnType<Router['route']>>, target: Target, retried: boolean): void {
    const headers = forwardable(req.headers);
    const client = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${client}` : client;
    headers['x-forwarded-host'] ??= req.headers.host;
    headers['x-forwarded-proto'] ??= 'http';
    const up = http.request({ host: target.host, port: target.port, method: req.method, path: route.target, headers, agent: target.agent, timeout: this.opts.upstreamTimeout ?? 30_000 });
    let bodySent = false;
    up.on('timeout', () => up.destroy(new Error('upstream timeout')));
    up.on('error', (e: NodeJS.ErrnoException) => {
      req.unpipe(up);
      this.opts.balancer.failed(target);
      if (res.headersSent) { res.destroy(); return; }
      // Nothing of the request went out (refused), or the connection broke before any answer on a request
      // that is safe to send twice (idempotent, no body sent) or on a kept-alive socket the target had
      // closed: another target of the service may take it (as nginx's proxy_next_upstream does).
      const reset = e.code === 'ECONNRESET' || e.message === 'socket hang up';
      const retryable = e.code === 'ECONNREFUSED' || (reset && (up.reusedSocket || IDEMPOTENT.has(req.method ?? '')));
      const next = !bodySent && !retried && retryable ? this.opts.balancer.pick(route.service) : null;
      if (next && next !== target) { this.forward(req, res, reqBody, reqTime, route, next, true); return; }
      const body = `Bad gateway: ${target.key}: ${e.code ?? e.message}`;
      req.resume();
      res.writeHead(502, { 'content-type': 'text/plain' }).end(body);
      this.log(req, res, reqBody, body, reqTime, Date.now(), route, target);
    });
    up.on('response', (ur) => {
      const resTime = Date.now();
      const resBody = new Capture(this.cap);
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, forwardable(ur.headers));
      // By hand rather than pipe(): one listener both captures and forwards, and pauses on backpressure.
      ur.on('data', (d: Buffer) => { resBody.add(d); if (!res.write(d)) ur.pause(); });
      res.on('drain', () => ur.resume());
      ur.on('end', () => {
        res.end();
        this.log(req, res, reqBody, resBody.text(ur.headers['content-encoding'], this.cap), reqTime, resTime, route, target, ur);
      });
      ur.on('error', () => res.destroy());
    });
    if (req.readableEnded) { up.end(); return; }
    req.once('data', () => { bodySent = true; });
    req.pipe(up);
  }

  private log(req: http.IncomingMessage, res: http.ServerResponse, reqBody: Capture, resText: string, reqTime: number, resTime: number,
    route: ReturnType<Router['route']>, target: Target | null, ur?: http.IncomingMessage): void {
    const url = req.url ?? '/';
    this.emit('access', {
      req: { protocol: `HTTP/${req.httpVersion}`, method: req.method ?? '', path: url, headers: req.headers, body: reqBody.text(req.headers['content-encoding'], this.cap) },
      res: { protocol: `HTTP/${ur?.httpVersion ?? '1.1'}`, status: res.statusCode, statusText: ur?.statusMessage ?? http.STATUS_CODES[res.statusCode] ?? '',
        headers: ur?.headers ?? res.getHeaders() as Record<string, string>, body: resText },
      reqTime, resTime, endTime: Date.now(),
      remoteAddr: req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '', remotePort: req.socket.remotePort ?? 0,
      localAddr: req.socket.localAddress?.replace(/^::ffff:/, '') ?? '', localPort: req.socket.localPort ?? 0,
      route: route?.route ?? null, service: route?.service ?? null, target: target?.key ?? null,
    });
  }
}
