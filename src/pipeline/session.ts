import type { Decoder } from '../codecs/decoder.js';
import type { AnyRecord, HeaderMap, Peer } from '../records/types.js';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import type { TraceOptions } from '../trace.js';

export type Side = 'client' | 'server';

/** Options every protocol session understands. */
export interface SessionOptions extends TraceOptions {
  /** Body bytes captured per message (default 4096; 0 = none). */
  bodyCapture?: number;
  /** Largest HTTP/1 head accepted, bytes (default 64 KiB). */
  maxHeaderSize?: number;
  /** The connection was already open when watching began: skip quietly to the first whole message. */
  midStream?: boolean;
  /** Dubbo: also decode arguments, return values and exceptions fully (hessian.js). Default false. */
  decodeValues?: boolean;
  /**
   * Keep each message's wire bytes (HTTP/2: every DATA byte) up to this many, beside the record
   * (`wireOf(record)`), for recording and replay. Default 0: off.
   */
  keepRaw?: number;
  /** gRPC: protobuf schemas to decode messages with (else a schema-less dump). */
  protos?: ProtoRegistry;
  /**
   * The protocols detection chooses from, in order: the built-in ones by default; protocol plugins add
   * theirs (`withPlugins`).
   */
  protocols?: readonly ProtocolModule[];
}

export interface SessionContext {
  client: Peer;
  server: Peer;
  connectionId: string;
  options: SessionOptions;
  /** Hands a record out; the conversation delivers it once the decoder call that made it has returned. */
  emit(record: AnyRecord): void;
  /**
   * The connection switches protocol mid-way (HTTP/1.1 `Upgrade: h2c` answered by 101): a session for the
   * protocol named by the upgrade token, which takes the bytes from here on, or null when none decodes it.
   */
  upgrade?(token: string, request: UpgradeRequest): ProtocolSession | null;
}

/** The HTTP/1.1 request that asked for an upgrade; the new protocol may owe it an answer (h2c: stream 1). */
export interface UpgradeRequest {
  method: string | null;
  target: string | null;
  headers: HeaderMap;
  /** Captured request body (up to the body-capture limit) and its full size. */
  body: Buffer | null;
  bodySize: number;
  size: number;
  startTime: number;
}

/**
 * One protocol's view of one connection: it owns a decoder per direction and pairs their messages into
 * exchange records. Decoders decode; sessions pair.
 */
export interface ProtocolSession {
  write(side: Side, chunk: Uint8Array, time: number): void;
  gap(side: Side, length: number, time: number): void;
  end(side: Side, time: number): void;
  /**
   * The connection is over: every exchange still open becomes a record now — a `timeout`, or with `reason`
   * (the upstream was unreachable, the connection was reset) a `server_error` saying why.
   */
  close(time: number, reason?: string): void;
  /** Exchanges started before `before` and still unanswered become `timeout` records. */
  expire(before: number): void;
  /** startTime of the oldest exchange not yet emitted, or Infinity. */
  oldestPending(): number;
  /** Bytes seen after a protocol switch (Upgrade/CONNECT), per side. */
  readonly tunnelBytes: { client: number; server: number };
}

/** How a protocol is recognised from the first bytes of a direction, and how its session is made. */
export interface ProtocolModule {
  name: string;
  /**
   * 'request' or 'response' when these first bytes (of either direction, up to 64) open such a message of
   * this protocol, null when they cannot, undefined when more bytes are needed to tell.
   */
  classify(first: Uint8Array): 'request' | 'response' | null | undefined;
  create(ctx: SessionContext): ProtocolSession;
  /** The HTTP/1.1 upgrade token this protocol answers to (`h2c`), and how its session takes over. */
  upgradeToken?: string;
  upgrade?(ctx: SessionContext, request: UpgradeRequest): ProtocolSession;
}

/** What every session does with bytes: each side's go to that side's decoder. Sessions add the pairing. */
export abstract class PerSideSession {
  protected abstract readonly decoders: Record<Side, Decoder>;

  write(side: Side, chunk: Uint8Array, time: number): void {
    this.decoders[side].write(chunk, time);
  }

  gap(side: Side, length: number, time: number): void {
    this.decoders[side].gap(length, time);
  }

  end(side: Side, time: number): void {
    this.decoders[side].end(time);
  }
}
