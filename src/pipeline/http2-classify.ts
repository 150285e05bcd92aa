/**
 * Which side of an HTTP/2 connection a direction's first bytes come from. From the start of a connection
 * the client preface says it; joined mid-connection, the content does: a HEADERS block whose first field is
 * a request pseudo-header (`:method`, `:path`, `:scheme`, `:authority`) comes from the client, one with
 * `:status` from the server. Frames either side sends (SETTINGS and PING acknowledgements, PING,
 * WINDOW_UPDATE, PRIORITY, RST_STREAM) are stepped over, never taken as a sign.
 */
import { PREFACE } from '../codecs/http2/frames.js';

type Role = 'request' | 'response' | null | undefined;

const enum T { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE }
const ACK = 0x1;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export function classifyHttp2(first: Uint8Array): Role {
  const n = Math.min(first.length, PREFACE.length);
  if (Buffer.from(first.subarray(0, n)).equals(PREFACE.subarray(0, n))) return n === PREFACE.length ? 'request' : undefined;
  let at = 0;
  for (let frames = 0; ; frames++) {
    if (first.length - at < 9) return first[at] === 0 || at === first.length ? undefined : null;
    const len = (first[at] << 16) | (first[at + 1] << 8) | first[at + 2];
    const type = first[at + 3];
    const flags = first[at + 4];
    const stream = ((first[at + 5] & 0x7f) << 24) | (first[at + 6] << 16) | (first[at + 7] << 8) | first[at + 8];
    if (len > 16384) return null;
    switch (type) {
      case T.SETTINGS:
        if (stream !== 0 || len % 6 !== 0) return null;
        if (flags & ACK) { if (len !== 0) return null; break; }
        // A server opens with SETTINGS; later ones could come from either side, so only a first frame counts.
        return frames === 0 && len <= 60 ? 'response' : null;
      case T.PING: if (stream !== 0 || len !== 8) return null; break;
      case T.WINDOW_UPDATE: if (len !== 4) return null; break;
      case T.PRIORITY: if (stream === 0 || len !== 5) return null; break;
      case T.RST_STREAM: if (stream === 0 || len !== 4) return null; break;
      case T.HEADERS: return stream === 0 || len === 0 ? null : headersRole(first, at + 9, flags);
      default: return null;
    }
    at += 9 + len;
  }
}

/** The role a HEADERS block's first field shows (after padding, priority and table size updates). */
function headersRole(first: Uint8Array, at: number, flags: number): Role {
  if (flags & PADDED) at += 1;
  if (flags & PRIORITY_FLAG) at += 5;
  while (at < first.length && (first[at] & 0xe0) === 0x20) { // dynamic table size update: 001xxxxx
    if ((first[at] & 0x1f) !== 0x1f) { at++; continue; }
    at++;
    while (at < first.length && first[at] & 0x80) at++;
    at++;
  }
  if (at >= first.length) return undefined;
  const b = first[at];
  // Indexed (1xxxxxxx) or a literal whose name is a static index (01xxxxxx, 0000xxxx, 0001xxxx).
  const index = b & 0x80 ? b & 0x7f : (b & 0xc0) === 0x40 ? b & 0x3f : b & 0x0f;
  if (index >= 1 && index <= 7) return 'request'; // :authority, :method, :path, :scheme
  if (index >= 8 && index <= 14) return 'response'; // :status
  return null;
}
