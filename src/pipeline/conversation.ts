import type { ExchangeRecord, Peer } from '../record.js';
import { protocolByName, protocols } from './protocols.js';
import type { ProtocolModule, ProtocolSession, SessionContext, SessionOptions, Side } from './session.js';

export interface ConversationOptions extends SessionOptions {
  client: Peer;
  server: Peer;
  connectionId: string;
  /** A protocol name (`'http1'`, ...) to force, or `'auto'` (default) to detect from the first bytes. */
  protocol?: string;
  onRecord: (record: ExchangeRecord) => void;
}

/** Bytes buffered while no protocol is recognised yet; past this the connection is left undecoded. */
const DETECT_LIMIT = 64 * 1024;

/**
 * Both directions of one TCP connection. Recognises the protocol from the first bytes (or takes the one it
 * is given), then hands the bytes to that protocol's session, which pairs messages into records.
 */
export class Conversation {
  private session: ProtocolSession | null = null;
  private module: ProtocolModule | null = null;
  private pending: { side: Side; chunk: Buffer; time: number }[] = [];
  private pendingBytes = 0;
  private undecodable = false;
  private readonly first: Record<Side, Buffer | null> = { client: null, server: null };

  constructor(private readonly opts: ConversationOptions) {
    if (opts.protocol && opts.protocol !== 'auto') {
      const m = protocolByName(opts.protocol);
      if (!m) throw new Error(`unknown protocol "${opts.protocol}" (known: ${protocols.map((p) => p.name).join(', ')})`);
      this.start(m);
    }
  }

  /** The protocol decoding this connection, null while undecided, `'unknown'` when none fits. */
  get protocol(): string | null {
    if (this.module) return this.module.name;
    return this.undecodable ? 'unknown' : null;
  }

  get tunnelBytes(): { client: number; server: number } {
    return this.session?.tunnelBytes ?? { client: 0, server: 0 };
  }

  write(side: Side, chunk: Uint8Array, time: number): void {
    if (this.session) { this.session.write(side, chunk, time); return; }
    if (this.undecodable || chunk.length === 0) return;
    const copy = Buffer.from(chunk); // we keep it past the call
    this.pending.push({ side, chunk: copy, time });
    this.pendingBytes += copy.length;
    const seen = this.first[side];
    this.first[side] = seen ? Buffer.concat([seen, copy]).subarray(0, 64) : copy.subarray(0, 64);
    this.detect();
  }

  gap(side: Side, length: number, time: number): void {
    if (this.session) this.session.gap(side, length, time);
    else this.detect(true);
  }

  end(side: Side, time: number): void {
    if (!this.session) this.detect(true);
    this.session?.end(side, time);
  }

  close(time: number, reason?: string): void {
    if (!this.session) this.detect(true);
    this.session?.close(time, reason);
  }

  expire(before: number): void {
    this.session?.expire(before);
  }

  oldestPending(): number {
    if (this.session) return this.session.oldestPending();
    return this.pending.length > 0 ? this.pending[0].time : Infinity;
  }

  /** Pick a protocol from the first bytes of either side; `final` = no more bytes will help. */
  private detect(final = false): void {
    if (this.session || this.undecodable) return;
    let waiting = false;
    for (const m of protocols) {
      for (const side of ['client', 'server'] as const) {
        const first = this.first[side];
        if (!first) continue;
        const verdict = m.classify(first);
        if (verdict === undefined) waiting = true;
        else if (verdict !== null) { this.start(m); return; }
      }
    }
    // Both sides opened with bytes no protocol claims: give up, unless the capture began mid-stream, where
    // the first bytes may be the tail of an earlier message and a later one can still be recognised.
    const bothRefused = !waiting && this.first.client !== null && this.first.server !== null && !this.opts.midStream;
    if (final || bothRefused || this.pendingBytes > DETECT_LIMIT) {
      this.undecodable = true;
      this.pending = [];
    }
  }

  private start(m: ProtocolModule): void {
    const { onRecord, ...rest } = this.opts;
    this.module = m;
    const ctx: SessionContext = {
      client: rest.client, server: rest.server, connectionId: rest.connectionId,
      options: rest, emit: onRecord,
      upgrade: (token, request) => {
        const target = protocols.find((p) => p.upgradeToken === token.toLowerCase());
        return target?.upgrade ? target.upgrade(ctx, request) : null;
      },
    };
    this.session = m.create(ctx);
    const replay = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const p of replay) this.session.write(p.side, p.chunk, p.time);
  }
}
