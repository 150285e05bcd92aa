/**
 * The texts of a message head (request target, reason phrase, header names and values) from llhttp's span
 * callbacks, as strings with Node's binding's rules: a text reported in pieces is joined, values lose their
 * trailing whitespace. Offsets are into the chunk being executed, which the caller passes with each call.
 *
 * While a head is in one piece of input, its texts are only noted as spans, and once it completes they are
 * made from one string of the whole head, each a slice of it: one call into Node per head instead of one
 * per text. Measured on bench/http1's corpus: the strings alone, ~1.4x the heads per second of a
 * latin1Slice per text; the decoders, interleaved A/B against that, ~1.1x the messages per second; full
 * records ~1.02x. A head cut by the end of a piece, or a text reported in pieces, becomes strings there
 * (`settle`), and the rest of that message is built as strings as it comes.
 */

type Latin1Slicer = Buffer & { latin1Slice(start: number, end: number): string };

/** Names and values a head keeps as spans; a head with more makes strings as they come. */
export const MAX_SPANS = 256;

const isOws = (c: number) => c === 32 || c === 9;

/** Outside an execute (the adapter lends a buffer for each): no span fits, so texts are strings as they come. */
export const NO_SPANS = new Int32Array(0);

export class HeadTexts {
  urlText = '';
  statusText = '';
  /** Header names begun (the last one's value may still be coming). */
  fields = 0;
  private values = 0;
  private raw: string[] = [];
  /** The previous head's pairs: a keep-alive connection repeats most names and many values. */
  private prev: string[] = [];

  private spanning = true;
  /**
   * Start in the chunk and length of each name and value, in turn (2 * MAX_SPANS numbers). The adapter
   * lends one per execute depth (its `spanBuffers`): spans never outlive the piece being executed, so a
   * buffer of this size is not kept per connection (it was: ~5 KB more per idle connection, measured).
   */
  spans: Int32Array = NO_SPANS;
  private nspans = 0;
  private urlAt = -1;
  private urlLen = 0;
  private statusAt = -1;
  private statusLen = 0;

  /** A new message begins. */
  clear(): void {
    this.spanning = true;
    this.nspans = 0;
    this.urlAt = -1;
    this.statusAt = -1;
    this.raw = [];
    this.fields = 0;
    this.values = 0;
    this.urlText = '';
    this.statusText = '';
  }

  url(c: Buffer, from: number, len: number): void {
    if (this.spanning && this.urlAt < 0) { this.urlAt = from; this.urlLen = len; return; }
    this.settle(c);
    this.urlText += text(c, from, len);
  }

  status(c: Buffer, from: number, len: number): void {
    if (this.spanning && this.statusAt < 0) { this.statusAt = from; this.statusLen = len; return; }
    this.settle(c);
    this.statusText += text(c, from, len);
  }

  field(c: Buffer, from: number, len: number): void {
    if (this.spanning) {
      // A name starts after a value (or first); another name report would be this one continued.
      if ((this.nspans & 1) === 0 && 2 * this.nspans < this.spans.length) { this.span(from, len); this.fields++; return; }
      this.settle(c);
    }
    const raw = this.raw;
    if (this.fields === this.values) { raw.push(textLike(c, from, len, this.prev[raw.length])); this.fields++; }
    else raw[raw.length - 1] += text(c, from, len);
  }

  value(c: Buffer, from: number, len: number): void {
    if (this.spanning) {
      if ((this.nspans & 1) === 1) { this.span(from, len); this.values++; return; }
      this.settle(c);
    }
    const raw = this.raw;
    if (this.values !== this.fields) { raw.push(textLike(c, from, len, this.prevValue(raw.length))); this.values++; }
    else raw[raw.length - 1] += text(c, from, len);
  }

  /** The chunk `c` is going away: spans into it become strings. */
  settle(c: Buffer): void {
    if (!this.spanning) return;
    this.spanning = false;
    const sp = this.spans;
    const n = this.nspans;
    let lo = n > 0 ? sp[0] : 0x7fffffff;
    let hi = n > 0 ? sp[2 * n - 2] + sp[2 * n - 1] : -1;
    if (this.urlAt >= 0) { lo = Math.min(lo, this.urlAt); hi = Math.max(hi, this.urlAt + this.urlLen); }
    if (this.statusAt >= 0) { lo = Math.min(lo, this.statusAt); hi = Math.max(hi, this.statusAt + this.statusLen); }
    if (hi < 0) return;
    const head = text(c, lo, hi - lo);
    if (this.urlAt >= 0) this.urlText = head.slice(this.urlAt - lo, this.urlAt - lo + this.urlLen);
    if (this.statusAt >= 0) this.statusText = head.slice(this.statusAt - lo, this.statusAt - lo + this.statusLen);
    // While spanning nothing is in `raw` yet: span i is entry i.
    const raw = this.raw;
    const prev = this.prev;
    for (let i = 0; i < n; i++) {
      const at = sp[2 * i];
      const len = sp[2 * i + 1];
      // A name the previous head had at this place is that string again (no string made, and the header
      // map's caches hit by identity); values are new slices.
      const known = (i & 1) === 0 && i < prev.length ? prev[i] : undefined;
      raw.push(matches(c, at, len, known) ? known : head.slice(at - lo, at - lo + len));
    }
    // Consumed: nothing is pending until spans are noted again.
    this.nspans = 0;
    this.urlAt = -1;
    this.statusAt = -1;
  }

  /** Whether spans are waiting to become strings. */
  get pending(): boolean {
    return this.spanning && (this.nspans > 0 || this.urlAt >= 0 || this.statusAt >= 0);
  }

  /** The head is complete: its pairs, values trimmed. Trailers, if any, are noted afresh. */
  takeHead(c: Buffer): string[] {
    this.settle(c);
    const raw = this.take();
    // The next head's cache. Trimming may shorten a value in it: that value then misses (the cache compares
    // wire bytes), which is only a string made again, so the array is kept as it is, not copied.
    this.prev = raw.length <= 512 ? raw : raw.slice(0, 512);
    this.spanning = true;
    return trimValues(raw);
  }

  /** The message is complete: its trailer pairs, or null when it had none. */
  takeTrailers(c: Buffer): string[] | null {
    this.settle(c);
    return this.raw.length > 0 ? trimValues(this.take()) : null;
  }

  /** The pairs of a head that never completed known to be whole: every one a later header line began after. */
  wholePairs(): string[] {
    return trimValues(this.raw.slice(0, 2 * (this.fields - 1)));
  }

  private span(from: number, len: number): void {
    const i = this.nspans++;
    this.spans[2 * i] = from;
    this.spans[2 * i + 1] = len;
  }

  private take(): string[] {
    const raw = this.raw;
    if (raw.length % 2 === 1) raw.push('');
    this.raw = [];
    this.fields = 0;
    this.values = 0;
    return raw;
  }

  /** The previous head's value at this index, if the name before it is the same one (identity). */
  private prevValue(i: number): string | undefined {
    const p = this.prev;
    return i < p.length && p[i - 1] === this.raw[i - 1] ? p[i] : undefined;
  }
}

function text(c: Buffer, from: number, len: number): string {
  // Buffer#latin1Slice is what toString('latin1') calls after its argument checks; the offsets here are
  // llhttp's, inside the chunk, so the checks are not needed (measured: ~8% more messages/s).
  return (c as Latin1Slicer).latin1Slice(from, from + len);
}

/**
 * The text, reusing `known` when the bytes are the same: comparing a few bytes costs less than making a
 * string, and an identical string lets the decoder's key cache hit by identity.
 */
function textLike(c: Buffer, from: number, len: number, known: string | undefined): string {
  return matches(c, from, len, known) ? known : text(c, from, len);
}

/**
 * Whether `known` is the latin1 text of the `len` bytes of `c` at `at`; compared from the end, since what
 * changes between messages (counters, span ids, times) is mostly at the end.
 */
function matches(c: Buffer, at: number, len: number, known: string | undefined): known is string {
  if (known === undefined || known.length !== len) return false;
  let i = len - 1;
  while (i >= 0 && c[at + i] === known.charCodeAt(i)) i--;
  return i < 0;
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
