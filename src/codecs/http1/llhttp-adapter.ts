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
 * - strings are built here once per span, from the caller's chunk, with Node's binding's rules (a header
 *   split across chunks is joined; trailing whitespace of values is dropped; `HPE_HEADER_OVERFLOW` past
 *   `maxHeaderSize` bytes of start line and headers);
 * - message boundaries are exact: the parser pauses at each message's end and `llhttp_get_error_pos` says
 *   where, so a message's wire size is its first non-CR/LF byte to that point;
 * - callbacks go to the parser whose execute is running, and input is copied into a per-depth slot of one shared arena,
 *   so a callback may drive another parser (a response head releasing a held request) without clobbering
 *   the first one's bytes.
 */
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

const isOws = (c: number) => c === 32 || c === 9;

type Latin1Slicer = Buffer & { latin1Slice(start: number, end: number): string };

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
  private raw: string[] = [];
  /** The previous message's pairs: a keep-alive connection repeats most names and many values. */
  private prev: string[] = [];
  private fields = 0;
  private values = 0;
  private urlText = '';
  private statusText = '';
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
    depth++;
    // Restored on the way out (locals, not an object: this runs per chunk).
    const chunk = this.chunk;
    const base = this.base;
    const input = this.input;
    try {
      this.chunk = buf;
      this.input = slot;
      for (let off = 0; off < buf.length; off += SLICE) {
        const piece = buf.subarray(off, off + SLICE);
        memoryOf(this.w).set(piece, slot);
        this.base = off;
        const r = this.run(piece.length);
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
    if (this.closed || this.headsDone || this.startPos < 0 || this.fields === 0) return null;
    const x = this.w.x;
    const raw = trimValues(this.raw.slice(0, 2 * (this.fields - 1)));
    return {
      method: this.kind === 'request' ? methodName(this.w, x.llhttp_get_method(this.ptr)) : undefined,
      url: this.urlText, statusCode: x.llhttp_get_status_code(this.ptr), statusMessage: this.statusText,
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
    this.raw = [];
    this.fields = 0;
    this.values = 0;
    this.urlText = '';
    this.statusText = '';
    this.headerBytes = 0;
    this.headsDone = false;
    this.userFailure = null;
  }

  private text(at: number, len: number): string {
    const from = this.base + at - this.input;
    // Buffer#latin1Slice is what toString('latin1') calls after its argument checks; the offsets here are
    // llhttp's, inside the chunk, so the checks are not needed (measured: ~8% more messages/s).
    return (this.chunk as Latin1Slicer).latin1Slice(from, from + len);
  }

  /**
   * The span's text, reusing `known` when the bytes are the same: comparing a few bytes costs less than
   * making a string, and an identical string lets the decoder's key cache hit by identity.
   */
  private textLike(at: number, len: number, known: string | undefined): string {
    if (known !== undefined && known.length === len) {
      const c = this.chunk;
      const from = this.base + at - this.input;
      // From the end: what changes between messages (counters, span ids, times) is mostly at the end.
      let i = len - 1;
      while (i >= 0 && c[from + i] === known.charCodeAt(i)) i--;
      if (i < 0) return known;
    }
    return this.text(at, len);
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
    this.urlText += this.text(at, len);
    return this.track(len);
  }

  status(at: number, len: number): number {
    this.statusText += this.text(at, len);
    return this.track(len);
  }

  field(at: number, len: number): number {
    const raw = this.raw;
    if (this.fields === this.values) { raw.push(this.textLike(at, len, this.prev[raw.length])); this.fields++; }
    else raw[raw.length - 1] += this.text(at, len);
    return this.track(len);
  }

  value(at: number, len: number): number {
    const raw = this.raw;
    if (this.values !== this.fields) { raw.push(this.textLike(at, len, this.prevValue(raw.length))); this.values++; }
    else raw[raw.length - 1] += this.text(at, len);
    return this.track(len);
  }

  /** The previous message's value at this index, if the name before it is the same one (identity). */
  private prevValue(i: number): string | undefined {
    const p = this.prev;
    return i < p.length && p[i - 1] === this.raw[i - 1] ? p[i] : undefined;
  }

  headersComplete(statusCode: number, upgrade: boolean): number {
    const x = this.w.x;
    const raw = this.takeHeaders();
    this.headsDone = true;
    this.headerBytes = 0;
    const method = this.kind === 'request' ? methodName(this.w, x.llhttp_get_method(this.ptr)) : undefined;
    return this.handler.onHeadersComplete(raw, method, this.urlText, statusCode, this.statusText, upgrade,
      this.w.major(this.ptr), this.w.minor(this.ptr));
  }

  body(at: number, len: number): number {
    const from = this.base + at - this.input;
    this.handler.onBody(this.chunk, from, len);
    return 0;
  }

  messageComplete(): number {
    const trailers = this.headsDone && this.raw.length > 0 ? this.takeHeaders() : null;
    this.completed = true;
    this.handler.onMessageComplete(trailers);
    // Pause at the end so the caller learns where it is; an upgrade pauses there by itself.
    return this.w.x.llhttp_get_upgrade(this.ptr) ? 0 : PAUSED;
  }

  /** The pairs so far, values trimmed; the head's become the next message's cache. */
  private takeHeaders(): string[] {
    const raw = this.raw;
    if (raw.length % 2 === 1) raw.push('');
    // The next message's cache. Trimming below may shorten a value in it: that value then misses (the cache
    // compares wire bytes), which is only a string made again, so the array is kept as it is, not copied.
    if (!this.headsDone) this.prev = raw.length <= 512 ? raw : raw.slice(0, 512);
    this.raw = [];
    this.fields = 0;
    this.values = 0;
    return trimValues(raw);
  }
}

/** Values without trailing whitespace, in place (Node's binding gives them so). */
function trimValues(raw: string[]): string[] {
  for (let i = 1; i < raw.length; i += 2) {
    const v = raw[i];
    const n = v.length;
    if (n > 0 && isOws(v.charCodeAt(n - 1))) {
      let e = n - 1;
      while (e > 0 && isOws(v.charCodeAt(e - 1))) e--;
      raw[i] = v.slice(0, e);
    }
  }
  return raw;
}
