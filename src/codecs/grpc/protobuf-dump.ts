/**
 * A protobuf message without its schema: `{ "1": value, "2": [v, v] }` by field number. Varints as numbers
 * (decimal strings beyond 2^53), fixed32/64 as numbers, length-delimited fields as a nested message when they
 * parse as one, else text when printable UTF-8, else base64. Never throws; depth and field count are bounded.
 */
import { isUtf8 } from 'node:buffer';

export type WireDump = { [field: string]: unknown };

/**
 * `truncated`: the bytes are a capped prefix of the message — a last field cut by the cap is kept as far as it
 * goes, and the dump says `$truncated: true`.
 */
export function protobufDump(buf: Uint8Array, depth = 0, truncated = false): WireDump | null {
  const out: WireDump = {};
  let i = 0;
  let fields = 0;
  const varint = (): bigint | null => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= buf.length) return null;
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return null;
  };
  while (i < buf.length) {
    if (++fields > 10_000) return null;
    const key = varint();
    if (key === null) return null;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) return null;
    let value: unknown;
    if (wire === 0) {
      const v = varint();
      if (v === null) return null;
      value = v <= 9007199254740991n ? Number(v) : v.toString();
    } else if (wire === 1) {
      if (i + 8 > buf.length) return null;
      const v = Buffer.from(buf.buffer, buf.byteOffset + i, 8).readBigUInt64LE(0);
      value = v <= 9007199254740991n ? Number(v) : v.toString();
      i += 8;
    } else if (wire === 5) {
      if (i + 4 > buf.length) return null;
      value = Buffer.from(buf.buffer, buf.byteOffset + i, 4).readUInt32LE(0);
      i += 4;
    } else if (wire === 2) {
      const len = varint();
      if (len === null) return null;
      let cut = false;
      if (i + Number(len) > buf.length) {
        if (!truncated || depth > 0) return null;
        cut = true;
      }
      const sub = buf.subarray(i, Math.min(buf.length, i + Number(len)));
      i += sub.length;
      if (cut) out.$truncated = true;
      const nested = depth < 16 && sub.length > 0 && !cut ? protobufDump(sub, depth + 1) : null;
      const text = isUtf8(sub) ? Buffer.from(sub).toString('utf8') : null;
      value = text !== null && /^[\P{C}\t\n\r]*$/u.test(text) ? text : nested ?? Buffer.from(sub).toString('base64');
    } else {
      return null; // groups (3, 4) are long deprecated; other wire types are invalid
    }
    const k = String(field);
    const prev = out[k];
    if (prev === undefined) out[k] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[k] = [prev, value];
  }
  return out;
}
