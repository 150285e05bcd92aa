/**
 * One direction of an HTTP/2 connection, as whole messages: frames (frames.ts) assembled per stream into a
 * header block, optional trailers, and a body — captured up to a cap, or, for gRPC, read as length-prefixed
 * messages. A message leaves at END_STREAM; a stream cut short (reset, end of the connection) is taken as
 * it stands with `take()`. Same contract as every decoder: callbacks out, errors as values, never throws;
 * after an error or a gap it resynchronises on the next plausible frame, HPACK tolerating unknown entries.
 */
import type { Decoder, DecoderCallbacks } from '../decoder.js';
import { GrpcMessageReader } from '../grpc/messages.js';
import { Http2FrameDecoder } from './frames.js';
import type { HeaderField } from './hpack.js';
import { copyBytes } from '../bytes.js';

export interface Http2Message {
  streamId: number;
  /** The first non-1xx header block; null when only DATA of the stream was seen. */
  fields: HeaderField[] | null;
  /** A later header block (trailers). */
  trailers: HeaderField[] | null;
  /** Frame bytes of this direction of the stream on the wire (headers, 1xx, DATA, trailers). */
  size: number;
  /** DATA payload bytes (padding removed). */
  bodySize: number;
  /** The first `bodyCapture` bytes of the body (not for gRPC messages). */
  body: Buffer | null;
  /** gRPC streams: the length-prefixed messages, counted, the first one kept. */
  grpc: GrpcMessageReader | null;
  /** With `keepRaw`: every DATA byte (gRPC framing included) up to the cap, and whether the cap cut it. */
  data?: Buffer[];
  dataCut?: boolean;
  /** Some header value could not be resolved (HPACK state from before the capture). */
  hpackIncomplete: boolean;
  startTime: number;
  /** Time of END_STREAM (0 when the stream did not end). */
  endTime: number;
  /** END_STREAM was seen. */
  ended: boolean;
}

export interface Http2DecoderOptions extends DecoderCallbacks<Http2Message> {
  side: 'client' | 'server';
  midStream?: boolean;
  /** Body bytes kept per message. Default 4096. */
  bodyCapture?: number;
  /** Keep every DATA byte up to this many per message (`data`), for recording and replay. Default 0: off. */
  keepRaw?: number;
  /** The message's first header block arrived (it has begun; its body follows). */
  onHead?: (m: Http2Message) => void;
  /** RST_STREAM from this direction's sender. */
  onReset?: (streamId: number, errorCode: number, time: number) => void;
  /** SETTINGS from this direction's sender (not ACKs). */
  onSettings?: (settings: Map<number, number>, time: number) => void;
  /** Bytes were lost (a capture hole) or could not be decoded: messages open now may miss parts. */
  onLoss?: (length: number, time: number) => void;
  /**
   * Whether a stream's messages are gRPC (length-prefixed) rather than a body. Default: its own
   * content-type is application/grpc*.
   */
  isGrpc?: (streamId: number, fields: HeaderField[]) => boolean;
}

export class Http2Decoder implements Decoder {
  private readonly frames: Http2FrameDecoder;
  private readonly open = new Map<number, Http2Message>();
  private readonly cap: number;

  constructor(private readonly opts: Http2DecoderOptions) {
    this.cap = opts.bodyCapture ?? 4096;
    this.frames = new Http2FrameDecoder({
      side: opts.side,
      midStream: opts.midStream,
      onHeaders: (id, fields, endStream, incomplete, bytes, time) => this.headers(id, fields, endStream, incomplete, bytes, time),
      onData: (id, data, endStream, bytes, time) => this.data(id, data, endStream, bytes, time),
      onRstStream: (id, code, time) => opts.onReset?.(id, code, time),
      onSettings: (s, time) => opts.onSettings?.(s, time),
      onError: (e) => opts.onError?.(e),
      onGap: (length, time) => opts.onLoss?.(length, time),
    });
  }

  /** The HPACK decoder of this direction (its table size is bounded by the other side's SETTINGS). */
  get hpack() {
    return this.frames.hpack;
  }

  get messageStart(): number {
    let t = Infinity;
    for (const m of this.open.values()) if (m.startTime < t) t = m.startTime;
    return t;
  }

  write(chunk: Uint8Array, time?: number): void {
    this.frames.write(chunk, time);
  }

  gap(length: number, time?: number): void {
    this.frames.gap(length, time);
  }

  end(time?: number): void {
    this.frames.end(time);
  }

  close(): void {
    this.frames.close();
    this.open.clear();
  }

  /** The message of a stream still open (reset, or the connection ended), removed; null if none. */
  take(streamId: number): Http2Message | null {
    const m = this.open.get(streamId) ?? null;
    this.open.delete(streamId);
    return m;
  }

  private message(id: number, time: number): Http2Message {
    let m = this.open.get(id);
    if (!m) {
      m = { streamId: id, fields: null, trailers: null, size: 0, bodySize: 0, body: null, grpc: null, hpackIncomplete: false,
        startTime: time, endTime: 0, ended: false };
      this.open.set(id, m);
    }
    return m;
  }

  private headers(id: number, fields: HeaderField[], endStream: boolean, incomplete: boolean, bytes: number, time: number): void {
    if (id === 0) return;
    const m = this.message(id, time);
    m.hpackIncomplete ||= incomplete;
    m.size += bytes;
    if (!m.fields) {
      if (this.opts.side === 'server' && statusOf(fields)?.startsWith('1')) return; // 1xx interim: the final headers follow
      m.fields = fields;
      const grpc = this.opts.isGrpc ? this.opts.isGrpc(id, fields) : grpcContentType(fields);
      if (grpc) m.grpc = new GrpcMessageReader(value(fields, 'grpc-encoding'), this.cap);
      this.opts.onHead?.(m);
    } else m.trailers = fields;
    if (endStream) this.ended(m, time);
  }

  private data(id: number, data: Uint8Array, endStream: boolean, bytes: number, time: number): void {
    const m = this.message(id, time);
    m.size += bytes;
    m.bodySize += data.length;
    const keep = this.opts.keepRaw;
    if (keep && data.length > 0) {
      const room = keep - (m.bodySize - data.length);
      if (room > 0) (m.data ??= []).push(copyBytes(data, 0, Math.min(room, data.length)));
      if (room < data.length) m.dataCut = true;
    }
    if (m.grpc) m.grpc.write(data);
    else {
      const kept = m.body?.length ?? 0;
      const room = this.cap - kept;
      if (room > 0 && data.length > 0) {
        // A copy: the frame payload is only valid now.
        const part = copyBytes(data, 0, Math.min(room, data.length));
        m.body = m.body ? Buffer.concat([m.body, part]) : part;
      }
    }
    if (endStream) this.ended(m, time);
  }

  private ended(m: Http2Message, time: number): void {
    m.ended = true;
    m.endTime = time;
    this.open.delete(m.streamId);
    this.opts.onMessage(m);
  }
}

function statusOf(fields: HeaderField[]): string | null {
  return value(fields, ':status');
}

/** A field's value in a decoded block (first occurrence). */
export function value(fields: readonly HeaderField[], name: string): string | null {
  for (const [n, v] of fields) if (n === name) return v;
  return null;
}

/** The fields say `content-type: application/grpc*`. */
export function grpcContentType(fields: readonly HeaderField[]): boolean {
  return /^application\/grpc/.test(value(fields, 'content-type') ?? '');
}
