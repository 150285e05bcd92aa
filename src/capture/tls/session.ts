/**
 * TLS inside a capture: each direction's records are read, the hellos parsed, and — given the connection's
 * secrets from a key log — decrypted; the plaintext goes to an inner conversation (HTTP/2 for ALPN `h2`,
 * HTTP/1 for `http/1.1`, else detected), whose records say how they were carried (`tls`). Without keys, or
 * with keys that do not fit, the connection is one record of what the handshake shows.
 */
import { Conversation } from '../../pipeline/conversation.js';
import { withOptions } from '../../pipeline/options.js';
import { protocols as builtin } from '../../pipeline/protocols.js';
import type { ProtocolModule, ProtocolSession, SessionContext, Side } from '../../pipeline/session.js';
import { http1Record } from '../../records/http1.js';
import type { AnyRecord, TlsInfo } from '../../records/types.js';
import { RecordKeys, SUITES, type Suite } from './crypto.js';
import { isHelloRetry, parseEncryptedExtensions, parseHello, versionName, type Hello } from './handshake.js';
import type { KeyLog, Secrets } from './keylog.js';


/** Connections a key log could not open, for the reader's summary. */
export interface TlsStats { decrypted: number; noKeys: number; badKeys: number }

const enum Content { CCS = 20, ALERT = 21, HANDSHAKE = 22, APP = 23 }
const MAX_RECORD = (1 << 14) + 2048;
const EMPTY = Buffer.alloc(0);

interface Dir {
  buf: Buffer;
  hs: Buffer;
  /** Records are protected from here on. */
  protected: boolean;
  keys: RecordKeys | null;
  /** TLS 1.3: this side sent its Finished; application keys are in use. */
  app: boolean;
  /** TLS 1.3 with only the application secret: handshake records are expected not to open. */
  onlyApp: boolean;
  /** Bytes of protected records this side sent that were not decrypted. */
  opaque: number;
  failed: boolean;
}

const dir = (): Dir => ({ buf: EMPTY, hs: EMPTY, protected: false, keys: null, app: false, onlyApp: false, opaque: 0, failed: false });

export class TlsSession implements ProtocolSession {
  private readonly dirs: Record<Side, Dir> = { client: dir(), server: dir() };
  private client: Hello | null = null;
  private server: Hello | null = null;
  private alpn: string | null = null;
  private secrets: Secrets | undefined;
  private tls12: { client: RecordKeys; server: RecordKeys } | null = null;
  private inner: Conversation | null = null;
  private problem: string | null = null;
  private start = 0;
  private counted = false;

  constructor(private readonly ctx: SessionContext, private readonly keylog: KeyLog, private readonly stats: TlsStats) {}

  get tunnelBytes() { return this.inner?.tunnelBytes ?? { client: 0, server: 0 }; }

  write(side: Side, chunk: Uint8Array, time: number): void {
    const d = this.dirs[side];
    if (this.start === 0) this.start = time;
    if (d.failed) { d.opaque += chunk.length; return; }
    // Records are read in place from the caller's chunk; only a record cut by its end is copied, to wait.
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = d.buf.length ? Buffer.concat([d.buf, view]) : view;
    let at = 0;
    while (buf.length - at >= 5) {
      const type = buf[at];
      const len = buf.readUInt16BE(at + 3);
      if (type < 20 || type > 24 || buf[at + 1] !== 3 || len > MAX_RECORD) {
        this.fail(side, `${side} bytes are not TLS records`);
        d.opaque += buf.length - at;
        at = buf.length;
        break;
      }
      if (buf.length - at < 5 + len) break;
      this.record(side, buf.subarray(at, at + 5), buf.subarray(at + 5, at + 5 + len), time);
      at += 5 + len;
    }
    d.buf = at === buf.length ? EMPTY : Buffer.from(buf.subarray(at));
  }

  gap(side: Side, length: number, time: number): void {
    // Record boundaries and sequence numbers are lost with the bytes: this direction cannot be followed.
    this.fail(side, `${length} bytes from the ${side} were lost from the capture; TLS records cannot be followed past them`);
    this.inner?.gap(side, length, time);
  }

  end(side: Side, time: number): void {
    this.inner?.end(side, time);
  }

  close(time: number, reason?: string): void {
    if (this.inner) this.inner.close(time, reason);
    else this.handshakeOnly(time);
    this.count();
  }

  expire(before: number): void {
    this.inner?.expire(before);
  }

  oldestPending(): number {
    return this.inner?.oldestPending() ?? (this.inner === null && this.start > 0 ? this.start : Infinity);
  }

  private get tls13(): boolean {
    return this.server?.version === 0x0304;
  }

  private get suite(): Suite | undefined {
    return this.server?.suite != null ? SUITES[this.server.suite] : undefined;
  }

  private record(side: Side, header: Buffer, body: Buffer, time: number): void {
    const d = this.dirs[side];
    const type = header[0];
    if (!d.protected || (this.tls13 && type === Content.CCS)) {
      if (type === Content.HANDSHAKE) this.handshake(side, body);
      else if (type === Content.CCS) this.changeCipherSpec(side);
      else if (type === Content.APP) { d.opaque += body.length; this.fail(side, 'application data before the handshake protected it'); }
      return;
    }
    if (!d.keys) { d.opaque += body.length; return; }
    let plain = d.keys.decrypt(header, body);
    if (!plain && this.tls13 && !d.app) {
      // A key log with only the traffic secrets: the handshake records cannot be read, the application ones can.
      const app = d.onlyApp ? d.keys : this.appKeys(side);
      if (app && (plain = app.decrypt(header, body))) { d.keys = app; d.app = true; }
      else if (d.onlyApp) { d.opaque += body.length; return; }
    }
    if (!plain) {
      d.opaque += body.length;
      this.stats.badKeys += this.problem === null ? 1 : 0;
      this.fail(side, `the key log's secrets for this connection do not decrypt its ${side} records`);
      return;
    }
    if (plain.type === Content.APP) this.app(side, plain.data, time);
    else if (plain.type === Content.HANDSHAKE) this.handshake(side, plain.data);
  }

  private changeCipherSpec(side: Side): void {
    if (this.tls13 || !this.server) return;
    const d = this.dirs[side];
    d.protected = true;
    if (!this.tls12) {
      const suite = this.suite;
      const master = this.lookup()?.CLIENT_RANDOM;
      if (suite && master && this.client) this.tls12 = RecordKeys.tls12(suite, master, this.client.random, this.server.random);
    }
    d.keys = this.tls12?.[side] ?? null;
  }

  private handshake(side: Side, data: Buffer): void {
    const d = this.dirs[side];
    d.hs = d.hs.length ? Buffer.concat([d.hs, data]) : data;
    while (d.hs.length >= 4) {
      const len = d.hs.readUIntBE(1, 3);
      if (d.hs.length < 4 + len) break;
      const type = d.hs[0];
      const body = d.hs.subarray(4, 4 + len);
      d.hs = d.hs.subarray(4 + len);
      this.message(side, type, body);
    }
    // A message cut by the record's end waits for the next one: kept as a copy (the record may be the caller's).
    d.hs = d.hs.length ? Buffer.from(d.hs) : EMPTY;
  }

  private message(side: Side, type: number, body: Buffer): void {
    const d = this.dirs[side];
    if (type === 1 && side === 'client') this.client = parseHello(1, body);
    else if (type === 2 && side === 'server') {
      const h = parseHello(2, body);
      if (!h || isHelloRetry(h)) return; // a HelloRetryRequest: the real ServerHello follows
      this.server = h;
      if (h.alpn.length) this.alpn = h.alpn[0];
      if (this.tls13) {
        // Everything after the ServerHello is protected, both ways, with the handshake secrets first.
        const s = this.lookup();
        const suite = this.suite;
        for (const [who, secret] of [['client', s?.CLIENT_HANDSHAKE_TRAFFIC_SECRET], ['server', s?.SERVER_HANDSHAKE_TRAFFIC_SECRET]] as const) {
          const x = this.dirs[who];
          x.protected = true;
          x.keys = suite && secret ? RecordKeys.tls13(suite, secret) : this.appKeys(who);
          x.onlyApp = !secret && x.keys !== null;
        }
      }
    } else if (type === 8 && side === 'server') {
      const alpn = parseEncryptedExtensions(body);
      if (alpn.length) this.alpn = alpn[0];
    } else if (type === 20 && this.tls13 && !d.app) {
      // Finished: this side's application secret from here on.
      d.keys = this.appKeys(side);
      d.app = true;
    } else if (type === 24 && this.tls13) {
      d.keys?.update(); // KeyUpdate: the next record uses the next generation
    }
  }

  private appKeys(side: Side): RecordKeys | null {
    const s = this.lookup();
    const secret = side === 'client' ? s?.CLIENT_TRAFFIC_SECRET_0 : s?.SERVER_TRAFFIC_SECRET_0;
    const suite = this.suite;
    return suite && secret ? RecordKeys.tls13(suite, secret) : null;
  }

  private lookup(): Secrets | undefined {
    if (!this.client) return undefined;
    return (this.secrets ??= this.keylog.get(this.client.random));
  }

  private app(side: Side, data: Buffer, time: number): void {
    if (!this.inner) {
      // What TLS carries is decoded by the other protocols (the built-in ones if only TLS was given).
      const others = (this.ctx.options.protocols ?? builtin).filter((p) => p.name !== 'tls');
      const protocols = others.length > 0 ? others : builtin;
      const chosen = this.alpn === 'h2' ? 'http2' : this.alpn === 'http/1.1' ? 'http1' : 'auto';
      const protocol = protocols.some((p) => p.name === chosen) ? chosen : 'auto';
      const info = this.info();
      const { emit } = this.ctx;
      this.inner = new Conversation(withOptions(this.ctx.options, {
        midStream: false, protocols,
        client: this.ctx.client, server: this.ctx.server, connectionId: this.ctx.connectionId, protocol,
        onRecord: (r: AnyRecord) => { r.tls = info; emit(r); },
      }));
    }
    this.inner.write(side, data, time);
  }

  private info(): TlsInfo {
    const suite = this.suite;
    return {
      version: versionName(this.server?.version ?? this.client?.version ?? 0),
      cipher: suite?.name ?? (this.server?.suite != null ? `0x${this.server.suite.toString(16).padStart(4, '0')}` : null),
      sni: this.client?.sni ?? null,
      alpn: this.alpn,
    };
  }

  private fail(side: Side, why: string): void {
    this.dirs[side].failed = true;
    this.problem ??= why;
  }

  /** Counted once per connection, at its end. */
  private count(): void {
    if (this.counted) return;
    this.counted = true;
    if (this.inner) this.stats.decrypted++;
    else if (!this.lookup()) this.stats.noKeys++; // keys that were there but failed are counted as badKeys
  }

  /** No plaintext came out: one record of what the handshake showed, saying why. */
  private handshakeOnly(time: number): void {
    const info = this.info();
    const opaque = this.dirs.client.opaque + this.dirs.server.opaque;
    const why = this.problem ?? (this.lookup() ? 'no application data was seen'
      : this.client ? 'no secrets for this connection in the key log' : 'no ClientHello was seen, so no key could be found');
    const r = http1Record(this.ctx, {
      req: null, res: null, resDone: false, interim: [], error: `TLS (${info.version}${info.sni ? `, ${info.sni}` : ''}${info.alpn ? `, ALPN ${info.alpn}` : ''}): ${why}; ${opaque} protected bytes not decoded`,
      failure: null, expired: false, closedAt: time, start: this.start || time,
    });
    r.tls = info;
    this.ctx.emit(r);
  }
}

/** TLS as a protocol module: recognised by a ClientHello or ServerHello record; decrypted with `keylog`. */
export function tlsProtocol(keylog: KeyLog, stats: TlsStats): ProtocolModule {
  return {
    name: 'tls',
    classify(first) {
      if (first.length < 6) return first[0] === 0x16 && (first.length < 2 || first[1] === 3) ? undefined : null;
      if (first[0] !== 0x16 || first[1] !== 3 || first[2] > 4) return null;
      return first[5] === 1 ? 'request' : first[5] === 2 ? 'response' : null;
    },
    create: (ctx) => new TlsSession(ctx, keylog, stats),
  };
}
