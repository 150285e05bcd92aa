/**
 * A small Hessian 2 reader for the record hot path, written here because hessian.js materialises every
 * value (it has no skip) and records need only names, types and attachments: arguments and stack traces
 * are skipped byte-wise without building them. Full values still come from hessian.js (`values.ts`);
 * tests check that both readers agree on every fixture.
 *
 * Grammar: Caucho's Hessian 2.0 as Java Dubbo (hessian-lite), dubbo-go and hessian.js write it. Strings
 * count UTF-16 code units (Java chars) encoded CESU-8 style; longs beyond 2^53 stay exact as decimal strings.
 * Errors are values: reading past the end or an unknown code sets `error` and returns undefined.
 */
import { isAscii } from 'node:buffer';
import { knownClass, rememberClass, SHORT, shortString, type ClassDef, type LatinBuffer } from './hessian-seen.js';

/** A Hessian object instance read without a Java class: its class name and fields. */
export interface HessianObject {
  $class: string;
  [field: string]: unknown;
}

const SKIPPED = Symbol('skipped');
const MAX_DEPTH = 256;

// `skip()`'s states for a container still open, besides a count of values left.
const NONE = -1;
/** A variable-length list: values until 'Z'. */
const UNTIL_Z = -2;
/** A map, at a key (or its closing 'Z') / at a value. */
const MAP_KEY = -3;
const MAP_VALUE = -4;
/** `skip()`'s stack of the enclosing containers' states; `skip()` never runs inside another one. */
const OPEN = new Int32Array(MAX_DEPTH);

/** What each leading byte starts (Hessian 2.0 grammar). */
const enum K {
  Invalid, StrCompact, StrMedium, StrChunk, Int1, Int2, Int3, Int4, Long1, Long2, Long3, Long4, Long8,
  BinCompact, BinMedium, BinChunk, Null, True, False, Double0, Double1, DoubleByte, DoubleShort, DoubleMill, Double,
  DateMs, DateMin, ClassDef, Object, ObjectCompact, Ref, MapUntyped, MapTyped, ListTypedVar, ListTyped, ListVar, List,
  ListTypedCompact, ListCompact,
}
const KIND = new Uint8Array(256);
const span = (from: number, to: number, k: K) => KIND.fill(k, from, to + 1);
span(0x00, 0x1f, K.StrCompact); span(0x20, 0x2f, K.BinCompact); span(0x30, 0x33, K.StrMedium); span(0x34, 0x37, K.BinMedium);
span(0x38, 0x3f, K.Long3); span(0x60, 0x6f, K.ObjectCompact); span(0x70, 0x77, K.ListTypedCompact); span(0x78, 0x7f, K.ListCompact);
span(0x80, 0xbf, K.Int1); span(0xc0, 0xcf, K.Int2); span(0xd0, 0xd7, K.Int3); span(0xd8, 0xef, K.Long1); span(0xf0, 0xff, K.Long2);
for (const [code, k] of [[0x41, K.BinChunk], [0x42, K.BinChunk], [0x43, K.ClassDef], [0x44, K.Double], [0x46, K.False], [0x48, K.MapUntyped],
  [0x49, K.Int4], [0x4a, K.DateMs], [0x4b, K.DateMin], [0x4c, K.Long8], [0x4d, K.MapTyped], [0x4e, K.Null], [0x4f, K.Object], [0x51, K.Ref],
  [0x52, K.StrChunk], [0x53, K.StrChunk], [0x54, K.True], [0x55, K.ListTypedVar], [0x56, K.ListTyped], [0x57, K.ListVar], [0x58, K.List],
  [0x59, K.Long4], [0x5b, K.Double0], [0x5c, K.Double1], [0x5d, K.DoubleByte], [0x5e, K.DoubleShort], [0x5f, K.DoubleMill]] as const) KIND[code] = k;

export class Hessian2Reader {
  pos: number;
  error: string | null = null;
  private classes: ClassDef[] = [];
  /** How many type names were seen (for type references). */
  private types = 0;
  /** Values by reference number; SKIPPED for values that were skipped, not built. */
  private refs: unknown[] = [];

  constructor(private readonly buf: Buffer, start = 0, private readonly end = buf.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Read one value into plain JS (objects as `{ $class, ...fields }`, maps as objects). */
  read(): unknown {
    return this.value(false);
  }

  /**
   * Step over one value without building it; class definitions and references are still counted.
   * A loop over an explicit stack of open containers rather than `value(true)`'s recursion: records skip
   * every argument and return value, and the per-value call, depth and error bookkeeping was most of it.
   */
  skip(): void {
    const b = this.buf;
    const end = this.end;
    let sp = 0;
    /** Values still to step over in the innermost open container: n ≥ 0, or one of the `UNTIL_*` states. */
    let left = 1;
    while (!this.error) {
      if (left === 0) {
        if (sp === 0) return;
        left = OPEN[--sp];
        continue;
      }
      if (this.pos >= end) { this.fail('unexpected end of body'); return; }
      const next = b[this.pos];
      if (next === 0x5a && (left === UNTIL_Z || left === MAP_KEY)) {
        this.pos++;
        if (sp === 0) return;
        left = OPEN[--sp];
        continue;
      }
      // A definition precedes the value that uses it: it is not a value of the container.
      if (next === 0x43) { this.pos++; this.classDef(); continue; }
      if (left === MAP_KEY) left = MAP_VALUE;
      else if (left === MAP_VALUE) left = MAP_KEY;
      else if (left !== UNTIL_Z) left--;
      if (sp >= MAX_DEPTH) { this.fail(`values nested deeper than ${MAX_DEPTH}`); return; }
      const c = b[this.pos++];
      let open = NONE;
      switch (KIND[c]) {
        case K.StrCompact: this.string(c, true, true); break;
        case K.StrMedium: this.string(((c - 0x30) << 8) + this.u8(), true, true); break;
        case K.StrChunk: if (this.need(2)) { const n = b.readUInt16BE(this.pos); this.pos += 2; this.string(n, c === 0x53, true); } break;
        case K.BinCompact: this.binary(c - 0x20, true, true); break;
        case K.BinMedium: this.binary(((c - 0x34) << 8) + this.u8(), true, true); break;
        case K.BinChunk: if (this.need(2)) { const n = b.readUInt16BE(this.pos); this.pos += 2; this.binary(n, c === 0x42, true); } break;
        case K.Int1: case K.Long1: case K.Null: case K.True: case K.False: case K.Double0: case K.Double1: break;
        case K.Int2: case K.Long2: this.u8(); break;
        case K.DoubleByte: if (this.need(1)) this.pos++; break;
        case K.Int3: case K.Long3: case K.DoubleShort: if (this.need(2)) this.pos += 2; break;
        case K.Int4: case K.Long4: case K.DoubleMill: case K.DateMin: if (this.need(4)) this.pos += 4; break;
        case K.Long8: case K.Double: case K.DateMs: if (this.need(8)) this.pos += 8; break;
        case K.Object: case K.ObjectCompact: {
          const index = c === 0x4f ? this.readInt() : c - 0x60;
          const def = this.classes[index];
          if (this.error) break;
          if (!def) { this.fail(`object instance of undefined class #${index}`); break; }
          this.refs.push(SKIPPED);
          open = def.count;
          break;
        }
        case K.Ref: { const i = this.readInt(); if (!this.error) this.ref(i, true); break; }
        case K.MapTyped: this.type(); this.refs.push(SKIPPED); open = MAP_KEY; break;
        case K.MapUntyped: this.refs.push(SKIPPED); open = MAP_KEY; break;
        case K.ListTypedVar: this.type(); this.refs.push(SKIPPED); open = UNTIL_Z; break;
        case K.ListVar: this.refs.push(SKIPPED); open = UNTIL_Z; break;
        case K.ListTyped: this.type(); open = this.listLength(this.readInt()); break;
        case K.List: open = this.listLength(this.readInt()); break;
        case K.ListTypedCompact: this.type(); open = this.listLength(c - 0x70); break;
        case K.ListCompact: open = this.listLength(c - 0x78); break;
        default: this.fail(`unknown Hessian code 0x${c.toString(16)} at byte ${this.pos - 1}`);
      }
      if (open !== NONE && !this.error) {
        OPEN[sp++] = left;
        left = open;
      }
    }
  }

  /** A skipped list of `n` values: its reference slot taken, its length checked against the body. */
  private listLength(n: number): number {
    if (this.error) return NONE;
    const bad = this.badListLength(n);
    if (bad !== null) { this.fail(bad); return NONE; }
    this.refs.push(SKIPPED);
    return n;
  }

  /**
   * Why a list length the body gives cannot be right, or null; the one check for reading and skipping.
   * Negative is malformed (Java's reader cannot make such an array), and here it would pass for a marker.
   */
  private badListLength(n: number): string | null {
    if (n < 0) return `list length ${n} is negative`;
    if (n > this.end - this.pos) return `list length ${n} is larger than the body`;
    return null;
  }

  /** A string or null; anything else is an error. */
  readString(): string | null {
    const c = this.peek();
    if (c >= 0 && c <= 0x1f) { const s = this.seenString(c); if (s !== undefined) return s; }
    if (c === 0x4e) { this.pos++; return null; }
    if (c < 0 || !((c <= 0x1f) || (c >= 0x30 && c <= 0x33) || c === 0x52 || c === 0x53)) {
      this.fail(`expected a string at byte ${this.pos}`);
      return null;
    }
    const v = this.value(false);
    return typeof v === 'string' ? v : null; // cut short: no half string
  }

  /** An int (any int encoding); NaN on error. */
  readInt(): number {
    const v = this.value(false);
    if (typeof v !== 'number') { this.fail(`expected an int at byte ${this.pos}`); return NaN; }
    return v;
  }

  /**
   * An object instance, keeping only the named fields (others skipped): how an exception's message is
   * read without building its stack trace. Returns the class name and the kept fields.
   */
  readObjectFields(keep: readonly string[]): HessianObject | null {
    const c = this.peek();
    if (c === 0x43) { this.pos++; this.classDef(); return this.readObjectFields(keep); }
    let def: ClassDef | undefined;
    if (c === 0x4f) { this.pos++; def = this.classes[this.readInt()]; }
    else if (c >= 0x60 && c <= 0x6f) { this.pos++; def = this.classes[c - 0x60]; }
    else { this.skip(); return null; }
    if (!def) { this.fail('object instance of an undefined class'); return null; }
    this.names(def);
    const obj: HessianObject = { $class: def.name! };
    this.refs.push(obj);
    for (const f of def.fields!) {
      if (keep.includes(f)) obj[f] = this.value(false);
      else this.value(true);
      if (this.error) return null;
    }
    return obj;
  }

  private peek(): number {
    return this.pos < this.end ? this.buf[this.pos] : -1;
  }

  private fail(message: string): undefined {
    this.error ??= message;
    this.pos = this.end;
    return undefined;
  }

  private need(n: number): boolean {
    if (this.pos + n <= this.end) return true;
    this.fail(`value runs past the end of the body (needs ${n} bytes at ${this.pos})`);
    return false;
  }

  private u8(): number {
    return this.pos < this.end ? this.buf[this.pos++] : (this.fail('unexpected end of body'), 0);
  }

  private depth = 0;

  private value(skip: boolean): unknown {
    if (this.error) return undefined;
    if (this.pos >= this.end) return this.fail('unexpected end of body');
    // Nesting is bounded so a hostile body cannot exhaust the stack (errors are values, never throws).
    if (this.depth >= MAX_DEPTH) return this.fail(`values nested deeper than ${MAX_DEPTH}`);
    this.depth++;
    const v = this.code(skip);
    this.depth--;
    return v;
  }

  /** One value by its leading code, dispatched through a 256-entry table (strings come first in practice). */
  private code(skip: boolean): unknown {
    const b = this.buf;
    const c = b[this.pos++];
    switch (KIND[c]) {
      case K.StrCompact: return this.string(c, true, skip);
      case K.StrMedium: return this.string(((c - 0x30) << 8) + this.u8(), true, skip);
      case K.StrChunk: { if (!this.need(2)) return; const n = b.readUInt16BE(this.pos); this.pos += 2; return this.string(n, c === 0x53, skip); }
      case K.Int1: return c - 0x90;
      case K.Int2: return ((c - 0xc8) << 8) + this.u8();
      case K.Int3: { if (!this.need(2)) return; const v = ((c - 0xd4) << 16) + (b[this.pos] << 8) + b[this.pos + 1]; this.pos += 2; return v; }
      case K.Int4: case K.Long4: { if (!this.need(4)) return; const v = b.readInt32BE(this.pos); this.pos += 4; return v; }
      case K.Long1: return c - 0xe0;
      case K.Long2: return ((c - 0xf8) << 8) + this.u8();
      case K.Long3: { if (!this.need(2)) return; const v = ((c - 0x3c) << 16) + (b[this.pos] << 8) + b[this.pos + 1]; this.pos += 2; return v; }
      case K.Long8: { if (!this.need(8)) return; this.pos += 8; return skip ? undefined : exactLong(b.readBigInt64BE(this.pos - 8)); }
      case K.BinCompact: return this.binary(c - 0x20, true, skip);
      case K.BinMedium: return this.binary(((c - 0x34) << 8) + this.u8(), true, skip);
      case K.BinChunk: { if (!this.need(2)) return; const n = b.readUInt16BE(this.pos); this.pos += 2; return this.binary(n, c === 0x42, skip); }
      case K.Null: return null;
      case K.True: return true;
      case K.False: return false;
      case K.Double0: return 0;
      case K.Double1: return 1;
      case K.DoubleByte: { if (!this.need(1)) return; return b.readInt8(this.pos++); }
      case K.DoubleShort: { if (!this.need(2)) return; const v = b.readInt16BE(this.pos); this.pos += 2; return v; }
      case K.DoubleMill: { if (!this.need(4)) return; const v = b.readInt32BE(this.pos) * 0.001; this.pos += 4; return v; }
      case K.Double: { if (!this.need(8)) return; const v = b.readDoubleBE(this.pos); this.pos += 8; return v; }
      case K.DateMs: { if (!this.need(8)) return; this.pos += 8; return skip ? undefined : new Date(Number(b.readBigInt64BE(this.pos - 8))); }
      case K.DateMin: { if (!this.need(4)) return; const v = b.readInt32BE(this.pos) * 60000; this.pos += 4; return skip ? undefined : new Date(v); }
      case K.ClassDef: this.classDef(); return this.value(skip); // a definition precedes the value that uses it
      case K.Object: return this.object(this.readInt(), skip);
      case K.ObjectCompact: return this.object(c - 0x60, skip);
      case K.Ref: { const i = this.readInt(); return this.ref(i, skip); }
      case K.MapUntyped: return this.map(skip);
      case K.MapTyped: this.type(); return this.map(skip);
      case K.ListTypedVar: this.type(); return this.list(-1, skip);
      case K.ListTyped: this.type(); return this.fixedList(this.readInt(), skip);
      case K.ListVar: return this.list(-1, skip);
      case K.List: return this.fixedList(this.readInt(), skip);
      case K.ListTypedCompact: this.type(); return this.fixedList(c - 0x70, skip);
      case K.ListCompact: return this.fixedList(c - 0x78, skip);
      default: return this.fail(`unknown Hessian code 0x${c.toString(16)} at byte ${this.pos - 1}`);
    }
  }

  /**
   * A compact string (code `c` ≤ 0x1f, at `pos`) that is in the short-string cache, or undefined (nothing
   * read) so the caller takes the general path.
   */
  private seenString(c: number): string | undefined {
    const start = this.pos + 1;
    if (start + c > this.end) return undefined;
    const s = shortString(this.buf, start, c);
    if (s !== undefined) this.pos = start + c;
    return s;
  }

  /** `n` UTF-16 units, then more chunks while not final. */
  private string(n: number, final: boolean, skip: boolean): string | undefined {
    let out = '';
    for (;;) {
      const start = this.pos;
      // ASCII: one byte per unit. Short runs are checked in JS (a native call plus a subarray per string
      // cost more, measured); long ones natively.
      if (!skip && final && out === '' && n <= SHORT && start + n <= this.end) {
        // Service names, methods, attachment keys and values repeat: reuse the string seen before.
        const cached = shortString(this.buf, start, n);
        if (cached !== undefined) { this.pos += n; return cached; }
      }
      if (start + n <= this.end && isAsciiRun(this.buf, start, start + n)) {
        this.pos += n;
        if (!skip) out += (this.buf as LatinBuffer).latin1Slice(start, this.pos);
      } else {
        const s = this.utf16Units(n, skip);
        if (s === undefined) return undefined;
        out += s;
      }
      if (final) return skip ? undefined : out;
      const c = this.u8();
      if (c === 0x52 || c === 0x53) {
        if (!this.need(2)) return undefined;
        n = this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        final = c === 0x53;
      } else if (c <= 0x1f) { n = c; final = true; }
      else if (c >= 0x30 && c <= 0x33) { n = ((c - 0x30) << 8) + this.u8(); final = true; }
      else return this.fail(`bad string chunk 0x${c.toString(16)}`);
    }
  }

  /** Decode `n` UTF-16 units written CESU-8 style (surrogates as 3-byte sequences; 4-byte UTF-8 counts 2). */
  private utf16Units(n: number, skip: boolean): string | undefined {
    const b = this.buf;
    const units: number[] | null = skip ? null : [];
    let i = this.pos;
    let left = n;
    while (left > 0) {
      if (i >= this.end) return this.fail('string runs past the end of the body');
      const c = b[i];
      if (c < 0x80) { units?.push(c); i++; left--; continue; }
      if (c < 0xe0) { if (i + 2 > this.end) break; units?.push(((c & 0x1f) << 6) | (b[i + 1] & 0x3f)); i += 2; left--; continue; }
      if (c < 0xf0) { if (i + 3 > this.end) break; units?.push(((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f)); i += 3; left--; continue; }
      if (i + 4 > this.end) break;
      const cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
      units?.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
      i += 4;
      left -= 2;
    }
    if (left > 0) return this.fail('string runs past the end of the body');
    this.pos = i;
    if (!units) return '';
    let s = '';
    for (let k = 0; k < units.length; k += 8192) s += String.fromCharCode(...units.slice(k, k + 8192));
    return s;
  }

  private binary(n: number, final: boolean, skip: boolean): Buffer | undefined {
    const parts: Buffer[] = [];
    for (;;) {
      if (!this.need(n)) return undefined;
      if (!skip) parts.push(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      if (final) return skip ? undefined : Buffer.concat(parts);
      const c = this.u8();
      if (c === 0x41 || c === 0x42) {
        if (!this.need(2)) return undefined;
        n = this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        final = c === 0x42;
      } else if (c >= 0x20 && c <= 0x2f) { n = c - 0x20; final = true; }
      else if (c >= 0x34 && c <= 0x37) { n = ((c - 0x34) << 8) + this.u8(); final = true; }
      else return this.fail(`bad binary chunk 0x${c.toString(16)}`);
    }
  }

  private classDef(): void {
    const at = this.pos;
    const known = knownClass(this.buf, at, this.end);
    if (known) { this.pos += known.bytes.length; this.classes.push(known.def); return; }
    this.skipString();
    const count = this.readInt();
    if (this.error || !(count >= 0) || count > 1 << 16) { this.fail('bad class definition'); return; }
    for (let i = 0; i < count && !this.error; i++) this.skipString();
    const def: ClassDef = { count, at, name: null, fields: null };
    this.classes.push(def);
    if (!this.error) rememberClass(this.buf, at, this.pos, this.names(def));
  }

  /** Step over a string (or fail if the next value is not one). */
  private skipString(): void {
    const c = this.peek();
    if (c === 0x4e) { this.pos++; return; }
    if (!((c >= 0 && c <= 0x1f) || (c >= 0x30 && c <= 0x33) || c === 0x52 || c === 0x53)) { this.fail(`expected a string at byte ${this.pos}`); return; }
    this.value(true);
  }

  /** The class's name and field names, decoded on first need. */
  private names(def: ClassDef): ClassDef {
    if (def.fields) return def;
    const r = new Hessian2Reader(this.buf, def.at, this.end);
    def.name = r.readString() ?? '';
    r.readInt();
    def.fields = [];
    for (let i = 0; i < def.count; i++) def.fields.push(r.readString() ?? '');
    return def;
  }

  /**
   * A type: a string (remembered, so later ints can name it) or an int naming an earlier one. Records never
   * show list/map type names, so they are stepped over, not built.
   */
  private type(): void {
    const c = this.peek();
    if ((c >= 0 && c <= 0x1f) || (c >= 0x30 && c <= 0x33) || c === 0x52 || c === 0x53) {
      this.skipString();
      this.types++;
      return;
    }
    const i = this.readInt();
    if (!(i >= 0 && i < this.types)) this.fail(`type reference #${i} to a type not seen`);
  }

  private object(defIndex: number, skip: boolean): unknown {
    const def = this.classes[defIndex];
    if (!def) return this.fail(`object instance of undefined class #${defIndex}`);
    if (skip) {
      this.refs.push(SKIPPED);
      for (let i = 0; i < def.count && !this.error; i++) this.value(true);
      return undefined;
    }
    this.names(def);
    const obj: HessianObject = { $class: def.name! };
    this.refs.push(obj);
    for (const f of def.fields!) {
      const v = this.value(false);
      if (this.error) return undefined;
      obj[f] = v;
    }
    return obj;
  }

  private map(skip: boolean): unknown {
    const obj: Record<string, unknown> | null = skip ? null : {};
    this.refs.push(skip ? SKIPPED : obj);
    while (!this.error) {
      const c = this.peek();
      if (c === 0x5a) { this.pos++; return skip ? undefined : obj; }
      // Attachments are short strings, mostly the ones the last body had: straight from the cache.
      const k = (!skip && c <= 0x1f && c >= 0 ? this.seenString(c) : undefined) ?? this.value(skip);
      const cv = this.peek();
      const v = (!skip && cv <= 0x1f && cv >= 0 ? this.seenString(cv) : undefined) ?? this.value(skip);
      if (obj) {
        const key = typeof k === 'string' ? k : k instanceof Date ? String(k.getTime()) : String(k);
        if (key === '__proto__') Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        else obj[key] = v;
      }
    }
    return undefined;
  }

  /** A list whose length the body gives, checked as `skip()` checks it. */
  private fixedList(length: number, skip: boolean): unknown {
    if (this.error) return undefined;
    const bad = this.badListLength(length);
    return bad !== null ? this.fail(bad) : this.list(length, skip);
  }

  /** `length` values (checked by the caller), or up to the closing Z when -1 (the variable-length forms). */
  private list(length: number, skip: boolean): unknown {
    const arr: unknown[] | null = skip ? null : [];
    this.refs.push(skip ? SKIPPED : arr);
    if (length >= 0) {
      for (let i = 0; i < length && !this.error; i++) { const v = this.value(skip); arr?.push(v); }
    } else {
      while (!this.error) {
        if (this.peek() === 0x5a) { this.pos++; break; }
        const v = this.value(skip);
        arr?.push(v);
      }
    }
    return this.error ? undefined : skip ? undefined : arr;
  }

  private ref(i: number, skip: boolean): unknown {
    if (!(i >= 0 && i < this.refs.length)) return this.fail(`reference #${i} to a value not seen`);
    if (skip) return undefined;
    const v = this.refs[i];
    return v === SKIPPED ? undefined : v;
  }
}

function isAsciiRun(b: Buffer, start: number, end: number): boolean {
  if (end - start > 64) return isAscii(b.subarray(start, end));
  for (let i = start; i < end; i++) if (b[i] >= 0x80) return false;
  return true;
}

/** A 64-bit long: a number when exact, else its decimal string. */
function exactLong(v: bigint): number | string {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
}
