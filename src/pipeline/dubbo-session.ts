/**
 * A Dubbo connection: each direction's decoder gives whole frames; the pairer pairs requests with responses
 * by request id (answers in any order); records/dubbo.ts builds the records. Either side may send
 * requests (providers send heartbeats and callbacks too), so the key is the requesting side and the id.
 * Heartbeats are counted, not recorded.
 */
import type { DecodeError } from '../codecs/decoder.js';
import { DubboDecoder, type DubboMessage } from '../codecs/dubbo/decoder.js';
import { dubboRecord } from '../records/dubbo.js';
import { attachWire } from '../records/wire.js';
import type { DubboRecord } from '../records/types.js';
import { Pairer } from './pairer.js';
import { PerSideSession, type ProtocolModule, type ProtocolSession, type SessionContext, type Side } from './session.js';

export class DubboSession extends PerSideSession implements ProtocolSession {
  readonly tunnelBytes = { client: 0, server: 0 };
  /** Heartbeat (event) frames seen, per side that sent them. */
  readonly heartbeats = { client: 0, server: 0 };
  protected readonly decoders: Record<Side, DubboDecoder>;
  private readonly pairer: Pairer<DubboMessage, DubboMessage, { reversed: boolean }, DubboRecord>;

  constructor(private readonly ctx: SessionContext) {
    super();
    this.pairer = new Pairer({
      ordered: false,
      data: (): { reversed: boolean } => ({ reversed: false }),
      build: (x) => {
        const r = dubboRecord(ctx, { req: x.req, res: x.res, error: x.error, failure: x.failure, start: x.start, reversed: x.data.reversed });
        if (!ctx.options.keepRaw) return r;
        return attachWire(r, { protocol: 'dubbo', request: x.req?.raw ?? null, response: x.res?.raw ?? null,
          requestCut: x.req?.rawCut ?? false, responseCut: x.res?.rawCut ?? false });
      },
      emit: ctx.emit,
    });
    const make = (side: Side) => new DubboDecoder({
      decodeValues: ctx.options.decodeValues,
      keepRaw: ctx.options.keepRaw,
      onMessage: (m) => this.message(side, m),
      onError: (e) => this.decodeError(side, e),
    });
    this.decoders = { client: make('client'), server: make('server') };
  }

  close(time: number, reason?: string): void {
    // Frames still in progress are reported as far as they were seen, before their exchanges close.
    const how = reason ? `the connection ended (${reason})` : 'the capture ended';
    this.decoders.client.cut(time, how);
    this.decoders.server.cut(time, how);
    this.pairer.close(time, reason);
    this.decoders.client.close();
    this.decoders.server.close();
  }

  expire(before: number): void {
    this.pairer.expire(before);
  }

  oldestPending(): number {
    return Math.min(this.decoders.client.messageStart, this.decoders.server.messageStart, this.pairer.oldestPending());
  }

  private message(side: Side, m: DubboMessage): void {
    if (m.event) { this.heartbeats[side]++; return; }
    if (m.type === 'request') {
      const x = this.pairer.open(m.startTime, m, keyOf(side, m.requestId));
      x.data.reversed = side === 'server';
      x.reqDone = true;
      if (!m.twoWay) { x.resDone = true; this.pairer.settle(x); } // one-way: ok, no response expected
      return;
    }
    // A response answers a request the other side sent.
    const requester: Side = side === 'client' ? 'server' : 'client';
    const key = keyOf(requester, m.requestId);
    const x = this.pairer.get(key);
    if (x) {
      x.res = m;
      x.resDone = true;
      this.pairer.settle(x);
    } else if (!this.pairer.absorbLate(key)) {
      // Its request came before the capture started.
      const orphan = this.pairer.open(m.startTime, null, key);
      orphan.data.reversed = requester === 'server';
      orphan.res = m;
      orphan.reqDone = orphan.resDone = true;
      this.pairer.settle(orphan);
    }
  }

  private decodeError(side: Side, e: DecodeError): void {
    // Not an exchange of any id: a record of its own, at once.
    this.ctx.emit(dubboRecord(this.ctx, {
      req: null, res: null, error: `${e.code}: ${e.reason}`, failure: null, start: e.startTime, end: e.endTime, reversed: side === 'server',
    }));
  }
}

/**
 * The pairing key: the request id, marked when the provider sent the request (callbacks). Ids are decimal,
 * so the two cannot meet; the common case is the id string as the decoder made it, with nothing to join.
 */
function keyOf(requester: Side, requestId: string): string {
  return requester === 'client' ? requestId : `s${requestId}`;
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
