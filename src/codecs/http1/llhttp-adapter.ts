/**
 * The one place flowtap touches Node internals: llhttp, as Node exposes it through `node:_http_common`.
 *
 * Why llhttp: it is the parser Node's own http module trusts, it is C, and it is strict (bare-LF line
 * endings, duplicate Content-Length, bad chunk sizes are errors) — the right oracle for traffic we report on.
 *
 * A fallback plugs in here and nowhere else: anything that can drive the `ParserHandler` below (undici's
 * llhttp WebAssembly build, or http-parser-js, which mirrors this binding's API) can replace
 * `HTTPParser` in `createLlhttp()`; the decoder above sees the same callbacks either way.
 *
 * Binding facts this file relies on (checked on Node 20):
 * - `execute(buf)` returns the bytes consumed, or an Error carrying `code`, `reason`, `bytesParsed`.
 *   On an upgrade (101, CONNECT, or our headers-complete returning 2) it returns early: the rest is tunnel.
 * - Headers arrive in `kOnHeadersComplete` (fast path) or, past 32 pairs, in batches through `kOnHeaders`
 *   with `kOnHeadersComplete` then getting `undefined`; trailers also arrive through `kOnHeaders`.
 * - `pause()` from inside a callback does not stop `execute()`, so message boundaries are measured by
 *   `WireMeter`, not taken from the parser.
 */
import { createRequire } from 'node:module';

export interface ParserHandler {
  onMessageBegin(): void;
  /** Return 0 to parse a body as framed, 1 to expect no body (response to HEAD), 2 to switch to a tunnel. */
  onHeadersComplete(
    rawHeaders: string[] | null,
    method: string | undefined,
    url: string | null,
    statusCode: number,
    statusMessage: string,
    upgrade: boolean,
    versionMajor: number,
    versionMinor: number,
  ): number;
  /** Header pairs past the fast-path limit (before headers complete) or trailers (after). */
  onHeaderBatch(rawHeaders: string[], url: string): void;
  onBody(chunk: Uint8Array): void;
  onMessageComplete(): void;
}

interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Uint8Array): number | (Error & { code: string; reason: string; bytesParsed: number });
  finish(): undefined | (Error & { code: string; reason: string; bytesParsed: number });
  close(): void;
  [key: number]: unknown;
}

interface NodeHttpCommon {
  HTTPParser: { new (): NodeHttpParser; REQUEST: number; RESPONSE: number; kOnMessageBegin: number;
    kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number; kOnExecute: number };
  methods: string[];
}

let common: NodeHttpCommon | undefined;
function load(): NodeHttpCommon {
  // Loaded on first use, so importing flowtap costs nothing until an HTTP/1 decoder exists.
  common ??= createRequire(import.meta.url)('_http_common') as NodeHttpCommon;
  return common;
}

/** A parser error, as a value. */
export interface ParserFailure {
  code: string;
  reason: string;
  /** Offset in the chunk just given where the parser stopped. */
  at: number;
}

export class Llhttp {
  private readonly parser: NodeHttpParser;
  private readonly type: number;
  /** Set when the last `execute`/`finish` failed. */
  failure: ParserFailure | null = null;

  constructor(
    readonly kind: 'request' | 'response',
    private readonly maxHeaderSize: number,
    handler: ParserHandler,
  ) {
    const { HTTPParser, methods } = load();
    this.type = kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE;
    const p = new HTTPParser();
    p[HTTPParser.kOnMessageBegin] = () => handler.onMessageBegin();
    p[HTTPParser.kOnHeaders] = (h: string[], url: string) => handler.onHeaderBatch(h, url);
    p[HTTPParser.kOnHeadersComplete] = (
      major: number, minor: number, headers: string[] | undefined, method: number | undefined,
      url: string | undefined, statusCode: number, statusMessage: string, upgrade: boolean,
    ) => handler.onHeadersComplete(headers ?? null, method === undefined ? undefined : methods[method],
      url ?? null, statusCode, statusMessage, upgrade, major, minor);
    p[HTTPParser.kOnBody] = (b: Uint8Array) => handler.onBody(b);
    p[HTTPParser.kOnMessageComplete] = () => handler.onMessageComplete();
    p[HTTPParser.kOnExecute] = () => {};
    this.parser = p;
    this.reset();
  }

  /** Forget all state: the next byte starts a new message. */
  reset(): void {
    if (this.closed) return;
    this.parser.initialize(this.type, {}, this.maxHeaderSize, 0);
    this.failure = null;
  }

  /** Bytes consumed (less than `buf.length` only on upgrade), or -1 with `failure` set. Never throws. */
  execute(buf: Uint8Array): number {
    if (this.closed) return buf.length;
    let r;
    try {
      r = this.parser.execute(buf);
    } catch (e) {
      // A throw can only come from our own callbacks; report it as a value like any parser error.
      this.failure = { code: 'INTERNAL', reason: `decoder callback failed: ${(e as Error).message}`, at: 0 };
      return -1;
    }
    if (typeof r === 'number') return r;
    this.failure = { code: r.code, reason: r.reason, at: r.bytesParsed };
    return -1;
  }

  /** EOF: completes a close-delimited message. Returns false with `failure` set on error. */
  finish(): boolean {
    if (this.closed) return true;
    let r;
    try {
      r = this.parser.finish();
    } catch (e) {
      this.failure = { code: 'INTERNAL', reason: `decoder callback failed: ${(e as Error).message}`, at: 0 };
      return false;
    }
    if (r === undefined) return true;
    this.failure = { code: r.code, reason: r.reason, at: r.bytesParsed };
    return false;
  }

  /**
   * Free the native parser. Node holds it (and so its callbacks, and everything they reach) by a strong
   * handle until close(): without this every decoder ever made stays in memory (measured: ~9 KB each).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.parser.close();
  }

  private closed = false;
}
