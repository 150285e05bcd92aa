/**
 * Running a diff: three-way from a recording (each request replayed to primary, secondary and candidate at
 * once), three-way live (a tap proxy in front of the primary, clients get its answer byte for byte, the
 * request mirrored to secondary and candidate), and two-way from files (recorded answers, type 2, against
 * replayed ones, type 3).
 */
import { EventEmitter } from 'eventemitter3';
import { DubboDecoder } from '../codecs/dubbo/decoder.js';
import { GrpcMessageReader } from '../codecs/grpc/messages.js';
import { protobufDump } from '../codecs/grpc/protobuf-dump.js';
import type { ProtoRegistry } from '../codecs/grpc/schemas.js';
import { Http1Decoder, type Http1Message } from '../codecs/http1/decoder.js';
import { TapProxy } from '../pipeline/tap-proxy.js';
import type { AnyRecord } from '../records/types.js';
import { readRecordings, type ReadOptions } from '../replay/files.js';
import { parseTarget } from '../replay/connection.js';
import { Mirror } from '../replay/mirror.js';
import type { Payload } from '../replay/payload.js';
import { Replayer, type ReplayOptions } from '../replay/replayer.js';
import { requestView } from '../replay/request.js';
import type { Selection } from '../replay/select.js';
import { parseBody, type Answer } from './answer.js';
import { DiffEngine, type DiffOptions, type DiffReport } from './engine.js';
import { httpEndpoint, templateMatcher } from './endpoint.js';

/** Bytes of each answer compared (bodies longer than this are compared by their start). */
const BODY_CAP = 1 << 20;

export interface ThreeWayOptions extends DiffOptions {
  primary: string;
  secondary: string;
  candidate: string;
  /** POST, PUT, PATCH, DELETE, gRPC and Dubbo calls are sent to the three sides only when this is set. */
  allowSideEffects?: boolean;
  selection?: Selection;
  /** Replay options for the recording mode (speed, workers, timeout ...). */
  replay?: Partial<ReplayOptions>;
  read?: ReadOptions;
  /** gRPC: decode messages with these schemas, so fields are compared by name. */
  protos?: ProtoRegistry;
}

/** Three-way from a recording: each request to the three sides at once, answers diffed per request. */
export async function diffRecordings(files: readonly string[], o: ThreeWayOptions): Promise<{ report: DiffReport; sent: Record<string, number> }> {
  const engine = new DiffEngine('three-way', o);
  const waiting = new Map<string, (AnyRecord | null | undefined)[]>();
  const settle = (id: string, side: number, r: AnyRecord | null) => {
    const got = waiting.get(id) ?? [undefined, undefined, undefined];
    got[side] = r;
    if (got.every((x) => x !== undefined)) {
      waiting.delete(id);
      if (got[0]) engine.add(got[0], got[1] ?? null, got[2] ?? null);
      else engine.add(got[2] ?? got[1]!, null, null); // the primary did not answer: nothing to compare against
    } else waiting.set(id, got);
  };
  // One replay, each request sent to the three sides at the same moment (as Diffy does): time-dependent
  // fields then differ as much between primary and secondary as between primary and candidate.
  const r = new Replayer({
    speed: 'max', ...o.replay, target: o.primary, also: [o.secondary, o.candidate], keepRaw: BODY_CAP, bodyCapture: BODY_CAP, decodeValues: true, protos: o.protos,
    read: o.read, selection: { ...o.selection, allowSideEffects: o.allowSideEffects ?? false },
  });
  r.on('record', (rec, id, side) => settle(id, side, rec));
  r.on('failure', (_e, id, side) => settle(id, side, null));
  const s = await r.run(files);
  return { report: engine.report(), sent: { primary: s.sent, secondary: s.sent, candidate: s.sent } };
}

export interface ThreeWayEvents {
  /** One request compared (its primary record). */
  compared: (primary: AnyRecord) => void;
}

/**
 * Three-way live: a tap proxy whose upstream is the primary; each complete request is mirrored to the
 * secondary and the candidate, and when both have answered (or failed) the three answers are compared. The
 * clients only ever see the primary's answer, byte for byte, whatever the other two do.
 */
export class ThreeWay extends EventEmitter<ThreeWayEvents> {
  readonly proxy: TapProxy;
  readonly mirror: Mirror;
  readonly engine: DiffEngine;
  private readonly pending = new Map<AnyRecord, (AnyRecord | null | undefined)[]>();
  private readonly skipped = new Set<AnyRecord>();

  constructor(o: ThreeWayOptions & { listen: { host?: string; port: number }; queue?: number; timeout?: number; protos?: ProtoRegistry }) {
    super();
    this.engine = new DiffEngine('three-way', o);
    this.mirror = new Mirror({
      targets: [o.secondary, o.candidate], queue: o.queue, timeout: o.timeout,
      selection: { ...o.selection, allowSideEffects: o.allowSideEffects ?? false }, bodyCapture: BODY_CAP,
    });
    this.proxy = new TapProxy({ listen: o.listen, upstream: parseTarget(o.primary, 'the primary').target, mirror: this.mirror, bodyCapture: BODY_CAP, keepRaw: BODY_CAP, protos: o.protos, decodeValues: true });
    const side = (url: string) => (url === o.secondary ? 1 : 2);
    this.mirror.on('answer', (shadow, primary, url) => this.settle(primary, side(url), shadow));
    this.mirror.on('failure', (_e, primary, url) => this.settle(primary, side(url), null));
    // A side that will not answer this request: no comparison for it (counted by the mirror's stats).
    this.mirror.on('drop', (primary) => {
      if (this.skipped.delete(primary)) this.pending.delete(primary); // both sides dropped it
      else this.skipped.add(primary);
    });
  }

  listen() {
    return this.proxy.listen();
  }

  async close(): Promise<void> {
    await this.proxy.close();
    this.mirror.close();
  }

  report(): DiffReport {
    return this.engine.report();
  }

  private settle(primary: AnyRecord, side: number, r: AnyRecord | null): void {
    if (this.skipped.has(primary)) {
      // The other side's outcome of a request one side dropped: the comparison is off.
      this.skipped.delete(primary);
      this.pending.delete(primary);
      return;
    }
    const got = this.pending.get(primary) ?? [primary, undefined, undefined];
    got[side] = r;
    if (got[1] !== undefined && got[2] !== undefined) {
      this.pending.delete(primary);
      this.engine.add(primary, got[1], got[2]);
      this.emit('compared', primary);
    } else this.pending.set(primary, got);
  }
}

// ---- two-way from files ----

/** Two-way: each request's recorded answer (type 2) against its replayed one (type 3), by id. */
export async function twoWayFromFiles(files: readonly string[], o: DiffOptions & { read?: ReadOptions; protos?: ProtoRegistry } = {}): Promise<DiffReport> {
  const engine = new DiffEngine('two-way', o);
  const match = o.templates?.length ? templateMatcher(o.templates) : undefined;
  const byId = new Map<string, { req?: Payload; original?: Payload; replayed?: Payload }>();
  for await (const p of readRecordings(files, o.read)) {
    const e = byId.get(p.id) ?? {};
    if (p.type === 1) e.req ??= p;
    else if (p.type === 2) e.original = p;
    else e.replayed = p;
    byId.set(p.id, e);
  }
  for (const { req, original, replayed } of byId.values()) {
    if (!req || !original || !replayed) continue;
    let view;
    try { view = requestView(req); } catch { continue; }
    const endpoint = req.protocol === 'http1' || req.protocol === 'http2' ? httpEndpoint(view.method(), view.target(), match) : view.target();
    const body = req.raw ? req.raw.toString('base64') : req.http2!.body.toString('base64');
    const key = `${view.method()} ${view.target()} ${body}`;
    engine.addTwoWay(endpoint, key, answerOfPayload(original, view.method(), o.protos, view.target()), answerOfPayload(replayed, view.method(), o.protos, view.target()),
      `${view.method()} ${view.target()}`);
  }
  return engine.report();
}

/** An answer payload (type 2 or 3) decoded as the diff compares it. */
export function answerOfPayload(p: Payload, method: string, protos?: ProtoRegistry, path?: string): Answer {
  if (p.protocol === 'http1') {
    let m: Http1Message | null = null;
    const d = new Http1Decoder({ type: 'response', bodyCapture: BODY_CAP, requestMethod: () => method, onMessage: (x) => { if (!x.interim) m ??= x; } });
    d.write(p.raw!);
    d.end();
    d.close();
    const res = m as Http1Message | null;
    if (!res) return { status: 'no answer', headers: {}, kind: 'none', body: null, bodyError: 'the recorded answer does not decode' };
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    return { status: String(res.statusCode), headers, ...parseBody(headers['content-type'], res.body) };
  }
  if (p.protocol === 'dubbo') {
    let out: Answer = { status: 'no answer', headers: {}, kind: 'none', body: null };
    const d = new DubboDecoder({ decodeValues: true, onMessage: (m) => {
      const kind = m.response?.kind ?? 'value';
      const attachments: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.response?.attachments ?? {})) attachments[k.toLowerCase()] = String(v);
      out = { status: `dubbo ${m.status} ${kind}`, headers: attachments, kind: 'dubbo',
        body: kind === 'exception' ? { exception: m.values?.exception } : kind === 'error' ? { error: m.response?.errorMessage } : m.values?.value ?? null };
    } });
    d.write(p.raw!);
    return out;
  }
  const h = p.http2!;
  const headers: Record<string, string> = {};
  for (const [k, v] of h.headers) if (!k.startsWith(':')) headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  const status = h.headers.find(([k]) => k === ':status')?.[1] ?? '?';
  if (p.protocol === 'grpc') {
    const trailers = h.trailers ?? h.headers;
    for (const [k, v] of h.trailers ?? []) if (k !== 'grpc-status') headers[`trailer:${k}`] = v;
    const r = new GrpcMessageReader(headers['grpc-encoding'] ?? null, BODY_CAP);
    r.write(h.body);
    const decoded = r.first ? (protos && path ? protos.decode(path, 'response', r.first) : null) ?? protobufDump(r.first, 0, r.firstTruncated) : null;
    return { status: `grpc ${trailers.find(([k]) => k === 'grpc-status')?.[1] ?? 'none'}`, headers, kind: decoded === null ? 'none' : 'protobuf', body: decoded };
  }
  return { status, headers, ...parseBody(headers['content-type'], h.body) };
}
