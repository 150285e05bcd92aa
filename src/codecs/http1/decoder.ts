import type { DecodeError, Decoder, DecoderCallbacks } from '../decoder.js';
import { Llhttp, type ParserHandler } from './llhttp-adapter.js';
import { HeaderKeys } from './header-keys.js';
import { RawKeeper } from './raw-keeper.js';
import { announcedBody, cutReason, messageFromPartial } from './salvage.js';

import type { HeaderMap } from '../../records/types.js';
import { copyBytes } from '../bytes.js';

export type { HeaderMap };

export interface Http1Message {
  type: 'request' | 'response';
  /** `"1.1"`, `"1.0"`. */
  version: string;
  /** Request only. */
  method?: string;
  /** Request only: the request-target as sent. */
  target?: string;
  /** Response only. */
  statusCode?: number;
  /** Response only: the reason phrase. */
  reason?: string;
  headers: HeaderMap;
  trailers: HeaderMap | null;
  /** Full decoded body length (after de-chunking), whatever was captured. */
  bodySize: number;
  /** The first `bodyCapture` bytes of the body, or null when there was none or capture is off. */
  body: Buffer | null;
  /** Bytes of the message on the wire: head + body framing + trailers. */
  size: number;
  /** With `keepRaw`: the message's bytes exactly as on the wire (its first `keepRaw` bytes when `rawCut`). */
  raw?: Buffer | null;
  rawCut?: boolean;
  startTime: number;
  endTime: number;
  /**
   * Request: it asks to leave HTTP/1 (Upgrade header or CONNECT); the decoder holds further bytes until
   * `upgradeAnswered()` says whether the server agreed. Response: the switch happened (101, 2xx to CONNECT);
   * every later byte goes to `onTunnel`.
   */
  upgrade: boolean;
  /** A 1xx response other than 101 (100 Continue, 103 Early Hints): the final response is still to come. */
  interim: boolean;
  /**
   * Body bytes the capture lost inside this message (counted, as Content-Length framed them; the message
   * is otherwise whole). Absent when none were.
   */
  missing?: number;
  /** Set on a message reported when it was cut: `head` (only what the head showed), `body`. */
  incomplete?: 'head' | 'body';
}

export interface Http1DecoderOptions extends DecoderCallbacks<Http1Message> {
  type: 'request' | 'response';
  /**
   * A message head was decoded; its body follows. The same object later reaches `onMessage`, complete.
   * (A request's 100 Continue arrives before its body does, so pairing needs the head early.)
   */
  onHead?: (head: Http1Message) => void;
  /** Largest accepted head (start line + headers), bytes. Default 64 KiB. */
  maxHeaderSize?: number;
  /** Body bytes kept per message (the rest is counted, not kept). Default 4096; 0 keeps none. */
  bodyCapture?: number;
  /**
   * Response side: the method of the request this response answers (framing depends on it: a response to
   * HEAD has no body, a 2xx to CONNECT opens a tunnel). Called once per response head.
   */
  requestMethod?: () => string | undefined;
  /** Bytes after an accepted upgrade/CONNECT: counted or handed to another decoder, never parsed here. */
  onTunnel?: (chunk: Uint8Array, time: number) => void;
  /** The stream is joined mid-way: skip quietly to the first line that starts a message. */
  midStream?: boolean;
  /** Bytes a request decoder may hold while waiting to learn whether an upgrade was accepted. Default 1 MiB. */
  maxHold?: number;
  /** Keep each message's wire bytes up to this many (`raw`), for recording and replay. Default 0: off. */
  keepRaw?: number;
}

const enum Mode { Http, Hold, Tunnel, Resync }

/** Request lines start with a method token; response lines with the version. Used to resynchronise. */
const EMPTY = Buffer.alloc(0);
const ZEROS = Buffer.alloc(64 * 1024);
const RESPONSE_START = Buffer.from('HTTP/1.');
const METHOD_STARTS = ['GET ', 'POST ', 'PUT ', 'DELETE ', 'HEAD ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE ']
  .map((m) => Buffer.from(m));

export class Http1Decoder implements Decoder, ParserHandler {
  private readonly parser: Llhttp;
  private readonly opts: Http1DecoderOptions;
  private readonly bodyCapture: number;
  private readonly maxHold: number;
  private mode = Mode.Http;
  private time = 0;
  private readonly raw: RawKeeper | null;
  private readonly held: Uint8Array[] = [];
  private readonly keys = new HeaderKeys();
  private readonly trailerKeys = new HeaderKeys();
  private heldBytes = 0;
  /** True while a message is under way (begun, not complete). */
  private inMessage = false;
  /** The last message switched protocols: llhttp stopped at its end. */
  private switched = false;
  /** In resync: whether the previous chunk ended at a line start. */
  private atLineStart = false;
  /** In resync: a line start cut by the chunk end that may still become a message start. */
  private carry: Buffer | null = null;

  // The message being parsed.
  private msgStart = 0;
  private cur: Http1Message | null = null;
  private bodyParts: Buffer[] = [];
  /** Body bytes the head announced (see `announcedBody`), and how many of them the capture lost. */
  private announced = 0;
  private lost = 0;
  /** Completed by llhttp; delivered once the parser says where it ended. */
  private done: Http1Message | null = null;
  private captured = 0;
  private headsDone = false;

  constructor(options: Http1DecoderOptions) {
    // A copy (onTunnel is cleared on it after an upgrade), with no keys added: see pipeline/options.ts.
    this.opts = { ...options };
    this.bodyCapture = options.bodyCapture ?? 4096;
    this.maxHold = options.maxHold ?? 1 << 20;
    this.parser = new Llhttp(options.type, options.maxHeaderSize ?? 64 * 1024, this);
    if (options.midStream) { this.mode = Mode.Resync; this.atLineStart = true; }
    this.raw = options.keepRaw ? new RawKeeper(options.keepRaw) : null;
  }

  /** Start time of the message being decoded, or Infinity between messages. */
  get messageStart(): number {
    return this.inMessage ? this.msgStart : Infinity;
  }

  write(chunk: Uint8Array, time: number = Date.now()): void {
    this.time = time;
    // A Buffer view of the same memory (no copy): llhttp and the native indexOf need one.
    const whole = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let buf: Buffer = whole;
    // A loop, not recursion: one chunk may hold many messages, errors and resyncs.
    while (buf.length > 0) {
      switch (this.mode) {
        case Mode.Tunnel: this.opts.onTunnel?.(buf, time); return;
        case Mode.Hold: this.hold(buf); return;
        case Mode.Resync: {
          // A segment boundary is a likely message boundary: let a chunk start be a candidate too.
          if (buf === whole) this.atLineStart = true;
          if (this.carry) { buf = Buffer.concat([this.carry, buf]); this.carry = null; }
          const at = this.findMessageStart(buf);
          if (at < 0) return;
          this.mode = Mode.Http;
          buf = buf.subarray(at);
          break;
        }
        case Mode.Http: buf = this.parse(buf); break;
      }
    }
  }

  gap(length: number, time: number = Date.now()): void {
    this.time = time;
    if (this.mode === Mode.Tunnel || length <= 0) return;
    if (this.mode === Mode.Hold) { this.mode = Mode.Tunnel; return; } // bytes after an upgrade: not ours
    if (this.mode === Mode.Resync) { this.atLineStart = true; return; } // still skipping the message already reported
    // A hole inside a body whose length the head gave: count it and go on; the message stays whole.
    const m = this.cur;
    const room = m && this.headsDone ? this.announced - m.bodySize : 0;
    if (room > 0) {
      const n = Math.min(room, length);
      this.fill(n);
      length -= n;
      if (length === 0) return;
    }
    const where = this.cur ? cutReason(this.cur, `${length} bytes missing from the capture`, this.announced)
      : this.inMessage ? `${length} bytes missing from the capture inside the head` : `${length} bytes missing from the capture`;
    this.fail('gap', where, this.inMessage ? this.msgStart : time);
    // Segments after a hole often start a message: let the next byte be a candidate.
    this.atLineStart = true;
  }

  end(time: number = Date.now()): void {
    this.time = time;
    if (this.mode !== Mode.Http) return;
    if (!this.parser.finish()) {
      const f = this.parser.failure!;
      if (f.code === 'HPE_INVALID_EOF_STATE') this.cut(time, 'the stream ended');
      else this.fail(f.code, f.reason, this.msgStart, f.size);
      return;
    }
    if (this.inMessage) this.cut(time, 'the stream ended');
  }

  /**
   * No more bytes will come, and the message in progress was not delimited by an end of stream (a
   * capture that stops, a connection torn down): it is reported as far as it was seen.
   */
  cut(time: number = Date.now(), how = 'the capture ended'): void {
    this.time = time;
    if (this.mode !== Mode.Http || !this.inMessage) return;
    this.fail('truncated', cutReason(this.cur, how, this.announced), this.msgStart);
  }

  /** Release the native parser; the decoder ignores anything written after this. */
  close(): void {
    this.mode = Mode.Tunnel;
    this.opts.onTunnel = undefined;
    this.parser.close();
  }

  /**
   * Request side: the server answered the upgrade/CONNECT request. Accepted → the held bytes and all later
   * ones are tunnel; refused → they are parsed as HTTP/1 again.
   */
  upgradeAnswered(accepted: boolean): void {
    if (this.mode !== Mode.Hold) return;
    const held = this.held.splice(0);
    this.heldBytes = 0;
    if (accepted) {
      this.mode = Mode.Tunnel;
      for (const c of held) this.opts.onTunnel?.(c, this.time);
      return;
    }
    this.mode = Mode.Http;
    this.parser.reset();
    this.raw?.reset();
    for (const c of held) this.write(c, this.time);
  }

  /** Parse with llhttp; returns what is left for another mode (after an upgrade or an error). */
  private parse(chunk: Buffer): Buffer {
    this.raw?.begin(chunk);
    const consumed = this.parser.execute(chunk);
    if (consumed < 0) {
      const f = this.parser.failure!;
      const at = Math.min(Math.max(f.at, 0), chunk.length);
      this.fail(f.code, f.reason, this.inMessage ? this.msgStart : this.time, f.size);
      // Look for the next message past the failure point, at least one byte on, so we always progress.
      this.atLineStart = false;
      return chunk.subarray(at + 1);
    }
    this.raw?.done(consumed);
    if (!this.switched) return EMPTY;
    this.switched = false;
    this.mode = this.opts.type === 'request' ? Mode.Hold : Mode.Tunnel;
    return chunk.subarray(consumed);
  }

  private hold(chunk: Uint8Array): void {
    if (this.heldBytes + chunk.length > this.maxHold) {
      // Nobody sends this much before an answer to an upgrade unless the answer was yes.
      this.upgradeAnswered(true);
      this.opts.onTunnel?.(chunk, this.time);
      return;
    }
    this.held.push(Buffer.from(chunk)); // copy: the caller owns its chunks
    this.heldBytes += chunk.length;
  }

  private fail(code: string, reason: string, startTime: number, size = this.parser.partial): void {
    const err: DecodeError = { code, reason, startTime, endTime: this.time, size };
    this.salvage(size);
    this.done = null;
    this.raw?.reset();
    this.parser.reset();
    this.resetMessage();
    this.inMessage = false;
    this.switched = false;
    this.carry = null;
    this.mode = Mode.Resync;
    this.opts.onError?.(err);
  }

  /** Offset of a plausible message start in `chunk`, or -1. Only line starts count. */
  private findMessageStart(chunk: Uint8Array): number {
    const starts = this.opts.type === 'response' ? [RESPONSE_START] : METHOD_STARTS;
    let lineStart = this.atLineStart ? 0 : -1;
    for (;;) {
      if (lineStart >= 0) {
        let partial = false;
        for (const s of starts) {
          const m = matchPrefix(chunk, lineStart, s);
          if (m === s.length) return lineStart;
          if (m === chunk.length - lineStart) partial = true;
        }
        if (partial) {
          // Too few bytes to tell: keep them for the next chunk.
          this.carry = Buffer.from(chunk.subarray(lineStart));
          this.atLineStart = true;
          return -1;
        }
      }
      const lf = (chunk as Buffer).indexOf(10, Math.max(lineStart, 0));
      if (lf < 0) {
        this.atLineStart = false;
        return -1;
      }
      lineStart = lf + 1;
      if (lineStart >= chunk.length) { this.atLineStart = true; return -1; }
    }
  }

  /**
   * The message the failure hit keeps what was seen: a head that completed gets its size as seen; one
   * that did not is reported (`onHead`) with what its bytes determine, before the error.
   */
  private salvage(size: number): void {
    const m = this.cur;
    if (m) {
      m.size = size + this.lost;
      m.incomplete = 'body';
      if (this.lost > 0) m.missing = this.lost;
      return;
    }
    if (!this.inMessage) return;
    const p = this.parser.partialHead();
    if (!p) return;
    const partial = messageFromPartial(this.opts.type, p, this.keys.build(p.raw), this.msgStart, size);
    this.opts.onHead?.(partial);
  }

  /** `n` body bytes the capture lost: counted as body (zeros through the parser), never captured. */
  private fill(n: number): void {
    this.lost += n;
    this.captured = this.bodyCapture; // what follows a hole is not the body's next bytes
    this.raw?.reset();
    for (let left = n; left > 0;) {
      const k = Math.min(left, ZEROS.length);
      this.parser.execute(ZEROS.subarray(0, k));
      left -= k;
    }
  }

  private resetMessage(): void {
    this.lost = 0;
    this.announced = 0;
    this.cur = null;
    this.bodyParts = [];
    this.captured = 0;
    this.headsDone = false;
  }

  // ---- llhttp callbacks (ParserHandler) ----

  onMessageBegin(): void {
    this.inMessage = true;
    this.msgStart = this.time;
  }

  onHeadersComplete(
    rawHeaders: string[], method: string | undefined, url: string, statusCode: number,
    statusMessage: string, upgrade: boolean, major: number, minor: number,
  ): number {
    const headers = this.keys.build(rawHeaders);
    const isRequest = this.opts.type === 'request';
    const m: Http1Message = {
      type: this.opts.type,
      version: `${major}.${minor}`,
      method: undefined, target: undefined, statusCode: undefined, reason: undefined,
      headers, trailers: null, bodySize: 0, body: null, size: 0,
      startTime: this.msgStart, endTime: 0, upgrade: false, interim: false,
    };
    this.cur = m;
    this.headsDone = true;
    let ret = 0;
    if (isRequest) {
      m.method = method;
      m.target = url;
      m.upgrade = upgrade;
    } else {
      m.statusCode = statusCode;
      m.reason = statusMessage;
      const reqMethod = statusCode >= 200 || statusCode === 101 ? this.opts.requestMethod?.() : undefined;
      if (statusCode === 101 || (reqMethod === 'CONNECT' && statusCode >= 200 && statusCode < 300)) {
        m.upgrade = true;
        ret = 2;
      } else if (statusCode < 200) {
        m.interim = true;
      } else if (reqMethod === 'HEAD') {
        ret = 1; // llhttp cannot know the request: no body, whatever Content-Length says
      }
      if (upgrade && statusCode === 101) ret = 0; // llhttp already switches on 101
    }
    // 204 and 304 have no body (llhttp applies that itself); a hole after their head is not body.
    const bodyless = m.upgrade || m.interim || ret === 1 || statusCode === 204 || statusCode === 304;
    this.announced = announcedBody(headers, !isRequest, bodyless);
    this.opts.onHead?.(m);
    return ret;
  }

  onBody(chunk: Buffer, at: number, len: number): void {
    const m = this.cur;
    if (!m) return;
    m.bodySize += len;
    const room = this.bodyCapture - this.captured;
    if (room > 0) {
      // A copy: the bytes are the caller's chunk.
      const n = Math.min(room, len);
      this.bodyParts.push(copyBytes(chunk, at, n));
      this.captured += n;
    }
  }

  onMessageComplete(trailers: string[] | null): void {
    const m = this.cur;
    this.inMessage = false;
    if (!m) { this.resetMessage(); return; }
    m.endTime = this.time;
    if (trailers) m.trailers = this.trailerKeys.build(trailers);
    if (this.bodyParts.length === 1) m.body = this.bodyParts[0];
    else if (this.bodyParts.length > 1) m.body = Buffer.concat(this.bodyParts);
    if (m.upgrade) this.switched = true;
    if (this.lost > 0) m.missing = this.lost;
    this.done = m;
    this.resetMessage();
  }

  onMessageEnd(size: number, at: number): void {
    const m = this.done;
    this.done = null;
    if (!m) return;
    m.size = size;
    if (this.raw) {
      const r = this.raw.cut(size, at);
      // With a hole in it the bytes are not the message's: nothing to replay.
      m.raw = m.missing ? null : r.raw;
      m.rawCut = r.cut || m.missing !== undefined;
    }
    this.opts.onMessage(m);
  }
}

export function http1Decoder(options: Http1DecoderOptions): Http1Decoder {
  return new Http1Decoder(options);
}

/** How many bytes of `s` match `buf` at `at` (stops at the first difference or the end of `buf`). */
function matchPrefix(buf: Uint8Array, at: number, s: Uint8Array): number {
  let i = 0;
  while (i < s.length && at + i < buf.length && buf[at + i] === s[i]) i++;
  return i;
}
