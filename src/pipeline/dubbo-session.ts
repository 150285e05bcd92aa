import type { DecodeError } from '../codecs/decoder.js';
import { DubboDecoder, type DubboMessage } from '../codecs/dubbo/decoder.js';
import { dubboStatusClass, type ExchangeRecord, type ExchangeStatus } from '../record.js';
import { anyCaseLookup, traceContext } from '../trace.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side } from './session.js';

export interface DubboRequestPart {
  dubboVersion: string | null;
  service: string | null;
  serviceVersion: string | null;
  method: string | null;
  parameterTypes: string | null;
  args?: unknown[];
  attachments: Record<string, unknown>;
  serializationId: number;
  twoWay: boolean;
}

export interface DubboResponsePart {
  status: number;
  statusName: string;
  kind: 'value' | 'null' | 'exception' | 'error';
  value?: unknown;
  exception?: unknown;
  attachments?: Record<string, unknown>;
}

export type DubboRecord = ExchangeRecord<DubboRequestPart, DubboResponsePart>;

/** Dubbo's response status bytes (org.apache.dubbo.remoting.exchange.Response). */
export const DUBBO_STATUS_NAMES: Record<number, string> = {
  20: 'OK', 25: 'SERIALIZATION_ERROR', 30: 'CLIENT_TIMEOUT', 31: 'SERVER_TIMEOUT', 35: 'CHANNEL_INACTIVE',
  40: 'BAD_REQUEST', 50: 'BAD_RESPONSE', 60: 'SERVICE_NOT_FOUND', 70: 'SERVICE_ERROR', 80: 'SERVER_ERROR',
  90: 'CLIENT_ERROR', 100: 'SERVER_THREADPOOL_EXHAUSTED_ERROR',
};

interface Pending { req: DubboMessage; expired: boolean }

/** Ids of timed-out requests remembered so a late answer is absorbed, not reported as an orphan. */
const EXPIRED_MEMORY = 10_000;

/**
 * Both directions of a Dubbo connection. Requests pair with responses by request id (answers may come in
 * any order); either side may send requests (providers send heartbeats too). Heartbeats are counted.
 */
export class DubboSession extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  /** Heartbeat (event) frames seen, per side that sent them. */
  readonly heartbeats = { client: 0, server: 0 };
  private readonly pending: Record<Side, Map<string, Pending>> = { client: new Map(), server: new Map() };
  private readonly expired = new Set<string>();
  protected readonly decoders: Record<Side, DubboDecoder>;

  constructor(private readonly ctx: SessionContext) {
    super();
    const make = (side: Side) => new DubboDecoder({
      decodeValues: ctx.options.decodeValues,
      onMessage: (m) => this.message(side, m),
      onError: (e) => this.decodeError(side, e),
    });
    this.decoders = { client: make('client'), server: make('server') };
  }

  close(_time: number, reason?: string): void {
    for (const side of ['client', 'server'] as const) {
      for (const p of this.pending[side].values()) {
        if (p.expired) continue;
        if (reason) this.ctx.emit({ ...this.record(side, p.req, null, null, p.req.startTime, null), status: 'server_error', error: reason });
        else this.emit(side, p.req, null, null);
      }
      this.pending[side].clear();
    }
  }

  expire(before: number): void {
    for (const side of ['client', 'server'] as const) {
      for (const [id, p] of this.pending[side]) {
        if (p.req.startTime >= before) continue;
        this.emit(side, p.req, null, null);
        this.pending[side].delete(id);
        this.remember(`${side}:${id}`);
      }
    }
  }

  oldestPending(): number {
    let t = Math.min(this.decoders.client.messageStart, this.decoders.server.messageStart);
    for (const side of ['client', 'server'] as const) for (const p of this.pending[side].values()) if (p.req.startTime < t) t = p.req.startTime;
    return t;
  }

  private message(side: Side, m: DubboMessage): void {
    if (m.event) { this.heartbeats[side]++; return; }
    const other: Side = side === 'client' ? 'server' : 'client';
    if (m.type === 'request') {
      if (!m.twoWay) { this.emit(side, m, null, null); return; } // one-way: ok, no response expected
      this.pending[side].set(m.requestId, { req: m, expired: false });
      return;
    }
    // A response answers a request the other side sent.
    const p = this.pending[other].get(m.requestId);
    if (p) {
      this.pending[other].delete(m.requestId);
      this.emit(other, p.req, m, null);
    } else if (!this.expired.delete(`${other}:${m.requestId}`)) {
      this.emit(other, null, m, null); // its request came before the capture started
    }
  }

  private decodeError(side: Side, e: DecodeError): void {
    this.ctx.emit(this.record(side, null, null, `${e.code}: ${e.reason}`, e.startTime, e.endTime));
  }

  private remember(key: string): void {
    this.expired.add(key);
    if (this.expired.size > EXPIRED_MEMORY) this.expired.delete(this.expired.values().next().value!);
  }

  private emit(side: Side, req: DubboMessage | null, res: DubboMessage | null, error: string | null): void {
    this.ctx.emit(this.record(side, req, res, error, req?.startTime ?? res!.startTime, res?.endTime ?? null));
  }

  private record(side: Side, req: DubboMessage | null, res: DubboMessage | null, decodeError: string | null,
    startTime: number, endTime: number | null): DubboRecord {
    const rb = req?.request ?? null;
    const sb = res?.response ?? null;
    let status: ExchangeStatus;
    let error: string | null = null;
    if (decodeError) { status = 'parse_error'; error = decodeError; }
    else if (req?.bodyError) { status = 'parse_error'; error = `request body: ${req.bodyError}`; }
    else if (res?.bodyError) { status = 'parse_error'; error = `response body: ${res.bodyError}`; }
    else if (res) {
      status = dubboStatusClass(res.status, sb?.kind === 'exception');
      error = sb && (sb.kind === 'exception' || sb.kind === 'error') ? sb.errorMessage : null;
    } else status = req && !req.twoWay ? 'ok' : 'timeout';
    const attachments = rb?.attachments ?? {};
    const trace = traceContext(anyCaseLookup(attachments), this.ctx.options);
    const [client, server] = side === 'client' ? [this.ctx.client, this.ctx.server] : [this.ctx.server, this.ctx.client];
    const request: DubboRequestPart = {
      dubboVersion: rb?.dubboVersion ?? null,
      service: rb?.service ?? null,
      serviceVersion: rb?.serviceVersion ?? null,
      method: rb?.method ?? null,
      parameterTypes: rb?.parameterTypes ?? null,
      attachments,
      serializationId: (req ?? res)?.serializationId ?? 0,
      twoWay: req?.twoWay ?? true,
    };
    if (req?.values?.args) request.args = req.values.args;
    let response: DubboResponsePart | null = null;
    if (res) {
      response = {
        status: res.status,
        statusName: DUBBO_STATUS_NAMES[res.status] ?? 'UNKNOWN',
        kind: sb?.kind ?? (res.status === 20 ? 'value' : 'error'),
      };
      if (res.values && 'value' in res.values) response.value = res.values.value;
      if (res.values?.exception !== undefined) response.exception = res.values.exception;
      if (sb?.attachments) response.attachments = sb.attachments;
    }
    const service = rb?.service ?? '';
    return {
      protocol: 'dubbo',
      client, server,
      connectionId: this.ctx.connectionId,
      requestId: (req ?? res)?.requestId,
      startTime,
      endTime,
      duration: endTime === null ? null : Math.round((endTime - startTime) * 1000) / 1000,
      status,
      code: res?.status ?? null,
      endpoint: rb ? `${service}/${rb.method ?? ''}` : '',
      error,
      traceId: trace.traceId,
      spanId: trace.spanId,
      xRequestId: trace.xRequestId,
      requestSize: req?.size ?? 0,
      responseSize: res?.size ?? 0,
      request,
      response,
    };
  }
}

export const dubboProtocol: ProtocolModule = {
  name: 'dubbo',
  classify(first) {
    if (first.length < 3) return first[0] === 0xda && (first.length < 2 || first[1] === 0xbb) ? undefined : null;
    if (first[0] !== 0xda || first[1] !== 0xbb) return null;
    return first[2] & 0x80 ? 'request' : 'response';
  },
  create: (ctx) => new DubboSession(ctx),
};
