/**
 * The one small adapter in front of llhttp: llhttp as WebAssembly, undici's published build, taken from the
 * pinned `undici` package (`lib/llhttp/llhttp_simd-wasm.js`, else the plain one) — the parser Node's own
 * fetch runs, loaded through the package rather than copied.
 *
 * Why llhttp: it is the parser Node's http module trusts, and it is strict (bare-LF line endings, duplicate
 * Content-Length, bad chunk sizes are errors): the right oracle for traffic we report on.
 * Why undici's build rather than one built from Debian's node-llhttp C: it needs no compiler on a fresh
 * machine (the README's two commands stay two), it is the llhttp Node 20's own binding is (9.3; Debian's is
 * 8.1, undici 6's an older 9 with other error texts), and Node's own client exercises it every day. Why not
 * the binding Node's http module uses: it is internal (DEP0199), and its callbacks carry no offsets, so strings were built by the binding for every header and
 * message boundaries had to be found by a second scan.
 *
 * What this file does with the offsets:
 * - the head's texts are made from the caller's chunk by `head-texts.ts`, with Node's binding's rules
 *   (`HPE_HEADER_OVERFLOW` past `maxHeaderSize` bytes of start line and headers is checked here);
 * - message boundaries are exact: the parser pauses at each message's end and `llhttp_get_error_pos` says
 *   where, so a message's wire size is its first non-CR/LF byte to that point;
 * - callbacks go to the parser whose execute is running, and input is copied into a per-depth slot of one shared arena,
 *   so a callback may drive another parser (a response head releasing a held request) without clobbering
 *   the first one's bytes.
 */
import { HeadTexts, MAX_SPANS, NO_SPANS } from './head-texts.js';
import { cString, instantiate, memoryOf, methodName, type LlhttpWasm } from './llhttp-wasm.js';

export interface ParserHandler {
  onMessageBegin(): void;
  /**
   * The head is complete. `raw` is [name, value, ...] as sent. Return 0 to parse a body as framed, 1 to
   * expect no body (response to HEAD), 2 to switch to a tunnel after this message.
   */
  onHeadersComplete(raw: string[], method: string | undefined, url: string, statusCode: number,
    statusMessage: string, upgrade: boolean, versionMajor: number, versionMinor: number): number;
  /** A piece of body: `len` bytes at `at` in the caller's chunk (copy what you keep; no view is made). */
  onBody(chunk: Buffer, at: number, len: number): void;
  /** The message is complete; `trailers` as [name, value, ...], or null. */
  onMessageComplete(trailers: string[] | null): void;
  /**
   * Called after `onMessageComplete`, outside the parser's callbacks: the message was `size` bytes on the
   * wire and ended at `at` of the chunk being executed (0 at EOF).
   */
  onMessageEnd(size: number, at: number): void;
}

/** A parser error, as a value. */
export interface ParserFailure {
  code: string;
  reason: string;
  /** Offset in the chunk just given where the parser stopped. */
  at: number;
  /** Bytes of the failed message seen up to there (0 when none had begun). */
  size: number;
}

/** What the bytes of a head that never completed determine (`Llhttp.partialHead`). */
export interface PartialHead {
  method: string | undefined;
  url: string;
  statusCode: number;
  statusMessage: string;
  versionMajor: number;
  versionMinor: number;
  /** The header pairs known to be whole: every one a later header line began after. */
  raw: string[];
}

// llhttp's `llhttp_errno_t` values this file acts on.
const OK = 0;
const PAUSED = 21;
const PAUSED_UPGRADE = 22;
const USER = 24;

/** Input is handed to llhttp in slices of this size, each in its own slot of the arena. */
const SLICE = 64 * 1024;
/** Nesting depth the arena serves (a callback driving another parser is depth 2); deeper ones allocate. */
const SLOTS = 4;

let wasm: LlhttpWasm | null = null;
/**
 * The parser whose execute or finish is running: llhttp calls back only into that one, so callbacks need
 * no lookup by pointer. A callback that drives another parser sets it for that call and restores it after.
 */
let current: Llhttp | null = null;
/** How many executes are running (callbacks may start another on a different parser). */
let depth = 0;
/** The head spans of the execute at each depth (see `HeadTexts.spans`), like the arena's input slots. */
const spanBuffers: Int32Array[] = [];

function load(): LlhttpWasm {
  if (wasm) return wasm;
  wasm = instantiate({
    wasm_on_message_begin: () => current!.messageBegin(),
    wasm_on_url: (_: number, at: number, len: number) => current!.url(at, len),
    wasm_on_status: (_: number, at: number, len: number) => current!.status(at, len),
    wasm_on_header_field: (_: number, at: number, len: number) => current!.field(at, len),
    wasm_on_header_value: (_: number, at: number, len: number) => current!.value(at, len),
    wasm_on_headers_complete: (_: number, status: number, upgrade: number) => current!.headersComplete(status, upgrade !== 0),
    wasm_on_body: (_: number, at: number, len: number) => current!.body(at, len),
    wasm_on_message_complete: () => current!.messageComplete(),
  }, SLICE * SLOTS);
  return wasm;
}

export class Llhttp {
  private readonly w: LlhttpWasm;
  private readonly ptr: number;
  private closed = false;
  /** Set when the last `execute`/`finish` failed. */
  failure: ParserFailure | null = null;

  // Where the bytes being executed are: `chunk[base + i]` is at `input + i` in wasm memory.
  private chunk: Buffer = Buffer.alloc(0);
  private base = 0;
  private input = 0;
  /** Bytes executed before the current chunk, over the parser's life since the last reset. */
  private streamPos = 0;
  /** Stream position of the current message's first byte, or -1 while between messages. */
  private startPos = -1;
  private completed = false;
  private userFailure: { code: string; reason: string } | null = null;

  // The message being parsed.
  private readonly texts = new HeadTexts();
  private headerBytes = 0;
  private headsDone = false;

  constructor(readonly kind: 'request' | 'response', private readonly maxHeaderSize: number,
    private readonly handler: ParserHandler) {
    this.w = load();
    this.ptr = this.w.x.llhttp_alloc(kind === 'request' ? 1 : 2);
  }

  /** Forget all state: the next byte starts a new message. */
  reset(): void {
    if (this.closed) return;
    this.w.x.llhttp_reset(this.ptr);
    this.failure = null;
    this.startPos = -1;
    this.clearMessage();
  }

  /** Bytes consumed (less than `buf.length` only on upgrade), or -1 with `failure` set. Never throws. */
  execute(buf: Buffer): number {
    if (this.closed) return buf.length;
    const x = this.w.x;
    const own = depth >= SLOTS; // nested deeper than the arena serves: a slot of its own, freed below
    const slot = own ? x.malloc(SLICE) : this.w.arena + depth * SLICE;
    this.texts.spans = own ? new Int32Array(2 * MAX_SPANS) : (spanBuffers[depth] ??= new Int32Array(2 * MAX_SPANS));
    depth++;
    // Restored on the way out (locals, not an object: this runs per chunk).
    const chunk = this.chunk;
    const base = this.base;
    const input = this.input;
    try {
      this.chunk = buf;
      this.input = slot;
      for (let off = 0; off < buf.length; off += SLICE) {
        const piece = buf.length <= SLICE ? buf : buf.subarray(off, off + SLICE);
        memoryOf(this.w).set(piece, slot);
        this.base = off;
        const r = this.run(piece.length);
        // Spans point into this piece: a head it leaves unfinished keeps strings instead.
        if (this.texts.pending) this.texts.settle(buf);
        if (r !== piece.length) {
          if (r < 0) return -1;
          return off + r;
        }
        this.streamPos += piece.length;
      }
      return buf.length;
    } finally {
      depth--;
      if (own) x.free(slot);
      this.texts.spans = NO_SPANS;
      this.chunk = chunk; this.base = base; this.input = input;
    }
  }

  /** EOF: completes a close-delimited message. Returns false with `failure` set on error. */
  finish(): boolean {
    // Between messages nothing is owed (llhttp itself may not yet have left the paused message's end).
    if (this.closed || this.startPos < 0) return true;
    this.completed = false;
    let r: number;
    const outer = current;
    current = this;
    try {
      r = this.w.x.llhttp_finish(this.ptr);
    } catch (e) {
      this.failure = { code: 'INTERNAL', reason: `decoder callback failed: ${(e as Error).message}`, at: 0, size: this.seen(0) };
      return false;
    } finally {
      current = outer;
    }
    if (r === OK || r === PAUSED) {
      if (r === PAUSED) this.w.x.llhttp_resume(this.ptr);
      if (this.completed) this.ended(0);
      return true;
    }
    this.failure = { ...this.describe(r), at: 0, size: this.seen(0) };
    return false;
  }

  /** Bytes of the current message executed so far (0 between messages). */
  get partial(): number {
    return this.startPos < 0 ? 0 : this.streamPos - this.startPos;
  }

  /**
   * The head in progress, as far as it was seen: null when not even the start line is known to be whole.
   * The start line is whole once a header line began; a header pair once the next one began (the last
   * value seen may be cut, so it is left out rather than reported wrong).
   */
  partialHead(): PartialHead | null {
    if (this.closed || this.headsDone || this.startPos < 0 || this.texts.fields === 0) return null;
    const x = this.w.x;
    const raw = this.texts.wholePairs();
    return {
      method: this.kind === 'request' ? methodName(this.w, x.llhttp_get_method(this.ptr)) : undefined,
      url: this.texts.urlText, statusCode: x.llhttp_get_status_code(this.ptr), statusMessage: this.texts.statusText,
      versionMajor: this.w.major(this.ptr), versionMinor: this.w.minor(this.ptr), raw,
    };
  }

  /** Free the parser; anything executed after this is ignored. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.w.x.llhttp_free(this.ptr);
  }

  /** Executes `len` bytes at the slot, pausing at each message end; returns bytes consumed or -1. */
  private run(len: number): number {
    const x = this.w.x;
    let at = 0;
    while (at < len) {
      if (this.startPos < 0) this.seekStart(at, len);
      this.completed = false;
      let r: number;
      const outer = current;
      current = this;
      try {
        r = x.llhttp_execute(this.ptr, this.input + at, len - at);
      } catch (e) {
        // A throw can only come from our own callbacks; report it as a value like any parser error.
        this.failure = { code: 'INTERNAL', reason: `decoder callback failed: ${(e as Error).message}`, at: this.base + at,
          size: this.seen(at) };
        return -1;
      } finally {
        current = outer;
      }
      if (r === OK) return len;
      const pos = x.llhttp_get_error_pos(this.ptr) - this.input;
      if (r === PAUSED && this.completed) {
        x.llhttp_resume(this.ptr);
        this.ended(pos);
        at = pos;
        continue;
      }
      if (r === PAUSED_UPGRADE) {
        this.ended(pos);
        return pos;
      }
      this.failure = { ...this.describe(r), at: this.base + pos, size: this.seen(pos) };
      return -1;
    }
    return len;
  }

  private describe(r: number): { code: string; reason: string } {
    if (r === USER && this.userFailure) return this.userFailure;
    const x = this.w.x;
    return { code: cString(x, x.llhttp_errno_name(r)), reason: cString(x, x.llhttp_get_error_reason(this.ptr)) };
  }

  /** llhttp skips CR and LF between messages; the next other byte starts one. */
  private seekStart(from: number, len: number): void {
    const c = this.chunk;
    for (let i = from; i < len; i++) {
      const b = c[this.base + i];
      if (b !== 13 && b !== 10) { this.startPos = this.streamPos + i; return; }
    }
  }

  private seen(at: number): number {
    return this.startPos < 0 ? 0 : Math.max(0, this.streamPos + at - this.startPos);
  }

  private ended(at: number): void {
    const size = this.streamPos + at - this.startPos;
    this.startPos = -1;
    this.handler.onMessageEnd(size, this.base + at);
  }

  private clearMessage(): void {
    this.texts.clear();
    this.headerBytes = 0;
    this.headsDone = false;
    this.userFailure = null;
  }

  /** Node's rule: the start line and headers together stay under `maxHeaderSize`. */
  private track(len: number): number {
    this.headerBytes += len;
    if (this.headerBytes < this.maxHeaderSize) return 0;
    this.userFailure = { code: 'HPE_HEADER_OVERFLOW', reason: 'Header overflow' };
    return USER;
  }

  // ---- llhttp callbacks, called through the wasm imports ----

  messageBegin(): number {
    this.clearMessage();
    this.handler.onMessageBegin();
    return 0;
  }

  url(at: number, len: number): number {
    this.texts.url(this.chunk, this.base + at - this.input, len);
    return this.track(len);
  }

  status(at: number, len: number): number {
    this.texts.status(this.chunk, this.base + at - this.input, len);
    return this.track(len);
  }

  field(at: number, len: number): number {
    this.texts.field(this.chunk, this.base + at - this.input, len);
    return this.track(len);
  }

  value(at: number, len: number): number {
    this.texts.value(this.chunk, this.base + at - this.input, len);
    return this.track(len);
  }

  headersComplete(statusCode: number, upgrade: boolean): number {
    const x = this.w.x;
    const raw = this.texts.takeHead(this.chunk);
    this.headsDone = true;
    this.headerBytes = 0;
    const method = this.kind === 'request' ? methodName(this.w, x.llhttp_get_method(this.ptr)) : undefined;
    return this.handler.onHeadersComplete(raw, method, this.texts.urlText, statusCode, this.texts.statusText, upgrade,
      this.w.major(this.ptr), this.w.minor(this.ptr));
  }

  body(at: number, len: number): number {
    const from = this.base + at - this.input;
    this.handler.onBody(this.chunk, from, len);
    return 0;
  }

  messageComplete(): number {
    const trailers = this.headsDone ? this.texts.takeTrailers(this.chunk) : null;
    this.completed = true;
    this.handler.onMessageComplete(trailers);
    // Pause at the end so the caller learns where it is; an upgrade pauses there by itself.
    return this.w.x.llhttp_get_upgrade(this.ptr) ? 0 : PAUSED;
  }
}
