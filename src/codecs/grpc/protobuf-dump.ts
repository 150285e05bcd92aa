/**
 * A protobuf message without its schema: `{ "1": value, "2": [v, v] }` by field number. Varints as numbers
 * (decimal strings beyond 2^53), fixed32/64 as numbers, length-delimited fields as text when printable UTF-8,
 * else as a nested message when they parse as one, else base64. Never throws; depth and field count are
 * bounded. Hot for gRPC records: varints are read as plain numbers (BigInt only past 49 bits), and bytes are
 * viewed, not copied.
 */
import { isUtf8 } from 'node:buffer';

export type WireDump = { [field: string]: unknown };

/** Where the last varint read ended (module state: the reader is synchronous and not re-entered mid-read). */
let end = 0;

/** A varint at `i` as a number, a decimal string beyond 2^53, or -1 when cut off or over 10 bytes. */
function varint(buf: Uint8Array, i: number): number | string {
  let v = 0;
  let mul = 1;
  for (let n = 0; n < 7; n++) { // 49 bits: exact in a double
    if (i >= buf.length) return -1;
    const b = buf[i++];
    v += (b & 0x7f) * mul;
    if (!(b & 0x80)) { end = i; return v; }
    mul *= 128;
  }
  let big = BigInt(v);
  for (let shift = 49n; shift < 70n; shift += 7n) {
    if (i >= buf.length) return -1;
    const b = buf[i++];
    big |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) { end = i; return big <= 9007199254740991n ? Number(big) : big.toString(); }
  }
  return -1;
}

/** Bytes `from..to` are printable text: valid UTF-8 without control characters other than tab, CR and LF. */
function printable(b: Utf8Buffer, from: number, to: number): boolean {
  let ascii = true;
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c >= 0x80) { ascii = false; continue; }
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f) return false;
  }
  if (ascii) return true;
  if (!isUtf8(b.subarray(from, to))) return false;
  return /^[\P{C}\t\n\r]*$/u.test(b.utf8Slice(from, to));
}

/** Buffer's own decoders, without toString's argument handling (the offsets here are checked already). */
interface Utf8Buffer extends Buffer { utf8Slice(start: number, end: number): string; base64Slice(start: number, end: number): string }

const view = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)) as Utf8Buffer;

/** Field numbers as object keys, made once for the small ones every message uses. */
const KEYS = Array.from({ length: 64 }, (_, n) => String(n));

/**
 * `truncated`: the bytes are a capped prefix of the message — a last field cut by the cap is kept as far as it
 * goes, and the dump says `$truncated: true`.
 */
export function protobufDump(input: Uint8Array, depth = 0, truncated = false): WireDump | null {
  const buf = view(input);
  const out: WireDump = {};
  let i = 0;
  let fields = 0;
  while (i < buf.length) {
    if (++fields > 10_000) return null;
    const key = varint(buf, i);
    if (typeof key !== 'number' || key < 0) return null;
    i = end;
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) return null;
    let value: unknown;
    if (wire === 0) {
      const v = varint(buf, i);
      if (v === -1) return null;
      i = end;
      value = v;
    } else if (wire === 1) {
      if (i + 8 > buf.length) return null;
      const v = buf.readBigUInt64LE(i);
      value = v <= 9007199254740991n ? Number(v) : v.toString();
      i += 8;
    } else if (wire === 5) {
      if (i + 4 > buf.length) return null;
      value = buf.readUInt32LE(i);
      i += 4;
    } else if (wire === 2) {
      const len = varint(buf, i);
      if (typeof len !== 'number' || len < 0) return null;
      i = end;
      let cut = false;
      if (i + len > buf.length) {
        if (!truncated || depth > 0) return null;
        cut = true;
      }
      const from = i;
      const to = Math.min(buf.length, i + len);
      i = to;
      if (cut) out.$truncated = true;
      if (printable(buf, from, to)) value = buf.utf8Slice(from, to);
      else {
        const nested = depth < 16 && to > from && !cut ? protobufDump(buf.subarray(from, to), depth + 1) : null;
        value = nested ?? buf.base64Slice(from, to);
      }
    } else {
      return null; // groups (3, 4) are long deprecated; other wire types are invalid
    }
    const k = field < KEYS.length ? KEYS[field] : String(field);
    const prev = out[k];
    if (prev === undefined) out[k] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[k] = [prev, value];
  }
  return out;
}
