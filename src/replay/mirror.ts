/**
 * Mirroring: each complete request the tap proxy sees (HTTP/1, HTTP/2, gRPC, Dubbo) copied to shadow
 * targets, while the primary path stays exactly as it is. A shadow's slowness, errors or death never reach
 * the primary: each shadow has a bounded queue in front of a small connection pool; past the bound, copies
 * are dropped and counted. Answers are discarded, or handed to `answer` listeners (for a diff).
 */
import { EventEmitter } from 'eventemitter3';
import type { AnyRecord } from '../records/types.js';
import { parseTarget, type SendResult, type Target } from './connection.js';
import { Http2Target } from './http2-client.js';
import { payloadsOf, type Payload } from './payload.js';
import { TargetPool } from './pool.js';
import { Http1Request, requestView } from './request.js';
import { rewrite, verdict, type Selection } from './select.js';

export interface MirrorOptions {
  /** Shadow targets: `http://host:port`. */
  targets: readonly string[];
  /** Copies waiting per shadow before new ones are dropped. Default 1000. */
  queue?: number;
  /** Connections per shadow (HTTP/2: streams ×16 on one connection). Default 4. */
  workers?: number;
  /** No answer within this long is a failure, ms. Default 5000. */
  timeout?: number;
  /** GoReplay's filters and rewrites, as for replay (side-effect methods are mirrored unless disallowed). */
  selection?: Selection;
  /** Send the recorded Host instead of the shadow's. */
  keepHost?: boolean;
  /** At most this many copies a second per shadow; the rest are dropped and counted. */
  rate?: number;
  /** Body bytes the shadows' records keep (default 4096; a diff wants whole bodies). */
  bodyCapture?: number;
}

export interface ShadowStats {
  target: string;
  /** Copies handed to this shadow (sent or queued). */
  mirrored: number;
  answered: number;
  failed: number;
  /** Copies dropped because the queue was full. */
  dropped: number;
  /** Requests the filters left out, or that carried no request bytes. */
  skipped: number;
  queued: number;
}

export interface MirrorEvents {
  /** A shadow's answer (its exchange as a record), with the primary's record it mirrors. */
  answer: (shadow: AnyRecord, primary: AnyRecord, target: string) => void;
  failure: (error: string, primary: AnyRecord, target: string) => void;
  /** A copy was dropped (queue full, over the rate) or left out by the filters: no answer will come. */
  drop: (primary: AnyRecord, target: string) => void;
}

interface Shadow {
  url: string;
  target: Target;
  host: string;
  pools: Map<string, TargetPool | Http2Target>;
  stats: ShadowStats;
  pending: number;
  tokens: number;
  refilled: number;
}

export class Mirror extends EventEmitter<MirrorEvents> {
  private readonly shadows: Shadow[];
  private readonly opts: Required<Pick<MirrorOptions, 'queue' | 'workers' | 'timeout'>> & MirrorOptions;

  constructor(options: MirrorOptions) {
    super();
    this.opts = { queue: 1000, workers: 4, timeout: 5000, ...options };
    this.shadows = options.targets.map((t) => {
      const { target, host } = parseTarget(t, 'a mirror target');
      return { url: t, target, host, pools: new Map(), pending: 0, tokens: options.rate ?? 0, refilled: Date.now(),
        stats: { target: t, mirrored: 0, answered: 0, failed: 0, dropped: 0, skipped: 0, queued: 0 } };
    });
  }

  get stats(): ShadowStats[] {
    return this.shadows.map((s) => ({ ...s.stats, queued: s.pending }));
  }

  /** Copy the request of a record made with `keepRaw` to every shadow; never throws, never waits. */
  write(record: AnyRecord): void {
    const payloads = payloadsOf(record);
    for (const s of this.shadows) {
      if (!payloads) { s.stats.skipped++; this.emit('drop', record, s.url); continue; }
      this.copy(s, record, payloads[0]);
    }
  }

  close(): void {
    for (const s of this.shadows) for (const p of s.pools.values()) p.close();
  }

  private copy(s: Shadow, record: AnyRecord, request: Payload): void {
    // Each shadow edits its own copy of the request.
    const p: Payload = { ...request, http2: request.http2 && { ...request.http2, headers: request.http2.headers.map((h) => [h[0], h[1]] as [string, string]) } };
    let view;
    try {
      view = requestView(p);
    } catch {
      s.stats.skipped++;
      this.emit('drop', record, s.url);
      return;
    }
    const selection: Selection = { allowSideEffects: true, ...this.opts.selection, ...(this.opts.keepHost ? {} : { host: s.host }) };
    const v = verdict(selection, view);
    if (v !== null) { s.stats.skipped++; this.emit('drop', record, s.url); return; }
    rewrite(selection, view);
    if (s.pending >= this.opts.queue || !this.token(s)) { s.stats.dropped++; this.emit('drop', record, s.url); return; }
    s.stats.mirrored++;
    s.pending++;
    const send = (): Promise<SendResult> => {
      if (view instanceof Http1Request) return (this.pool(s, 'http1') as TargetPool).send(view.bytes(), view.method());
      if (p.protocol === 'dubbo') return (this.pool(s, 'dubbo') as TargetPool).send(p.raw!);
      return (this.pool(s, 'http2') as Http2Target).send(p.protocol as 'http2' | 'grpc', p.http2!);
    };
    send().then((r) => {
      s.pending--;
      if (r.answer !== null || r.code !== null) {
        s.stats.answered++;
        if (this.listenerCount('answer') > 0) { const shadow = r.record(); if (shadow) this.emit('answer', shadow, record, s.url); }
      } else {
        s.stats.failed++;
        this.emit('failure', r.error ?? 'no answer', record, s.url);
      }
    }, (e: Error) => {
      s.pending--;
      s.stats.failed++;
      this.emit('failure', e.message, record, s.url);
    });
  }

  /** A token bucket with a second of burst: live traffic cannot wait, so over the rate is a drop. */
  private token(s: Shadow): boolean {
    const rate = this.opts.rate;
    if (!rate) return true;
    const t = Date.now();
    s.tokens = Math.min(rate, s.tokens + ((t - s.refilled) * rate) / 1000);
    s.refilled = t;
    if (s.tokens < 1) return false;
    s.tokens--;
    return true;
  }

  private pool(s: Shadow, kind: 'http1' | 'dubbo' | 'http2'): TargetPool | Http2Target {
    let pool = s.pools.get(kind);
    if (!pool) {
      const o = { timeout: this.opts.timeout, keepRaw: 64 * 1024, bodyCapture: this.opts.bodyCapture, decodeValues: this.opts.bodyCapture !== undefined };
      pool = kind === 'http2' ? new Http2Target(s.target, this.opts.workers * 16, o) : new TargetPool(s.target, kind, this.opts.workers, o);
      s.pools.set(kind, pool);
    }
    return pool;
  }
}
