/**
 * A recorded request as replay filters and rewrites see it: method, target and headers, whatever the
 * protocol, edited in place so that what no rule touches goes out exactly as recorded (header order, case
 * and line endings of HTTP/1 kept).
 */
import type { Http2Half } from '../records/wire.js';
import { readRequestBody } from '../codecs/dubbo/body.js';
import type { Payload } from './payload.js';

export interface RequestView {
  readonly protocol: Payload['protocol'];
  /** HTTP method; gRPC/HTTP/2 `:method`; Dubbo: `INVOKE`. */
  method(): string;
  /** HTTP request-target (path and query); HTTP/2 `:path`; Dubbo `service/method`. */
  target(): string;
  setTarget(t: string): void;
  /** The first value of a header (case-insensitive); Dubbo: an attachment. */
  header(name: string): string | undefined;
  setHeader(name: string, value: string): void;
  /** The host the request names (Host / :authority), for `--keep-host`. */
  setHost(host: string): void;
}

// ---- HTTP/1: the raw head, line by line ----

export class Http1Request implements RequestView {
  readonly protocol = 'http1' as const;
  /** The request line and header lines, split only once a header is asked for or changed. */
  private lines: string[] | null = null;
  private readonly head: string;
  private readonly firstLine: string;
  private readonly eol: string;
  private readonly bodyAt: number;
  private edited = false;

  constructor(private readonly raw: Buffer) {
    let end = raw.indexOf('\r\n\r\n');
    let eol = '\r\n';
    if (end < 0) { end = raw.indexOf('\n\n'); eol = '\n'; }
    if (end < 0) throw new Error('not an HTTP/1 request: no end of head');
    this.eol = eol;
    this.head = raw.toString('latin1', 0, end);
    const nl = this.head.indexOf(eol);
    this.firstLine = nl < 0 ? this.head : this.head.slice(0, nl);
    this.bodyAt = end + eol.length * 2;
    if (!/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(this.firstLine)) throw new Error(`not an HTTP/1 request line: ${JSON.stringify(this.firstLine.slice(0, 60))}`);
  }

  method(): string {
    return this.requestLine().slice(0, this.requestLine().indexOf(' '));
  }

  target(): string {
    const l = this.requestLine();
    return l.slice(l.indexOf(' ') + 1, l.lastIndexOf(' '));
  }

  setTarget(t: string): void {
    const lines = this.split();
    const l = lines[0];
    lines[0] = `${l.slice(0, l.indexOf(' '))} ${t}${l.slice(l.lastIndexOf(' '))}`;
    this.edited = true;
  }

  header(name: string): string | undefined {
    const lines = this.split();
    const i = find(lines, name);
    return i < 0 ? undefined : lines[i].slice(lines[i].indexOf(':') + 1).trim();
  }

  setHeader(name: string, value: string): void {
    const lines = this.split();
    const i = find(lines, name);
    if (i < 0) lines.push(`${name}: ${value}`);
    else lines[i] = `${lines[i].slice(0, lines[i].indexOf(':'))}: ${value}`;
    this.edited = true;
  }

  setHost(host: string): void {
    this.setHeader('Host', host);
  }

  /** The request bytes: the recorded ones when nothing was edited. */
  bytes(): Buffer {
    if (!this.edited || !this.lines) return this.raw;
    return Buffer.concat([Buffer.from(this.lines.join(this.eol) + this.eol + this.eol, 'latin1'), this.raw.subarray(this.bodyAt)]);
  }

  private requestLine(): string {
    return this.lines ? this.lines[0] : this.firstLine;
  }

  private split(): string[] {
    return (this.lines ??= this.head.split(this.eol));
  }
}

function find(lines: string[], name: string): number {
  const n = name.toLowerCase();
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i].indexOf(':');
    if (c === n.length || (c > n.length && lines[i].slice(n.length, c).trim() === '')) {
      if (lines[i].slice(0, n.length).toLowerCase() === n) return i;
    }
  }
  return -1;
}

// ---- HTTP/2 and gRPC: the header list ----

export class Http2Request implements RequestView {
  constructor(readonly protocol: 'http2' | 'grpc', readonly half: Http2Half) {}

  method(): string {
    return this.header(':method') ?? 'GET';
  }

  target(): string {
    return this.header(':path') ?? '/';
  }

  setTarget(t: string): void {
    this.setHeader(':path', t);
  }

  header(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.half.headers.find(([k]) => k === n)?.[1];
  }

  setHeader(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.half.headers.findIndex(([k]) => k === n);
    if (i >= 0) this.half.headers[i] = [n, value];
    else this.half.headers.push([n, value]);
  }

  setHost(host: string): void {
    this.setHeader(':authority', host);
  }
}

// ---- Dubbo: read-only view of the frame (replay re-ids it; Hessian bodies are not rewritten) ----

export class DubboRequest implements RequestView {
  readonly protocol = 'dubbo' as const;
  private readonly service: string;
  private readonly attachments: Record<string, unknown>;

  constructor(readonly raw: Buffer) {
    if (raw.length < 16 || raw[0] !== 0xda || raw[1] !== 0xbb) throw new Error('not a Dubbo frame');
    const r = readRequestBody(raw, 16, raw.length);
    this.service = r.body ? `${r.body.service ?? ''}/${r.body.method ?? ''}` : '';
    this.attachments = r.body?.attachments ?? {};
  }

  method(): string { return 'INVOKE'; }
  target(): string { return this.service; }
  setTarget(): void { throw new Error('Dubbo requests cannot be rewritten (their Hessian body is replayed as recorded)'); }
  header(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const [k, v] of Object.entries(this.attachments)) if (k.toLowerCase() === n) return String(v);
    return undefined;
  }
  setHeader(): void { throw new Error('Dubbo attachments cannot be rewritten'); }
  setHost(): void { /* a Dubbo frame names no host */ }
}

export function requestView(p: Payload): RequestView {
  if (p.protocol === 'http1') return new Http1Request(p.raw!);
  if (p.protocol === 'dubbo') return new DubboRequest(p.raw!);
  return new Http2Request(p.protocol, p.http2!);
}
