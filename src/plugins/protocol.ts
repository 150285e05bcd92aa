/**
 * A protocol plugin as a protocol module: the plugin's decoders, flowtap's pairer (by order or by key),
 * and the plugin's record fields on flowtap's record frame. A plugin decoder that throws is contained: the
 * message in hand becomes a parse_error record and that direction is no longer decoded (forwarding and the
 * other connections are untouched).
 */
import type { Decoder, DecodeError } from '../codecs/decoder.js';
import { Pairer, type Exchange } from '../pipeline/pairer.js';
import type { ProtocolModule, ProtocolSession, SessionContext, Side } from '../pipeline/session.js';
import { durationOf } from '../records/status.js';
import type { PluginRecord } from '../records/types.js';
import type { PluginMessage, ProtocolPlugin } from './types.js';

export function protocolModule<M extends PluginMessage>(plugin: ProtocolPlugin<M>): ProtocolModule {
  if (!/^[a-z0-9]+(-[a-z0-9]+)+$/.test(plugin.name)) {
    throw new Error(`protocol plugin name "${plugin.name}" must be lower-case words joined by "-" (e.g. acme-kv)`);
  }
  return { name: plugin.name, classify: (first) => plugin.classify(first), create: (ctx) => new PluginSession(plugin, ctx) };
}

class PluginSession<M extends PluginMessage> implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  private readonly decoders: Record<Side, Decoder | null>;
  private readonly pairer: Pairer<M, M, null, PluginRecord>;
  private readonly key: ((m: M) => string) | null;
  private errors = 0;

  constructor(private readonly plugin: ProtocolPlugin<M>, private readonly ctx: SessionContext) {
    this.key = plugin.pairing === 'order' ? null : plugin.pairing.key;
    this.pairer = new Pairer({ ordered: this.key === null, data: () => null, build: (x) => this.build(x), emit: ctx.emit });
    const make = (side: Side): Decoder | null => this.guard(side, () => plugin.decoder(side, {
      onMessage: (m) => this.message(side, m),
      onError: (e) => this.decodeError(e),
    })) ?? null;
    // guard() clears a side that throws, so the table must exist before the plugin's constructors run.
    this.decoders = { client: null, server: null };
    this.decoders.client = make('client');
    this.decoders.server = make('server');
  }

  write(side: Side, chunk: Uint8Array, time: number): void {
    const d = this.decoders[side];
    if (d) this.guard(side, () => d.write(chunk, time));
  }

  gap(side: Side, length: number, time: number): void {
    const d = this.decoders[side];
    if (d) this.guard(side, () => d.gap(length, time));
  }

  end(side: Side, time: number): void {
    const d = this.decoders[side];
    if (d) this.guard(side, () => d.end(time));
  }

  close(time: number, reason?: string): void {
    this.pairer.close(time, reason);
    for (const side of ['client', 'server'] as const) {
      const d = this.decoders[side];
      if (d) this.guard(side, () => d.close());
    }
  }

  expire(before: number): void {
    this.pairer.expire(before);
  }

  oldestPending(): number {
    let t = this.pairer.oldestPending();
    for (const d of [this.decoders.client, this.decoders.server]) if (d && d.messageStart < t) t = d.messageStart;
    return t;
  }

  private message(side: Side, m: M): void {
    if (side === 'client') {
      const x = this.pairer.open(m.startTime, m, this.key ? this.key(m) : '');
      x.reqDone = true;
      return;
    }
    let x: Exchange<M, M, null> | undefined;
    if (this.key) {
      const key = this.key(m);
      x = this.pairer.get(key);
      if (!x && this.pairer.absorbLate(key)) return;
      x ??= this.pairer.open(m.startTime, null, key);
    } else {
      x = this.pairer.first((e) => !e.resDone);
      if (!x) x = this.pairer.open(m.startTime, null);
    }
    x.res = m;
    x.reqDone = x.resDone = true;
    this.pairer.settle(x);
  }

  private decodeError(e: DecodeError): void {
    // Keyed, an error has no key of its own: a fresh one, so it pairs with nothing.
    const x = this.pairer.open(e.startTime, null, `\0error:${this.errors++}`);
    x.error = `${e.code}: ${e.reason}`;
    x.reqDone = x.resDone = true;
    this.pairer.settle(x);
  }

  /** Run plugin code; a throw stops decoding that direction and leaves a parse_error record saying why. */
  private guard<T>(side: Side, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.decoders[side] = null;
      this.decodeError({ code: 'plugin', reason: `the ${this.plugin.name} decoder threw on the ${side} side: ${(e as Error)?.message ?? e}`,
        startTime: 0, endTime: 0, size: 0 });
      return undefined;
    }
  }

  private build(x: Exchange<M, M, null>): PluginRecord {
    const { req, res } = x;
    let fields;
    try {
      fields = x.error === null ? this.plugin.record(req, res) : null;
    } catch (e) {
      fields = null;
      x.error = `the ${this.plugin.name} plugin's record() threw: ${(e as Error)?.message ?? e}`;
    }
    const start = req?.startTime ?? res?.startTime ?? x.start;
    const endTime = res ? res.endTime : null;
    const record: PluginRecord = {
      protocol: this.plugin.name,
      client: this.ctx.client,
      server: this.ctx.server,
      connectionId: this.ctx.connectionId,
      startTime: start,
      endTime,
      duration: durationOf(start, endTime),
      status: x.error !== null ? 'parse_error' : fields?.status ?? (res ? 'ok' : x.failure ? 'server_error' : 'timeout'),
      code: fields?.code ?? null,
      endpoint: fields?.endpoint ?? '',
      error: x.error ?? fields?.error ?? (res ? null : x.failure),
      traceId: fields?.traceId ?? null,
      spanId: fields?.spanId ?? null,
      xRequestId: null,
      requestSize: req?.size ?? 0,
      responseSize: res?.size ?? 0,
      request: fields?.request ?? {},
      response: fields?.response ?? null,
    };
    if (fields?.attributes) record.attributes = fields.attributes;
    return record;
  }
}
