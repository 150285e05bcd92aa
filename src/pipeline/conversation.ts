import type { AnyRecord, Peer } from '../records/types.js';
import { deliver, type RecordCallbackError, type UserErrorHandler } from './deliver.js';
import { detect, firstBytes } from './detect.js';
import { protocols as builtin } from './protocols.js';
import type { ProtocolModule, ProtocolSession, SessionContext, SessionOptions, Side } from './session.js';

export interface ConversationOptions extends SessionOptions {
  client: Peer;
  server: Peer;
  connectionId: string;
  /** A protocol name (`'http1'`, ...) to force, or `'auto'` (default) to detect from the first bytes. */
  protocol?: string;
  onRecord: (record: AnyRecord) => void;
  /**
   * `onRecord` threw. Default: the error is thrown again from the call that delivered the record, after
   * every record of that call was delivered (decoding state is intact either way).
   */
  onUserError?: UserErrorHandler;
}

/** Bytes buffered while no protocol is recognised yet; past this the connection is left undecoded. */
const DETECT_LIMIT = 64 * 1024;

/**
 * Both directions of one TCP connection. Recognises the protocol from the first bytes (or takes the one it
 * is given), then hands the bytes to that protocol's session, which pairs messages into records. Records
 * are delivered after the session call that made them returns, behind an error boundary.
 */
export class Conversation {
  private session: ProtocolSession | null = null;
  private module: ProtocolModule | null = null;
  private pending: { side: Side; chunk: Buffer; time: number }[] = [];
  private pendingBytes = 0;
  private undecodable = false;
  private readonly first: Record<Side, Buffer | null> = { client: null, server: null };
  private readonly modules: readonly ProtocolModule[];
  /** Records made during the current call, delivered when it returns. */
  private readonly out: AnyRecord[] = [];
  private delivering = false;
  /** The first callback error of this call when there is no onUserError: thrown once delivery is done. */
  private unreported: RecordCallbackError | null = null;
  /** Record callbacks that threw. */
  userErrors = 0;

  constructor(private readonly opts: ConversationOptions) {
    this.modules = opts.protocols ?? builtin;
    if (opts.protocol && opts.protocol !== 'auto') {
      const m = this.modules.find((p) => p.name === opts.protocol);
      if (!m) throw new Error(`unknown protocol "${opts.protocol}" (known: ${this.modules.map((p) => p.name).join(', ')})`);
      this.start(m);
      this.flush();
    }
  }

  /** The protocol decoding this connection, null while undecided, `'unknown'` when none fits. */
  get protocol(): string | null {
    if (this.module) return this.module.name;
    return this.undecodable ? 'unknown' : null;
  }

  /** No decoder took the connection (or none had yet). */
  undecoded(): boolean {
    return this.module === null;
  }

  get tunnelBytes(): { client: number; server: number } {
    return this.session?.tunnelBytes ?? { client: 0, server: 0 };
  }

  write(side: Side, chunk: Uint8Array, time: number): void {
    if (this.session) this.session.write(side, chunk, time);
    else if (!this.undecodable && chunk.length > 0) {
      const copy = Buffer.from(chunk); // we keep it past the call
      this.pending.push({ side, chunk: copy, time });
      this.pendingBytes += copy.length;
      this.first[side] = firstBytes(this.first[side], copy);
      this.detect();
    }
    this.flush();
  }

  gap(side: Side, length: number, time: number): void {
    if (this.session) this.session.gap(side, length, time);
    else this.detect(true);
    this.flush();
  }

  end(side: Side, time: number): void {
    if (!this.session) this.detect(true);
    this.session?.end(side, time);
    this.flush();
  }

  close(time: number, reason?: string): void {
    if (!this.session) this.detect(true);
    this.session?.close(time, reason);
    this.flush();
  }

  expire(before: number): void {
    this.session?.expire(before);
    this.flush();
  }

  oldestPending(): number {
    if (this.session) return this.session.oldestPending();
    return this.pending.length > 0 ? this.pending[0].time : Infinity;
  }

  /** Pick a protocol from the first bytes of either side; `final` = no more bytes will help. */
  private detect(final = false): void {
    if (this.session || this.undecodable) return;
    const found = detect(this.modules, [this.first.client, this.first.server]);
    if (found !== null && found !== 'wait') { this.start(found.module); return; }
    // Both sides opened with bytes no protocol claims: give up, unless the capture began mid-stream, where
    // the first bytes may be the tail of an earlier message and a later one can still be recognised.
    const bothRefused = found === null && this.first.client !== null && this.first.server !== null && !this.opts.midStream;
    if (final || bothRefused || this.pendingBytes > DETECT_LIMIT) {
      this.undecodable = true;
      this.pending = [];
    }
  }

  private start(m: ProtocolModule): void {
    const { onRecord: _r, onUserError: _u, ...rest } = this.opts;
    this.module = m;
    const ctx: SessionContext = {
      client: rest.client, server: rest.server, connectionId: rest.connectionId,
      options: rest, emit: (r) => { this.out.push(r); },
      upgrade: (token, request) => {
        const target = this.modules.find((p) => p.upgradeToken === token.toLowerCase());
        return target?.upgrade ? target.upgrade(ctx, request) : null;
      },
    };
    this.session = m.create(ctx);
    const replay = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const p of replay) this.session.write(p.side, p.chunk, p.time);
  }

  /** Deliver the records the last call made: each behind the boundary, all of them whatever one does. */
  private flush(): void {
    if (this.delivering || this.out.length === 0) return;
    this.delivering = true;
    try {
      for (let i = 0; i < this.out.length; i++) deliver(this.opts.onRecord, this.out[i], this.report);
    } finally {
      this.out.length = 0;
      this.delivering = false;
    }
    const first = this.unreported;
    this.unreported = null;
    if (first !== null) throw first;
  }

  /** Made once, not per record: counts, and hands the error on or keeps the first to throw. */
  private readonly report: UserErrorHandler = (e) => {
    this.userErrors++;
    if (this.opts.onUserError) this.opts.onUserError(e);
    else this.unreported ??= e;
  };
}
