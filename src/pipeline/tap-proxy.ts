/**
 * The tap proxy: accept a connection, connect it to the upstream, forward every byte unchanged both ways,
 * and decode both directions beside the forwarding path into exchange records.
 *
 * Forwarding is Node's own `pipe()` (backpressure by pause/resume, FIN one way keeps the other open with
 * allowHalfOpen). The tap listens to the same chunks (no copies) after the pipe has written them, so
 * decoding never delays a byte; it is fenced so that nothing it does can alter or break forwarding.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { AnyRecord, Peer, TlsInfo } from '../records/types.js';
import { emptySinkStats, type SinkStats } from '../sinks/batching.js';
import type { SinkSpec } from '../sinks/spec.js';
import { deliverLines, forEachLine, type RecordCallbackError } from './deliver.js';
import { RecordEmitter } from './record-emitter.js';
import { masker, type MaskOptions } from './stages.js';
import { attachWire, wireOf } from '../records/wire.js';
import { Conversation } from './conversation.js';
import { withOptions } from './options.js';
import { WorkerDecoding, type RemoteConversation } from './worker-decoding.js';
import type { SessionOptions, Side } from './session.js';

export interface TapProxyOptions extends SessionOptions {
  /** Where to listen. Host default 127.0.0.1. */
  listen: { host?: string; port: number };
  /**
   * Where to forward: a fixed address, or one chosen per connection — a transparent proxy behind flowtap's
   * PortInterceptor or iptables REDIRECT asks where each client was going (`getOriginalDestination`).
   */
  upstream: Upstream | ((client: Socket) => Upstream);
  /** A protocol name to force, or 'auto' (default): detected per connection from the first bytes. */
  protocol?: string;
  /** Give up on the upstream after this long, ms. Default 5000. */
  connectTimeout?: number;
  /**
   * Close a connection when neither side has sent a byte for this long, ms (open exchanges are reported
   * as ended by it). Default 0: never — a tap does not shorten what its clients and upstream agreed.
   */
  idleTimeout?: number;
  /** A request unanswered this long becomes a `timeout` record, ms. Default 60 000. */
  timeout?: number;
  /**
   * Copy every complete request to shadow targets: a `Mirror` from `flowtap/replay` (or anything with
   * `write(record)`). It gets each record first, with its wire bytes (`keepRaw` defaults to 1 MiB then);
   * it must never block, and forwarding never waits for it.
   */
  mirror?: { write(record: AnyRecord): void };
  /**
   * Terminate TLS: clients connect with TLS to this certificate (a service's own), the tap decodes the
   * plaintext, and records carry `tls` (version, cipher, SNI, ALPN). ALPN offered: `http/1.1` unless `ALPNProtocols`
   * says otherwise (offer `h2` only when the upstream speaks it: the client's choice is made before the
   * upstream is asked). Without `upstreamTls` the plaintext goes to the upstream as is.
   */
  tls?: { key: string | Buffer; cert: string | Buffer; ALPNProtocols?: string[] };
  /**
   * Re-encrypt to the upstream. Its certificate is verified (against `ca`, else the system's CAs) unless
   * `rejectUnauthorized: false`; the ALPN the client chose is asked of the upstream.
   */
  upstreamTls?: boolean | { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean };
  /**
   * Where decoding runs: `'inline'` (default) on the forwarding loop, or `'worker'` in a worker thread, so
   * forwarding never waits for it (built-in protocols only; not with `mirror`, `keepRaw`, plugin
   * `protocols` or `protos`, which do not cross threads).
   */
  decodeIn?: 'inline' | 'worker';
  /** Worker mode: bytes waiting to be decoded before new ones are shed (counted in `decodeShed`). Default 64 MiB. */
  maxDecodeBacklog?: number;
  /** Put before each connection's number (`connectionId`), so several proxies in one run never share an id. */
  connectionIdPrefix?: string;
  /**
   * Mask secrets before records leave the proxy (`true`: the `mask()` stage's defaults). In worker mode
   * this runs in the decoding thread, before records are serialised there.
   */
  mask?: boolean | MaskOptions;
  /**
   * Worker mode: sinks the decoding thread opens and writes itself (as plain data: `openSink`'s specs).
   * Records are then written where they are made and never come back to the forwarding thread, so no
   * `record` or `lines` event fires; `sinkStats` has each sink's counts and `sinkError` its failures.
   */
  sinks?: SinkSpec[];
}

export interface Upstream { host: string; port: number }

/** A connection's decoding: a Conversation inline, or its stand-in for the worker. */
type Decoding = Conversation | RemoteConversation;

export interface TapProxyStats {
  connections: number;
  open: number;
  records: number;
  bytesFromClients: number;
  bytesFromUpstream: number;
  upstreamErrors: number;
  /** Connections whose decoding was switched off after an internal error (forwarding went on). */
  tapErrors: number;
  /** Records whose `record` listener threw (the listener's bug: decoding and forwarding went on). */
  userErrors: number;
  /** TLS handshakes with clients that failed (only with `tls`). */
  tlsErrors: number;
  /** Worker mode: bytes forwarded but not decoded because the decode backlog was full (their loss is reported). */
  decodeShed: number;
  /** Connections closed by `idleTimeout`. */
  idleClosed: number;
}

export interface ConnectionInfo { connectionId: string; client: Peer; upstream: Peer }

export interface TapProxyEvents {
  record: (record: AnyRecord) => void;
  /**
   * The same records as JSON lines (`text` ends with a newline; `count` lines), for a consumer that writes
   * JSON anyway (`JsonlSink#writeLines`). In worker mode they were serialised in the decoding thread, and
   * records are parsed on this one only when something listens to `record`.
   */
  lines: (text: string, count: number) => void;
  connection: (info: ConnectionInfo) => void;
  close: (info: ConnectionInfo & { bytesFromClient: number; bytesFromUpstream: number }) => void;
  upstreamError: (error: Error, info: ConnectionInfo) => void;
  tapError: (error: Error, info: ConnectionInfo) => void;
  /** A `record` listener threw: its error (with `cause` and `record`); the record went on to the others. */
  userError: (error: RecordCallbackError) => void;
  /** A sink of the decoding thread's own (`sinks`, by index) failed a batch; it retries as it always does. */
  sinkError: (error: Error, sink: number) => void;
}

const now = () => performance.timeOrigin + performance.now();

export class TapProxy extends RecordEmitter<TapProxyEvents> {
  readonly stats: TapProxyStats = {
    connections: 0, open: 0, records: 0, bytesFromClients: 0, bytesFromUpstream: 0, upstreamErrors: 0, tapErrors: 0, userErrors: 0, tlsErrors: 0, decodeShed: 0, idleClosed: 0,
  };
  private readonly server: net.Server;
  private readonly live = new Map<string, { conversation: Decoding | null; sockets: Socket[] }>();
  private sweeper: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly worker: WorkerDecoding | null = null;
  /** Worker mode: connections by id, for the decode errors the worker reports. */
  private readonly infos = new Map<string, ConnectionInfo>();
  /** The counts of the decoding thread's own sinks (`sinks`), as of its last reply; final after `close()`. */
  sinkStats: SinkStats[];

  constructor(private readonly opts: TapProxyOptions) {
    super();
    const maskOptions = opts.mask ? (opts.mask === true ? {} : opts.mask) : undefined;
    if (maskOptions && opts.decodeIn !== 'worker') this.masked = masker(maskOptions);
    this.sinkStats = (opts.sinks ?? []).map(emptySinkStats);
    if (opts.sinks?.length && opts.decodeIn !== 'worker') throw new Error("sinks are opened in the decoding thread: they need decodeIn 'worker'");
    if (opts.decodeIn === 'worker') {
      const cannot = (['mirror', 'keepRaw', 'protocols', 'protos'] as const).filter((k) => opts[k] !== undefined);
      if (cannot.length) throw new Error(`decodeIn 'worker' cannot take ${cannot.join(', ')}: they do not cross threads`);
      this.worker = new WorkerDecoding({
        session: { bodyCapture: opts.bodyCapture, maxHeaderSize: opts.maxHeaderSize, decodeValues: opts.decodeValues,
          traceKeys: opts.traceKeys, spanKeys: opts.spanKeys },
        protocol: opts.protocol, timeout: opts.timeout, connectionIdPrefix: opts.connectionIdPrefix,
        mask: maskOptions, sinks: opts.sinks,
      }, opts.maxDecodeBacklog ?? 64 << 20, {
        lines: (text, count) => this.remoteLines(text, count),
        made: (count) => { this.stats.records += count; },
        sinks: (report) => {
          this.sinkStats = report.stats;
          for (const e of report.errors) this.emit('sinkError', new Error(e.message), e.sink);
        },
        shed: (bytes) => { this.stats.decodeShed += bytes; },
        error: (id, message) => {
          this.stats.tapErrors++;
          const key = (opts.connectionIdPrefix ?? '') + id;
          const c = this.infos.get(key) ?? { connectionId: key, client: { ip: '', port: 0 }, upstream: { ip: '', port: 0 } };
          this.emit('tapError', new Error(message), c);
        },
      });
    }
    this.server = opts.tls
      ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert, ALPNProtocols: opts.tls.ALPNProtocols ?? ['http/1.1'],
        allowHalfOpen: true }, (s) => { s.pause(); this.accept(s); })
      : net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.accept(s));
    // A client whose handshake fails never becomes a connection: nothing to forward, nothing to record.
    this.server.on('tlsClientError', () => { this.stats.tlsErrors++; });
  }

  /** Start listening; resolves with the bound address (port 0 picks a free one). */
  async listen(): Promise<AddressInfo> {
    await this.worker?.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listen.port, this.opts.listen.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.sweeper = setInterval(() => {
      const before = now() - (this.opts.timeout ?? 60_000);
      for (const c of this.live.values()) c.conversation?.expire(before);
    }, 1000);
    this.sweeper.unref();
    return this.server.address() as AddressInfo;
  }

  get address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /** Stop accepting, end open connections, and report what they still had open. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.live.values()) for (const s of c.sockets) s.destroy();
    await closed;
    // Worker mode: what was forwarded is decoded and its records delivered before close resolves.
    await this.worker?.stop();
  }

  private accept(client: Socket): void {
    const n = this.nextId++;
    const connectionId = (this.opts.connectionIdPrefix ?? '') + n;
    const clientPeer: Peer = { ip: normaliseIp(client.remoteAddress), port: client.remotePort ?? 0 };
    let target: Upstream;
    try {
      target = typeof this.opts.upstream === 'function' ? this.opts.upstream(client) : this.opts.upstream;
    } catch (e) {
      // No upstream for this client: nothing to forward to, and a proxy must not guess.
      this.stats.connections++;
      this.stats.upstreamErrors++;
      this.emit('upstreamError', e as Error, { connectionId, client: clientPeer, upstream: { ip: '', port: 0 } });
      reset(client);
      return;
    }
    const upstreamPeer: Peer = { ip: target.host, port: target.port };
    const info: ConnectionInfo = { connectionId, client: clientPeer, upstream: upstreamPeer };
    this.stats.connections++;
    this.stats.open++;
    let conversation: Decoding | null = null;
    const tlsInfo = this.opts.tls ? infoOf(client as TLSSocket) : null;
    if (this.worker) {
      conversation = this.worker.open(n, clientPeer, upstreamPeer, tlsInfo);
      this.infos.set(connectionId, info);
    } else try {
      conversation = new Conversation(withOptions(this.opts, {
        keepRaw: this.opts.keepRaw ?? (this.opts.mirror ? 1 << 20 : undefined),
        client: clientPeer, server: upstreamPeer, connectionId,
        protocol: this.opts.protocol ?? (tlsInfo?.alpn === 'h2' ? 'http2' : 'auto'),
        onRecord: tlsInfo ? (r: AnyRecord) => { r.tls = tlsInfo; this.record(r); } : (r: AnyRecord) => this.record(r),
      }));
    } catch (e) {
      this.tapFailed(e as Error, info, null);
    }
    const entry = { conversation, sockets: [client] as Socket[] };
    this.live.set(connectionId, entry);
    this.emit('connection', info);

    const upstream = this.connectUpstream(target, client);
    entry.sockets.push(upstream);
    let fromClient = 0;
    let fromUpstream = 0;
    let idleReason: string | undefined;
    let connected = false;

    // The tap: after the pipe's own listener (added first), so a chunk is forwarded before it is decoded.
    const tap = (side: Side) => (chunk: Buffer) => {
      if (side === 'client') { fromClient += chunk.length; this.stats.bytesFromClients += chunk.length; }
      else { fromUpstream += chunk.length; this.stats.bytesFromUpstream += chunk.length; }
      const c = entry.conversation;
      if (!c) return;
      try {
        c.write(side, chunk, now());
      } catch (e) {
        this.tapFailed(e as Error, info, entry);
      }
    };
    const end = (side: Side) => () => {
      try { entry.conversation?.end(side, now()); } catch (e) { this.tapFailed(e as Error, info, entry); }
    };

    const connectTimer = setTimeout(() => upstream.destroy(new Error(`connect timed out after ${this.opts.connectTimeout ?? 5000} ms`)),
      this.opts.connectTimeout ?? 5000);
    const idle = this.opts.idleTimeout ?? 0;
    if (idle > 0) {
      // Bytes either way count as activity: each socket's own timer sees only its reads and writes, and
      // every byte read on one side is written on the other, so both timers see all traffic.
      const onIdle = () => {
        if (idleReason) return; // the other socket's timer, for the same silence
        this.stats.idleClosed++;
        idleReason = `closed by flowtap after ${idle} ms without a byte either way`;
        client.destroy();
        upstream.destroy();
      };
      client.setTimeout(idle, onIdle);
      upstream.setTimeout(idle, onIdle);
    }
    upstream.once(this.opts.upstreamTls ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('data', tap('client'));
      upstream.on('data', tap('server'));
      client.on('end', end('client'));
      upstream.on('end', end('server'));
      client.resume();
    });

    // A reset on one side is a reset on the other; a plain close closes the other once both ends are done.
    client.on('error', () => { if (!upstream.destroyed) reset(upstream); });
    upstream.on('error', (e) => {
      clearTimeout(connectTimer);
      if (!connected) {
        this.stats.upstreamErrors++;
        this.emit('upstreamError', e, info);
        // Read what the client already sent, so its request gets a record saying why, then close promptly.
        client.on('data', tap('client'));
        client.resume();
        setTimeout(() => {
          this.finish(entry, `upstream ${upstreamPeer.ip}:${upstreamPeer.port} unreachable: ${(e as NodeJS.ErrnoException).code ?? e.message}`);
          if (!client.destroyed) reset(client);
        }, 10);
        return;
      }
      if (!client.destroyed) reset(client);
    });

    let closedSockets = 0;
    const onClose = () => {
      if (++closedSockets < 2) {
        // Once one side is gone for good, nothing more can cross: close the other.
        const other = client.destroyed ? upstream : client;
        if (other.writableEnded && other.readableEnded) other.destroy();
        return;
      }
      this.stats.open--;
      this.live.delete(connectionId);
      this.infos.delete(connectionId);
      this.finish(entry, idleReason ?? (client.errored || upstream.errored ? 'the connection was reset' : undefined));
      this.emit('close', { ...info, bytesFromClient: fromClient, bytesFromUpstream: fromUpstream });
    };
    client.on('close', onClose);
    upstream.on('close', onClose);
  }

  private connectUpstream(target: Upstream, client: Socket): Socket {
    const u = this.opts.upstreamTls;
    if (!u) return net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const o = typeof u === 'object' ? u : {};
    const alpn = (client as TLSSocket).alpnProtocol;
    return tls.connect({
      host: target.host, port: target.port, ca: o.ca,
      servername: o.servername ?? (net.isIP(target.host) ? undefined : target.host),
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      ALPNProtocols: typeof alpn === 'string' ? [alpn] : undefined,
    });
  }

  private finish(entry: { conversation: Decoding | null }, reason?: string): void {
    const c = entry.conversation;
    entry.conversation = null;
    if (!c) return;
    try { c.close(now(), reason); } catch { this.stats.tapErrors++; }
  }

  /** Worker mode: records arrive as JSON lines; parsed only for `record` listeners. */
  private remoteLines(text: string, count: number): void {
    this.stats.records += count;
    if (this.listenerCount('lines') > 0) deliverLines(this.listeners('lines'), text, count, this.reportUserError, this);
    if (this.listenerCount('record') === 0) return;
    forEachLine(text, (line) => this.emit('record', JSON.parse(line) as AnyRecord));
  }

  private record(raw: AnyRecord): void {
    this.stats.records++;
    const r = this.masked ? this.masked(raw) : raw;
    if (r !== raw) {
      // The wire bytes stay with the masked copy (a recorder needs the traffic as it was).
      const w = wireOf(raw);
      if (w) attachWire(r, w);
    }
    if (this.opts.mirror) {
      // The record as decoded: its wire bytes are what is copied (a masked copy has none), and a shadow gets the real request.
      try { this.opts.mirror.write(raw); } catch (e) { this.emit('tapError', e as Error, { connectionId: r.connectionId, client: r.client, upstream: r.server }); }
    }
    this.emit('record', r);
    if (this.listenerCount('lines') > 0) deliverLines(this.listeners('lines'), JSON.stringify(r) + '\n', 1, this.reportUserError, this);
  }

  private readonly masked: ((r: AnyRecord) => AnyRecord) | null = null;

  protected readonly reportUserError = (e: RecordCallbackError): void => {
    this.stats.userErrors++;
    this.emit('userError', e);
  };

  /** A bug in decoding: report it, stop decoding this connection; forwarding is untouched. */
  private tapFailed(e: Error, info: ConnectionInfo, entry: { conversation: Decoding | null } | null): void {
    this.stats.tapErrors++;
    if (entry) entry.conversation = null;
    this.emit('tapError', e, info);
  }
}

function normaliseIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Close with a TCP reset; a TLS socket (whose handle is not TCP's) is destroyed instead. */
function reset(s: Socket): void {
  if (s instanceof tls.TLSSocket) s.destroy();
  else s.resetAndDestroy();
}

/** What the client's TLS session was, as records report it. */
function infoOf(s: TLSSocket): TlsInfo {
  const v = s.getProtocol?.() ?? null;
  return {
    version: v ? v.replace(/^TLSv/, 'TLS ') : 'unknown',
    cipher: s.getCipher?.()?.standardName ?? null,
    sni: typeof s.servername === 'string' ? s.servername : null,
    alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : null,
  };
}
