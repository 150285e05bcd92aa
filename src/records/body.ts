import { isUtf8 } from 'node:buffer';
import type { BodyFields } from './types.js';

/** Record body fields: UTF-8 text when the captured bytes are valid UTF-8, else base64. */
export function bodyFields(body: Uint8Array | null, bodySize: number): BodyFields {
  return withBody({} as BodyFields, body, bodySize);
}

/**
 * The body fields written onto a record part being built (in bodyFields' key order), which returns it:
 * records add them in place rather than spread a second object per message.
 */
export function withBody<T extends BodyFields>(part: T, body: Uint8Array | null, bodySize: number): T {
  part.bodySize = bodySize;
  if (!body || body.length === 0) return part;
  const all = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length);
  // A cap can cut a multi-byte character: drop the cut tail rather than call the whole body binary.
  const b = all.length < bodySize ? all.subarray(0, utf8Boundary(all)) : all;
  if (isUtf8(b)) { part.body = b.toString('utf8'); return part; }
  part.body = all.toString('base64');
  part.bodyEncoding = 'base64';
  return part;
}

/** The captured body bytes of a record part (text or base64), or null when none was captured. */
export function bodyBytes(part: BodyFields | null | undefined): Buffer | null {
  if (!part || part.body === undefined) return null;
  return Buffer.from(part.body, part.bodyEncoding === 'base64' ? 'base64' : 'utf8');
}

/** Length of `b` without a trailing incomplete UTF-8 sequence. */
function utf8Boundary(b: Uint8Array): number {
  const n = b.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const c = b[n - back];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** A header's value as one string (repeated values joined as HTTP does), or null. */
export function joined(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}
