import type { DecodeError, Decoder, DecoderCallbacks } from '../decoder.js';
import { readRequestBody, readResponseBody, type DubboRequestBody, type DubboResponseBody } from './body.js';
import { decodeValues, type DubboValues } from './values.js';
import { copyBytes } from '../bytes.js';

export const DUBBO_MAGIC = 0xdabb;
export const HEADER_SIZE = 16;
export const FLAG_REQUEST = 0x80;
export const FLAG_TWO_WAY = 0x40;
export const FLAG_EVENT = 0x20;
export const SERIALIZATION_HESSIAN2 = 2;

export interface DubboMessage {
  type: 'request' | 'response';
  /** u64 request id, exact, as a decimal string. */
  requestId: string;
  twoWay: boolean;
  /** Event frames: heartbeats (body `N`) and other events; not exchanges. */
  event: boolean;
  serializationId: number;
  /** Response status byte (0 on requests). */
  status: number;
  bodySize: number;
  /** Header + body. */
  size: number;
  startTime: number;
  endTime: number;
  /** Request body as read for records (Hessian 2 only). */
  request: DubboRequestBody | null;
  /** Response body as read for records (Hessian 2 only). */
  response: DubboResponseBody | null;
  /** Full values from hessian.js, when `decodeValues` is on. */
  values?: DubboValues;
  /** The frame was fine but its body did not decode. */
  bodyError: string | null;
  /** With `keepRaw`: header + body as on the wire (the first `keepRaw` bytes when `rawCut`). */
  raw?: Buffer | null;
  rawCut?: boolean;
  /**
   * The frame was not seen whole (a hole, or the end of the stream, inside its body): what is missing.
   * The header's fields are exact; the body's are what its seen bytes held.
   */
  incomplete?: string;
}

export interface DubboDecoderOptions extends DecoderCallbacks<DubboMessage> {
  /** Largest body accepted; a larger frame is an error and is skipped by its length. Default 8 MiB. */
  maxBodySize?: number;
  /** Also decode arguments, return values and exceptions fully with hessian.js. Default false. */
  decodeValues?: boolean;
  /** Keep each frame's wire bytes up to this many (`raw`), for recording and replay. Default 0: off. */
  keepRaw?: number;
}

const enum State { Header, Body, Skip, Resync, Closed }

/**
 * One direction of a Dubbo 2 connection: frames split anywhere in, messages out. An explicit state machine
 * over buffered chunks: a body inside one chunk is read in place, one spanning chunks is gathered once.
 */
export class DubboDecoder implements Decoder {
  private state = State.Header;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  /** Pieces of a body that spans chunks (copies: the caller owns its chunks). */
  private bodyParts: Buffer[] = [];
  private bodyFill = 0;
  private bodyLength = 0;
  private skipLeft = 0;
  private frameStart = 0;
  private time = 0;
  /** Resync: the previous chunk ended with 0xda, which may start the magic. */
  private sawDa = false;
  private readonly maxBody: number;

  constructor(private readonly opts: DubboDecoderOptions) {
    this.maxBody = opts.maxBodySize ?? 8 * 1024 * 1024;
  }

  /** Start time of the frame being read, or Infinity between frames. */
  get messageStart(): number {
    return (this.state === State.Header && this.headerFill === 0) || this.state === State.Resync ? Infinity : this.frameStart;
  }

  write(chunk: Uint8Array, time: number = Date.now()): void {
    if (this.state === State.Closed) return;
    this.time = time;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    const n = buf.length;
    while (i < n && this.open()) {
      switch (this.state) {
        case State.Header: {
          if (this.headerFill === 0) this.frameStart = time;
          // Fast path: a whole header and body inside this chunk are read in place.
          if (this.headerFill === 0 && n - i >= HEADER_SIZE && buf[i] === 0xda && buf[i + 1] === 0xbb) {
            const len = buf.readUInt32BE(i + 12);
            if (len <= this.maxBody && n - i - HEADER_SIZE >= len) {
              this.frame(buf, i, buf, i + HEADER_SIZE, len);
              i += HEADER_SIZE + len;
              break;
            }
          }
          const take = Math.min(HEADER_SIZE - this.headerFill, n - i);
          buf.copy(this.header, this.headerFill, i, i + take);
          // Check the magic as soon as its bytes are here: lost framing is found early.
          if (this.headerFill < 2 && this.header[0] !== 0xda) { this.lostFraming(); break; }
          if (this.headerFill < 2 && this.headerFill + take >= 2 && this.header[1] !== 0xbb) { this.lostFraming(); break; }
          this.headerFill += take;
          i += take;
          if (this.headerFill === HEADER_SIZE) this.headerDone();
          break;
        }
        case State.Body: {
          const take = Math.min(this.bodyLength - this.bodyFill, n - i);
          this.bodyParts.push(copyBytes(buf, i, take));
          this.bodyFill += take;
          i += take;
          if (this.bodyFill === this.bodyLength) {
            const body = this.bodyParts.length === 1 ? this.bodyParts[0] : Buffer.concat(this.bodyParts, this.bodyLength);
            this.bodyParts = [];
            this.state = State.Header;
            this.headerFill = 0;
            this.frame(this.header, 0, body, 0, this.bodyLength);
          }
          break;
        }
        case State.Skip: {
          const take = Math.min(this.skipLeft, n - i);
          this.skipLeft -= take;
          i += take;
          if (this.skipLeft === 0) { this.state = State.Header; this.headerFill = 0; }
          break;
        }
        case State.Resync: {
          const at = this.findMagic(buf, i);
          if (at === -1) { i = n; break; }
          this.state = State.Header;
          this.headerFill = 0;
          if (at === -2) { // the magic's first byte was the last of the previous chunk
            this.header[0] = 0xda;
            this.headerFill = 1;
            this.frameStart = time;
          } else {
            i = at;
          }
          break;
        }
      }
    }
  }

  gap(length: number, time: number = Date.now()): void {
    this.time = time;
    if (length <= 0 || this.state === State.Closed) return;
    if (this.state === State.Skip && length <= this.skipLeft) { this.skipLeft -= length; if (this.skipLeft === 0) this.state = State.Header; return; }
    if (this.state === State.Body) {
      // The header survived: the frame is reported with what its seen bytes hold, at its full length.
      const rest = this.bodyLength - this.bodyFill;
      this.partial(`${Math.min(length, rest)} of its ${this.bodyLength} body bytes are missing from the capture`, this.bodyLength);
      if (length <= rest) {
        // The frame's length says exactly where the next one starts.
        this.skipLeft = rest - length;
        this.state = this.skipLeft > 0 ? State.Skip : State.Header;
        this.headerFill = 0;
        return;
      }
      length -= rest;
      this.error('gap', `${length} bytes missing from the capture`, 0);
    } else if (this.state !== State.Resync) this.error('gap', `${length} bytes missing from the capture`, this.seen());
    this.state = State.Resync;
    this.sawDa = false;
    this.bodyParts = [];
  }

  /** Not closed (a method: TypeScript would narrow a field compare inside the loop). */
  private open(): boolean {
    return this.state !== State.Closed;
  }

  /** The decoder is done with: later bytes are ignored, buffers released. */
  close(): void {
    this.state = State.Closed;
    this.bodyParts = [];
  }

  end(time: number = Date.now()): void {
    this.cut(time, 'the stream ended');
  }

  /**
   * No more bytes will come (end of stream, or of the capture): a frame whose header was seen is reported
   * as far as its bytes go; a header cut short is an error.
   */
  cut(time: number = Date.now(), how = 'the capture ended'): void {
    if (this.state === State.Closed) return;
    this.time = time;
    if (this.state === State.Body) {
      this.partial(`${how} after ${this.bodyFill} of its ${this.bodyLength} body bytes`, this.bodyFill);
    } else if (this.state === State.Header && this.headerFill > 0) {
      this.error('truncated', `${how} inside a frame header`, this.seen());
    }
    this.state = State.Header;
    this.headerFill = 0;
    this.bodyParts = [];
  }

  /** The frame in progress, its header whole, reported with `missing` said; `seenBody` counts in its size. */
  private partial(missing: string, seenBody: number): void {
    const got = this.bodyParts.length === 1 ? this.bodyParts[0] : Buffer.concat(this.bodyParts, this.bodyFill);
    this.bodyParts = [];
    this.frame(this.header, 0, got, 0, got.length, { missing, size: HEADER_SIZE + seenBody, bodySize: this.bodyLength });
  }

  private headerDone(): void {
    const len = this.header.readUInt32BE(12);
    if (len > this.maxBody) {
      this.error('too_large', `frame body of ${len} bytes is over the ${this.maxBody}-byte limit; skipped`, HEADER_SIZE + len);
      this.state = State.Skip;
      this.skipLeft = len;
      if (len === 0) this.state = State.Header;
      return;
    }
    if (len === 0) { this.headerFill = 0; this.frame(this.header, 0, this.header, HEADER_SIZE, 0); return; }
    // Memory follows the bytes that arrive, not the length a header claims.
    this.bodyLength = len;
    this.bodyFill = 0;
    this.bodyParts = [];
    this.state = State.Body;
  }

  /**
   * One frame: header at `h`, body at `b..b+len` (both only valid during this call); `cut` when the body
   * is only the part that was seen.
   */
  private frame(hbuf: Buffer, h: number, bbuf: Buffer, b: number, len: number,
    cut?: { missing: string; size: number; bodySize: number }): void {
    const flag = hbuf[h + 2];
    const hi = hbuf.readUInt32BE(h + 4);
    const lo = hbuf.readUInt32BE(h + 8);
    const msg: DubboMessage = {
      type: flag & FLAG_REQUEST ? 'request' : 'response',
      requestId: hi < 0x200000 ? String(hi * 0x100000000 + lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString(),
      twoWay: (flag & FLAG_TWO_WAY) !== 0,
      event: (flag & FLAG_EVENT) !== 0,
      serializationId: flag & 0x1f,
      status: hbuf[h + 3],
      bodySize: len,
      size: HEADER_SIZE + len,
      startTime: this.frameStart,
      endTime: this.time,
      request: null,
      response: null,
      bodyError: null,
    };
    if (cut) {
      if (msg.event) return; // half a heartbeat is nothing to report
      msg.incomplete = cut.missing;
      msg.size = cut.size;
      msg.bodySize = cut.bodySize;
    }
    if (!msg.event && msg.serializationId === SERIALIZATION_HESSIAN2) {
      if (msg.type === 'request') {
        const r = readRequestBody(bbuf, b, b + len);
        msg.request = r.body;
        msg.bodyError = cut ? null : r.error; // a cut body fails where it was cut: said by `incomplete`
      } else {
        const r = readResponseBody(bbuf, b, b + len, msg.status);
        msg.response = r.body;
        msg.bodyError = cut ? null : r.error;
      }
      if (this.opts.decodeValues && !msg.bodyError && !cut) msg.values = decodeValues(msg, bbuf.subarray(b, b + len));
    }
    if (this.opts.keepRaw) {
      const keep = Math.min(len, Math.max(0, this.opts.keepRaw - HEADER_SIZE));
      msg.raw = Buffer.concat([hbuf.subarray(h, h + HEADER_SIZE), bbuf.subarray(b, b + keep)]);
      msg.rawCut = keep < len;
    }
    this.opts.onMessage(msg);
  }

  private lostFraming(): void {
    this.error('bad_magic', 'bytes where a Dubbo header must start are not 0xdabb; resynchronising on the next magic', this.headerFill + 1);
    this.state = State.Resync;
    this.headerFill = 0;
    this.sawDa = false;
  }

  /** Offset of the next 0xdabb at or after `from`; -2 when it straddled the previous chunk; -1 if none. */
  private findMagic(buf: Buffer, from: number): number {
    if (this.sawDa && from === 0 && buf[0] === 0xbb) { this.sawDa = false; return -2; }
    let i = from;
    for (;;) {
      const at = buf.indexOf(0xda, i);
      if (at < 0) { this.sawDa = false; return -1; }
      if (at + 1 >= buf.length) { this.sawDa = true; return -1; }
      if (buf[at + 1] === 0xbb) { this.sawDa = false; return at; }
      i = at + 1;
    }
  }

  /** Bytes of the frame in progress seen so far. */
  private seen(): number {
    if (this.state === State.Body) return HEADER_SIZE + this.bodyFill;
    return this.state === State.Header ? this.headerFill : 0;
  }

  private error(code: string, reason: string, size: number): void {
    const e: DecodeError = { code, reason, startTime: this.frameStart || this.time, endTime: this.time, size };
    this.opts.onError?.(e);
  }
}

export function dubboDecoder(options: DubboDecoderOptions): DubboDecoder {
  return new DubboDecoder(options);
}
