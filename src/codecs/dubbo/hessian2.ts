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

/** A Hessian object instance read without a Java class: its class name and fields. */
export interface HessianObject {
  $class: string;
  [field: string]: unknown;
}

interface ClassDef { name: string; fields: string[] }

const SKIPPED = Symbol('skipped');
const MAX_DEPTH = 256;

export class Hessian2Reader {
  pos: number;
  error: string | null = null;
  private classes: ClassDef[] = [];
  private types: string[] = [];
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

  /** Step over one value without building it; class definitions and references are still counted. */
  skip(): void {
    this.value(true);
  }

  /** A string or null; anything else is an error. */
  readString(): string | null {
    const c = this.peek();
    if (c === 0x4e) { this.pos++; return null; }
    if (c < 0 || !((c <= 0x1f) || (c >= 0x30 && c <= 0x33) || c === 0x52 || c === 0x53)) {
      this.fail(`expected a string at byte ${this.pos}`);
      return null;
    }
    return this.value(false) as string;
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
    const obj: HessianObject = { $class: def.name };
    this.refs.push(obj);
    for (const f of def.fields) {
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
    try {
      return this.code(skip);
    } finally {
      this.depth--;
    }
  }

  private code(skip: boolean): unknown {
    const b = this.buf;
    const c = b[this.pos++];
    // int
    if (c >= 0x80 && c <= 0xbf) return c - 0x90;
    if (c >= 0xc0 && c <= 0xcf) return ((c - 0xc8) << 8) + this.u8();
    if (c >= 0xd0 && c <= 0xd7) { if (!this.need(2)) return; const v = ((c - 0xd4) << 16) + (b[this.pos] << 8) + b[this.pos + 1]; this.pos += 2; return v; }
    if (c === 0x49) { if (!this.need(4)) return; const v = b.readInt32BE(this.pos); this.pos += 4; return v; }
    // long
    if (c >= 0xd8 && c <= 0xef) return c - 0xe0;
    if (c >= 0xf0) return ((c - 0xf8) << 8) + this.u8();
    if (c >= 0x38 && c <= 0x3f) { if (!this.need(2)) return; const v = ((c - 0x3c) << 16) + (b[this.pos] << 8) + b[this.pos + 1]; this.pos += 2; return v; }
    if (c === 0x59) { if (!this.need(4)) return; const v = b.readInt32BE(this.pos); this.pos += 4; return v; }
    if (c === 0x4c) { if (!this.need(8)) return; const v = b.readBigInt64BE(this.pos); this.pos += 8; return skip ? undefined : exactLong(v); }
    // string
    if (c <= 0x1f) return this.string(c, true, skip);
    if (c >= 0x30 && c <= 0x33) return this.string(((c - 0x30) << 8) + this.u8(), true, skip);
    if (c === 0x52 || c === 0x53) { if (!this.need(2)) return; const n = b.readUInt16BE(this.pos); this.pos += 2; return this.string(n, c === 0x53, skip); }
    // binary
    if (c >= 0x20 && c <= 0x2f) return this.binary(c - 0x20, true, skip);
    if (c >= 0x34 && c <= 0x37) return this.binary(((c - 0x34) << 8) + this.u8(), true, skip);
    if (c === 0x41 || c === 0x42) { if (!this.need(2)) return; const n = b.readUInt16BE(this.pos); this.pos += 2; return this.binary(n, c === 0x42, skip); }
    switch (c) {
      case 0x4e: return null;
      case 0x54: return true;
      case 0x46: return false;
      case 0x5b: return 0;
      case 0x5c: return 1;
      case 0x5d: { if (!this.need(1)) return; return b.readInt8(this.pos++); }
      case 0x5e: { if (!this.need(2)) return; const v = b.readInt16BE(this.pos); this.pos += 2; return v; }
      case 0x5f: { if (!this.need(4)) return; const v = b.readInt32BE(this.pos) * 0.001; this.pos += 4; return v; }
      case 0x44: { if (!this.need(8)) return; const v = b.readDoubleBE(this.pos); this.pos += 8; return v; }
      case 0x4a: { if (!this.need(8)) return; const v = Number(b.readBigInt64BE(this.pos)); this.pos += 8; return skip ? undefined : new Date(v); }
      case 0x4b: { if (!this.need(4)) return; const v = b.readInt32BE(this.pos) * 60000; this.pos += 4; return skip ? undefined : new Date(v); }
      case 0x43: this.classDef(); return this.value(skip); // a definition precedes the value that uses it
      case 0x4f: return this.object(this.readInt(), skip);
      case 0x51: { const i = this.readInt(); return this.ref(i, skip); }
      case 0x48: return this.map(null, skip);
      case 0x4d: return this.map(this.type(), skip);
      case 0x55: return this.list(this.type(), -1, skip);
      case 0x56: { const t = this.type(); return this.list(t, this.readInt(), skip); }
      case 0x57: return this.list(null, -1, skip);
      case 0x58: return this.list(null, this.readInt(), skip);
      default:
        if (c >= 0x60 && c <= 0x6f) return this.object(c - 0x60, skip);
        if (c >= 0x70 && c <= 0x77) { const t = this.type(); return this.list(t, c - 0x70, skip); }
        if (c >= 0x78 && c <= 0x7f) return this.list(null, c - 0x78, skip);
        return this.fail(`unknown Hessian code 0x${c.toString(16)} at byte ${this.pos - 1}`);
    }
  }

  /** `n` UTF-16 units, then more chunks while not final. */
  private string(n: number, final: boolean, skip: boolean): string | undefined {
    let out = '';
    for (;;) {
      const start = this.pos;
      // ASCII: one byte per unit, checked natively.
      if (start + n <= this.end && isAscii(this.buf.subarray(start, start + n))) {
        this.pos += n;
        if (!skip) out += this.buf.toString('latin1', start, this.pos);
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
    const name = this.readString();
    const count = this.readInt();
    if (this.error || name === null || !(count >= 0) || count > 1 << 16) { this.fail('bad class definition'); return; }
    const fields: string[] = [];
    for (let i = 0; i < count && !this.error; i++) fields.push(this.readString() ?? '');
    this.classes.push({ name, fields });
  }

  /** A type: a string (remembered) or an int naming an earlier one. */
  private type(): string {
    const c = this.peek();
    if ((c >= 0 && c <= 0x1f) || (c >= 0x30 && c <= 0x33) || c === 0x52 || c === 0x53) {
      const t = this.readString() ?? '';
      this.types.push(t);
      return t;
    }
    const i = this.readInt();
    return this.types[i] ?? '';
  }

  private object(defIndex: number, skip: boolean): unknown {
    const def = this.classes[defIndex];
    if (!def) return this.fail(`object instance of undefined class #${defIndex}`);
    const obj: HessianObject | null = skip ? null : { $class: def.name };
    this.refs.push(skip ? SKIPPED : obj);
    for (const f of def.fields) {
      const v = this.value(skip);
      if (this.error) return undefined;
      if (obj) obj[f] = v;
    }
    return skip ? undefined : obj;
  }

  private map(type: string | null, skip: boolean): unknown {
    const obj: Record<string, unknown> | null = skip ? null : {};
    this.refs.push(skip ? SKIPPED : obj);
    while (!this.error) {
      if (this.peek() === 0x5a) { this.pos++; return skip ? undefined : obj; }
      const k = this.value(skip);
      const v = this.value(skip);
      if (obj) {
        const key = typeof k === 'string' ? k : k instanceof Date ? String(k.getTime()) : String(k);
        if (key === '__proto__') Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        else obj[key] = v;
      }
    }
    void type;
    return undefined;
  }

  private list(type: string | null, length: number, skip: boolean): unknown {
    if (length > this.end - this.pos) return this.fail(`list length ${length} is larger than the body`);
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
    void type;
    return this.error ? undefined : skip ? undefined : arr;
  }

  private ref(i: number, skip: boolean): unknown {
    if (!(i >= 0 && i < this.refs.length)) return this.fail(`reference #${i} to a value not seen`);
    if (skip) return undefined;
    const v = this.refs[i];
    return v === SKIPPED ? undefined : v;
  }
}

/** A 64-bit long: a number when exact, else its decimal string. */
function exactLong(v: bigint): number | string {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
}
