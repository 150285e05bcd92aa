/**
 * One direction of an HTTP/2 connection: bytes in (split anywhere), frames out, header blocks joined across
 * CONTINUATION and HPACK-decoded. Same contract as every decoder: callbacks, errors as values, never throws.
 * An explicit state machine: preface → frame header (9 bytes) → payload.
 */
import type { DecodeError } from '../decoder.js';
import { HpackDecoder, type HeaderField } from './hpack.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** The payload of every empty frame (SETTINGS acks, an END_STREAM DATA frame): read, never kept or written. */
const EMPTY = Buffer.alloc(0);

export const FrameType = {
  DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9,
} as const;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export interface Http2FrameCallbacks {
  /** A complete header block (HEADERS [+ CONTINUATION]) for a stream, decoded. */
  onHeaders(streamId: number, fields: HeaderField[], endStream: boolean, incomplete: boolean, frameBytes: number, time: number): void;
  /** DATA payload (padding removed). `frameBytes` counts the whole frame on the wire. */
  onData(streamId: number, data: Uint8Array, endStream: boolean, frameBytes: number, time: number): void;
  onRstStream?(streamId: number, errorCode: number, time: number): void;
  /** SETTINGS from this direction's sender (not ACKs): id → value. */
  onSettings?(settings: Map<number, number>, time: number): void;
  onGoaway?(lastStreamId: number, errorCode: number, time: number): void;
  /** PUSH_PROMISE: the promised stream and its request header block. */
  onPushPromise?(streamId: number, promisedId: number, fields: HeaderField[], time: number): void;
  onError?(error: DecodeError): void;
  /** Bytes were lost; decoding resumes at the next segment that starts a plausible frame. */
  onGap?(length: number, time: number): void;
}

export interface Http2FrameDecoderOptions extends Http2FrameCallbacks {
  /** The client side starts with the connection preface (unless joined mid-stream). */
  side: 'client' | 'server';
  midStream?: boolean;
  /** Header block octets accepted across CONTINUATION frames. Default 256 KiB. */
  maxHeaderBlock?: number;
}

const enum S { Preface, MaybePreface, Header, Payload, Resync, Closed }

/** Whether `b` starts with a frame header that makes sense (used to resynchronise after a gap). */
function plausibleFrame(b: Buffer): boolean {
  if (b.length < 9) return false;
  const length = b.readUIntBE(0, 3);
  const type = b[3];
  const stream = b.readUInt32BE(5) & 0x7fffffff;
  if (type > 9 || length > 1 << 20) return false;
  const connectionLevel = type === FrameType.SETTINGS || type === FrameType.PING || type === FrameType.GOAWAY;
  if (connectionLevel !== (stream === 0) && type !== FrameType.WINDOW_UPDATE) return false;
  if (type === FrameType.SETTINGS && length % 6 !== 0) return false;
  if (type === FrameType.PING && length !== 8) return false;
  if ((type === FrameType.WINDOW_UPDATE || type === FrameType.RST_STREAM) && length !== 4) return false;
  return true;
}

export class Http2FrameDecoder {
  readonly hpack: HpackDecoder;
  private state: S;
  private readonly header = Buffer.alloc(9);
  private fill = 0;
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private payload: Buffer[] = [];
  private got = 0;
  private time = 0;
  /** A header block in progress (waiting for CONTINUATION). */
  private block: { streamId: number; parts: Buffer[]; size: number; endStream: boolean; frames: number; promised: number } | null = null;
  private readonly maxBlock: number;

  constructor(private readonly opts: Http2FrameDecoderOptions) {
    this.hpack = new HpackDecoder({ midStream: opts.midStream });
    // Joined mid-connection, the client side may still begin with the preface (a capture without the SYN).
    this.state = opts.side === 'client' ? (opts.midStream ? S.MaybePreface : S.Preface) : S.Header;
    this.maxBlock = opts.maxHeaderBlock ?? 256 * 1024;
  }

  write(chunk: Uint8Array, time: number = Date.now()): void {
    if (this.state === S.Closed) return;
    this.time = time;
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    if (this.state === S.Resync) {
      // After lost bytes, a segment start is the best guess for a frame boundary: take it if it looks like one.
      if (!plausibleFrame(b)) return;
      this.state = S.Header;
      this.fill = 0;
    }
    while (i < b.length && this.decoding()) {
      if (this.state === S.MaybePreface) {
        const take = Math.min(PREFACE.length - this.fill, b.length - i);
        if (b.subarray(i, i + take).equals(PREFACE.subarray(this.fill, this.fill + take))) {
          this.fill += take;
          i += take;
          if (this.fill === PREFACE.length) { this.state = S.Header; this.fill = 0; }
          continue;
        }
        // Not a preface: whatever matched so far was frame bytes after all.
        const matched = PREFACE.subarray(0, this.fill);
        this.state = S.Header;
        this.fill = 0;
        if (matched.length > 0) this.write(matched, time);
        continue;
      }
      if (this.state === S.Preface) {
        const take = Math.min(PREFACE.length - this.fill, b.length - i);
        if (!b.subarray(i, i + take).equals(PREFACE.subarray(this.fill, this.fill + take))) {
          return this.fail('preface', 'the client did not open with the HTTP/2 connection preface', this.fill + take);
        }
        this.fill += take;
        i += take;
        if (this.fill === PREFACE.length) { this.state = S.Header; this.fill = 0; }
      } else if (this.state === S.Header) {
        // A header wholly in this chunk (nearly always) is read in place; one split across chunks is
        // gathered byte by byte (Buffer#copy's argument checks cost more than 9 bytes do).
        let h: Uint8Array = b;
        let at = i;
        if (this.fill === 0 && b.length - i >= 9) i += 9;
        else {
          while (this.fill < 9 && i < b.length) this.header[this.fill++] = b[i++];
          if (this.fill < 9) break;
          h = this.header;
          at = 0;
        }
        this.fill = 0;
        this.length = (h[at] << 16) | (h[at + 1] << 8) | h[at + 2];
        this.type = h[at + 3];
        this.flags = h[at + 4];
        this.streamId = ((h[at + 5] << 24) | (h[at + 6] << 16) | (h[at + 7] << 8) | h[at + 8]) & 0x7fffffff;
        if (this.payload.length > 0) this.payload = []; // only a payload split across chunks fills it
        this.got = 0;
        if (this.length === 0) this.frame(EMPTY);
        else this.state = S.Payload;
      } else {
        const take = Math.min(this.length - this.got, b.length - i);
        // Keep a view when the whole payload is in this chunk (the common case); copy only to span chunks.
        const piece = b.subarray(i, i + take);
        i += take;
        this.got += take;
        if (this.got === this.length && this.payload.length === 0) { this.state = S.Header; this.frame(piece); continue; }
        this.payload.push(Buffer.from(piece));
        if (this.got === this.length) { this.state = S.Header; this.frame(Buffer.concat(this.payload)); }
      }
    }
  }

  gap(length: number, time: number = Date.now()): void {
    this.time = time;
    if (length <= 0 || this.state === S.Closed) return;
    this.resync();
    this.opts.onGap?.(length, time);
  }

  /** The decoder is done with: later bytes are ignored, buffers released. */
  close(): void {
    this.state = S.Closed;
    this.block = null;
    this.payload = [];
  }

  /**
   * After lost or undecodable bytes: the next frame boundary is unknown (a later segment start that looks
   * like a frame is taken as one), and the header blocks in between may have changed the HPACK table.
   */
  private resync(): void {
    this.hpack.tolerateUnknown();
    this.block = null;
    this.payload = [];
    this.fill = 0;
    this.state = S.Resync;
  }

  end(time: number = Date.now()): void {
    if (this.state === S.Closed) return;
    this.time = time;
    if (this.state === S.Payload) this.fail('truncated', 'the stream ended inside a frame', 9 + this.got);
    else if (this.state === S.Header && this.fill > 0) this.fail('truncated', 'the stream ended inside a frame', this.fill);
  }

  /** Not skipping to a frame boundary, not closed. (A method: TypeScript would narrow a field compare.) */
  private decoding(): boolean {
    return this.state !== S.Resync && this.state !== S.Closed;
  }

  /** One whole frame; `p` is valid only during this call. */
  private frame(p: Buffer): void {
    const { type, flags, streamId } = this;
    const bytes = 9 + p.length;
    if (this.block && type !== FrameType.CONTINUATION) return this.fail('protocol', `frame type ${type} inside a header block (CONTINUATION expected)`);
    switch (type) {
      case FrameType.DATA: {
        const body = this.unpad(p, flags);
        if (body) this.opts.onData(streamId, body, (flags & END_STREAM) !== 0, bytes, this.time);
        return;
      }
      case FrameType.HEADERS: {
        let body = this.unpad(p, flags);
        if (!body) return;
        if (flags & PRIORITY_FLAG) body = body.subarray(5);
        this.startBlock(streamId, body, (flags & END_STREAM) !== 0, flags, bytes, 0);
        return;
      }
      case FrameType.PUSH_PROMISE: {
        const body = this.unpad(p, flags);
        if (!body || body.length < 4) return this.fail('protocol', 'PUSH_PROMISE too short');
        this.startBlock(streamId, body.subarray(4), false, flags, bytes, body.readUInt32BE(0) & 0x7fffffff);
        return;
      }
      case FrameType.CONTINUATION: {
        const blk = this.block;
        if (!blk || blk.streamId !== streamId) return this.fail('protocol', 'CONTINUATION without a header block in progress');
        blk.size += p.length;
        if (blk.size > this.maxBlock) return this.fail('too_large', `header block over ${this.maxBlock} octets`);
        blk.parts.push(Buffer.from(p));
        blk.frames += bytes;
        if (flags & END_HEADERS) this.finishBlock();
        return;
      }
      case FrameType.RST_STREAM:
        if (p.length >= 4) this.opts.onRstStream?.(streamId, p.readUInt32BE(0), this.time);
        return;
      case FrameType.SETTINGS: {
        if (flags & ACK) return;
        const m = new Map<number, number>();
        for (let k = 0; k + 6 <= p.length; k += 6) m.set(p.readUInt16BE(k), p.readUInt32BE(k + 2));
        this.opts.onSettings?.(m, this.time);
        return;
      }
      case FrameType.GOAWAY:
        if (p.length >= 8) this.opts.onGoaway?.(p.readUInt32BE(0) & 0x7fffffff, p.readUInt32BE(4), this.time);
        return;
      default:
        return; // PRIORITY, PING, WINDOW_UPDATE and unknown types carry nothing records need
    }
  }

  private startBlock(streamId: number, fragment: Buffer, endStream: boolean, flags: number, bytes: number, promised: number): void {
    if (fragment.length > this.maxBlock) return this.fail('too_large', `header block over ${this.maxBlock} octets`);
    // A whole block in one frame (the common case) is decoded in place; only one continued is copied.
    if (flags & END_HEADERS) return this.decodeBlock(streamId, fragment, endStream, bytes, promised);
    this.block = { streamId, parts: [Buffer.from(fragment)], size: fragment.length, endStream, frames: bytes, promised };
  }

  private finishBlock(): void {
    const blk = this.block!;
    this.block = null;
    this.decodeBlock(blk.streamId, blk.parts.length === 1 ? blk.parts[0] : Buffer.concat(blk.parts), blk.endStream, blk.frames, blk.promised);
  }

  private decodeBlock(streamId: number, block: Buffer, endStream: boolean, frames: number, promised: number): void {
    const r = this.hpack.decode(block);
    if ('error' in r) return this.fail('hpack', `header block of stream ${streamId}: ${r.error}`);
    if (promised) this.opts.onPushPromise?.(streamId, promised, r.headers, this.time);
    else this.opts.onHeaders(streamId, r.headers, endStream, r.incomplete, frames, this.time);
  }

  /** Strip PADDED padding; null (after reporting) when the padding does not fit. */
  private unpad(p: Buffer, flags: number): Buffer | null {
    if (!(flags & PADDED)) return p;
    if (p.length < 1 || p[0] >= p.length) { this.fail('protocol', 'padding longer than the frame'); return null; }
    return p.subarray(1, p.length - p[0]);
  }

  /** `size`: bytes of the failed frame (or preface) that were seen; by default the whole frame just read. */
  private fail(code: string, reason: string, size = 9 + this.length): void {
    // As after a gap: skip to the next plausible frame, HPACK expecting entries it never saw.
    this.resync();
    this.opts.onError?.({ code, reason, startTime: this.time, endTime: this.time, size });
  }
}
