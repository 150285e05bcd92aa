/**
 * HPACK decoding (RFC 7541), written here rather than taken from hpack.js: hpack.js is several times slower
 * (measured in bench/http2), dormant since 2016, and cannot decode a block whose indices point into a
 * dynamic table it never saw — which is every capture that starts mid-connection.
 *
 * - Huffman: a byte-at-a-time state machine built once from the RFC's code table (a byte completes at most
 *   two symbols, since the shortest code is 5 bits), so decoding does one table read per input octet.
 * - Strings: Huffman output that is all ASCII (tracked while decoding, at no extra pass) becomes a one-byte
 *   string without UTF-8 decoding; dynamic table hits return the stored [name, value] pair.
 * - Dynamic table: a ring buffer per direction, FIFO eviction by octet size.
 * - Mid-connection: an index into entries inserted before we started watching yields `null` and marks the
 *   block `incomplete`; the rest of the block still decodes, and entries inserted since stay resolvable
 *   (eviction is FIFO, so the unknown older entries are the first to go).
 * - Errors are values, and bounded: integers past 2^31, strings past the block, table size updates past
 *   the settings limit.
 */
import { HUFFMAN_CODES, STATIC_TABLE } from './rfc7541-tables.js';

export type HeaderField = [name: string | null, value: string | null];

export interface HpackBlock {
  headers: HeaderField[];
  /** Some index pointed at a dynamic entry from before decoding began: those fields are null. */
  incomplete: boolean;
}

export interface HpackFailure {
  error: string;
}

const ENTRY_OVERHEAD = 32;
const STATIC_COUNT = STATIC_TABLE.length; // 61

// ---- Huffman state machine ----

/**
 * One entry per (state, input octet), packed in one word: bits 0–7 the next state, bits 8–9 how many symbols
 * the octet completes (0–2), bits 10–17 and 18–25 those symbols, bit 26 "invalid" (EOS inside a string).
 */
const HUFF = new Int32Array(256 * 256);
const FAIL = 1 << 26;
/** A state where the bits so far could be (a prefix of) the EOS padding: all ones, fewer than 8. */
const HUFF_ACCEPT = new Uint8Array(256);

(function build() {
  // Trie over the canonical codes: internal nodes numbered from 0 (the root).
  const child: number[][] = [[-1, -1]];
  const leaf = new Map<number, number>(); // (node * 2 + bit) → symbol
  HUFFMAN_CODES.forEach(([bits, code], sym) => {
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      if (i === 0) { leaf.set(node * 2 + bit, sym); break; }
      if (child[node][bit] < 0) { child[node][bit] = child.length; child.push([-1, -1]); }
      node = child[node][bit];
    }
  });
  // Accepting states: reached from the root by up to 7 one-bits.
  for (let n = 0, d = 0; d < 8 && n >= 0; d++) { HUFF_ACCEPT[n] = 1; n = child[n][1]; }
  for (let st = 0; st < child.length; st++) {
    for (let octet = 0; octet < 256; octet++) {
      let node = st;
      const syms: number[] = [];
      let fail = 0;
      for (let i = 7; i >= 0; i--) {
        const bit = (octet >>> i) & 1;
        const l = leaf.get(node * 2 + bit);
        if (l !== undefined) {
          if (l === 256) fail = 1; // EOS inside a string is an error
          else syms.push(l);
          node = 0;
        } else {
          node = child[node][bit];
        }
      }
      HUFF[(st << 8) | octet] = node | (syms.length << 8) | ((syms[0] ?? 0) << 10) | ((syms[1] ?? 0) << 18) | (fail ? FAIL : 0);
    }
  }
})();

/** Set by huffmanDecode: some decoded octet was ≥ 0x80 (the string needs UTF-8 decoding). */
let huffmanHigh = 0;

/** Decode `len` Huffman-coded octets at `at` into `out` (room for len*8/5 octets); returns octets written, -1 if invalid. */
function huffmanDecode(src: Uint8Array, at: number, len: number, out: Buffer): number {
  let state = 0;
  let n = 0;
  let high = 0;
  for (let i = at, end = at + len; i < end; i++) {
    const e = HUFF[(state << 8) | src[i]];
    if (e & FAIL) return -1;
    const count = (e >> 8) & 3;
    if (count !== 0) {
      const a = (e >> 10) & 0xff;
      out[n++] = a;
      high |= a;
      if (count === 2) {
        const b = (e >> 18) & 0xff;
        out[n++] = b;
        high |= b;
      }
    }
    state = e & 0xff;
  }
  huffmanHigh = high & 0x80;
  return HUFF_ACCEPT[state] ? n : -1;
}

/** Buffer's own decoders without toString's argument handling. */
interface Utf8Buffer extends Buffer { utf8Slice(start: number, end: number): string; latin1Slice(start: number, end: number): string }


// ---- the decoder ----

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE the decoder's peer agreed to (the most a size update may ask). Default 4096. */
  maxTableSize?: number;
  /** The connection was already open: unknown dynamic indices are expected, not errors. Default false. */
  midStream?: boolean;
  /** Decoded octets allowed per block (name + value lengths): a guard against header bombs. Default 256 KiB. */
  maxBlockOctets?: number;
}

export class HpackDecoder {
  /** [name, value] pairs as stored, handed out as they are (callers treat header fields as read-only). */
  private entries: [string | null, string][] = new Array(64);
  private sizes = new Int32Array(64);
  /** Ring buffer: `head` is where the next (newest) entry goes; `count` entries before it. */
  private head = 0;
  private count = 0;
  private size = 0;
  private tableMax: number;
  private settingsMax: number;
  private midStream: boolean;
  private readonly maxBlockOctets: number;
  private scratch = Buffer.allocUnsafe(1024);

  constructor(opts: HpackDecoderOptions = {}) {
    this.settingsMax = opts.maxTableSize ?? 4096;
    this.tableMax = this.settingsMax;
    this.midStream = opts.midStream ?? false;
    this.maxBlockOctets = opts.maxBlockOctets ?? 256 * 1024;
  }

  /**
   * Bytes were lost: the lost blocks may have inserted entries, which shifts every index we hold, so what
   * we hold is forgotten (kept, it would resolve indices to the wrong fields — found by the truncation
   * sweep). Entries inserted from here on are exact; an older index is unknown (null), not an error.
   */
  tolerateUnknown(): void {
    this.midStream = true;
    this.head = 0;
    this.count = 0;
    this.size = 0;
  }

  /** A new SETTINGS_HEADER_TABLE_SIZE from the peer. */
  setMaxTableSize(n: number): void {
    this.settingsMax = n;
    if (this.tableMax > n) { this.tableMax = n; this.evict(); }
  }

  /** Entries currently known (for tests and diagnostics). */
  get dynamicSize(): number {
    return this.size;
  }

  /** Decode one complete header block (HEADERS + CONTINUATION payloads joined). Never throws. */
  decode(input: Uint8Array): HpackBlock | HpackFailure {
    const block = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const headers: HeaderField[] = [];
    let incomplete = false;
    let octets = 0;
    let i = 0;
    const n = block.length;
    this.pos = 0;
    while (i < n) {
      const b = block[i];
      if (b & 0x80) { // indexed field
        this.pos = i;
        const index = this.int(block, 7);
        if (index < 0) return { error: this.intError };
        i = this.pos;
        if (index === 0) return { error: 'indexed field with index 0' };
        const f = this.field(index);
        if (f === undefined) return { error: `index ${index} is beyond the table` };
        if (f === null) { incomplete = true; headers.push([null, null]); continue; }
        if (f[0] === null) incomplete = true;
        headers.push(f);
        octets += (f[0]?.length ?? 0) + f[1].length;
      } else if ((b & 0xe0) === 0x20) { // dynamic table size update
        this.pos = i;
        const size = this.int(block, 5);
        if (size < 0) return { error: this.intError };
        i = this.pos;
        if (size > this.settingsMax) return { error: `table size update to ${size} exceeds the agreed ${this.settingsMax}` };
        this.tableMax = size;
        this.evict();
      } else { // literal: with indexing (01), without (0000), never indexed (0001)
        const indexing = (b & 0xc0) === 0x40;
        const prefix = indexing ? 6 : 4;
        this.pos = i;
        const nameIndex = this.int(block, prefix);
        if (nameIndex < 0) return { error: this.intError };
        let name: string | null;
        let nameOctets: number;
        if (nameIndex === 0) {
          const s = this.string(block);
          if (s === null) return { error: this.stringError };
          name = s;
          nameOctets = this.lastOctets;
        } else {
          const f = this.field(nameIndex);
          if (f === undefined) return { error: `name index ${nameIndex} is beyond the table` };
          name = f === null ? null : f[0];
          if (name === null) incomplete = true;
          nameOctets = name === null ? 0 : Buffer.byteLength(name);
        }
        const value = this.string(block);
        if (value === null) return { error: this.stringError };
        i = this.pos;
        const field: [string | null, string] = [name, value];
        headers.push(field);
        octets += (name?.length ?? 0) + value.length;
        if (indexing) this.insert(field, nameOctets, this.lastOctets);
      }
      if (octets > this.maxBlockOctets) return { error: `header block decodes to more than ${this.maxBlockOctets} octets` };
    }
    return { headers, incomplete };
  }

  // ---- internals: a tiny cursor shared by the readers below ----
  private pos = 0;
  private intError = '';
  private stringError = '';
  /** Octets of the string last read (for table size accounting, which counts octets, not characters). */
  private lastOctets = 0;

  /** RFC 7541 §5.1 prefix integer at `this.pos`; -1 on error (bounded to 2^31). */
  private int(b: Uint8Array, prefix: number): number {
    const max = (1 << prefix) - 1;
    let v = b[this.pos++] & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      if (this.pos >= b.length) { this.intError = 'integer runs past the end of the block'; return -1; }
      const c = b[this.pos++];
      v += (c & 0x7f) * 2 ** shift;
      if (v > 0x7fffffff) { this.intError = 'integer larger than 2^31'; return -1; }
      if (!(c & 0x80)) return v;
      shift += 7;
    }
  }

  /** RFC 7541 §5.2 string at `this.pos`; null on error. Records its octet length for table accounting. */
  private string(b: Uint8Array): string | null {
    if (this.pos >= b.length) { this.stringError = 'string missing at the end of the block'; return null; }
    const huffman = (b[this.pos] & 0x80) !== 0;
    const len = this.int(b, 7);
    if (len < 0) { this.stringError = this.intError; return null; }
    if (this.pos + len > b.length) { this.stringError = `string of ${len} octets runs past the end of the block`; return null; }
    const at = this.pos;
    this.pos += len;
    let text: string;
    let octets: number;
    if (huffman) {
      const room = Math.ceil((len * 8) / 5) + 1;
      if (this.scratch.length < room) this.scratch = Buffer.allocUnsafe(Math.max(room, this.scratch.length * 2));
      octets = huffmanDecode(b, at, len, this.scratch);
      if (octets < 0) { this.stringError = 'invalid Huffman coding'; return null; }
      const out = this.scratch as Utf8Buffer;
      text = huffmanHigh ? out.utf8Slice(0, octets) : out.latin1Slice(0, octets);
    } else {
      octets = len;
      text = (b as Utf8Buffer).utf8Slice(at, at + len); // V8's UTF-8 decoder has its own ASCII fast path
    }
    this.lastOctets = octets;
    return text;
  }

  /** The field at an HPACK index: [name, value]; null when it is a dynamic entry we never saw; undefined when impossible. */
  private field(index: number): [string | null, string] | null | undefined {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1] as [string, string];
    const d = index - STATIC_COUNT - 1; // 0 = newest
    if (d < this.count) return this.entries[(this.head - 1 - d) & (this.entries.length - 1)];
    // Beyond what we know: fine mid-connection (an entry from before we started), an error otherwise.
    return this.midStream && d < 1 + Math.floor(this.settingsMax / ENTRY_OVERHEAD) ? null : undefined;
  }

  private insert(field: [string | null, string], nameOctets: number, valueOctets: number): void {
    // An unknown name (mid-connection) still takes its place, so later indices stay aligned.
    const size = nameOctets + valueOctets + ENTRY_OVERHEAD;
    if (size > this.tableMax) { this.head = 0; this.count = 0; this.size = 0; return; } // clears the table (§4.4)
    if (this.count === this.entries.length) this.grow();
    this.entries[this.head] = field;
    this.sizes[this.head] = size;
    this.head = (this.head + 1) & (this.entries.length - 1);
    this.count++;
    this.size += size;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.tableMax && this.count > 0) {
      const oldest = (this.head - this.count) & (this.entries.length - 1);
      this.size -= this.sizes[oldest];
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.entries.length * 2;
    const entries: [string | null, string][] = new Array(cap);
    const sizes = new Int32Array(cap);
    for (let k = 0; k < this.count; k++) {
      const from = (this.head - this.count + k) & (this.entries.length - 1);
      entries[k] = this.entries[from];
      sizes[k] = this.sizes[from];
    }
    this.entries = entries;
    this.sizes = sizes;
    this.head = this.count;
  }
}
