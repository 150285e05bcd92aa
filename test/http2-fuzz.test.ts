import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzzHttp2 } from '../scripts/fuzz-http2-lib.js';
import { Conversation, type AnyRecord } from '../src/index.js';

describe('HTTP/2 + gRPC under seeded mutation', () => {
  it('100k mutated exchanges (flips, cuts, splices, giant frame lengths, HPACK bombs), interleaved in random pieces: no throw, no hang, bounded memory', () => {
    const r = fuzzHttp2(100_000, 1);
    expect(r.inputs).toBe(100_000);
    expect(r.records).toBeGreaterThan(50_000); // unmutated directions and harmless mutations still give records
    expect(r.controlRecords).toBe(1000 * 3); // the 1000 unmutated inputs give the fixture's 3 gRPC calls, each ok
    // Half the inputs keep the server direction whole: responses must keep decoding, not just requests.
    expect(r.withResponse).toBeGreaterThan(100_000);
    expect(r.ok).toBeGreaterThan(60_000);
    expect(r.maxMs).toBeLessThan(1000);
    expect(r.heapGrowthMb).toBeLessThan(64);
  }, 300_000);
});

describe('HTTP/2 + gRPC framing split anywhere', () => {
  const dir = new URL('./fixtures/', import.meta.url).pathname;
  const client = readFileSync(join(dir, 'h2-client.bin'));
  const server = readFileSync(join(dir, 'h2-server.bin'));
  type Piece = ['client' | 'server', Buffer];
  function records(pieces: Piece[]): AnyRecord[] {
    const out: AnyRecord[] = [];
    const conv = new Conversation({ client: { ip: 'a', port: 1 }, server: { ip: 'b', port: 2 }, connectionId: '1', protocol: 'http2',
      onRecord: (r) => out.push(r) });
    for (const [side, b] of pieces) conv.write(side, b, 1);
    conv.close(2);
    return out;
  }
  /** Offset of the first frame of `type` in a direction's bytes (after the client's preface). */
  function firstFrame(b: Buffer, type: number): number {
    for (let i = b === client ? 24 : 0; i < b.length; i += 9 + b.readUIntBE(i, 3)) if (b[i + 3] === type) return i;
    throw new Error(`no frame of type ${type}`);
  }
  const whole = records([['client', client], ['server', server]]);

  it('the same records with each direction cut at every offset, and one byte at a time', () => {
    expect(whole.map((r) => [r.protocol, r.status, (r as { request: { messages: number } }).request.messages])).toEqual([
      ['grpc', 'ok', 1], ['grpc', 'ok', 1], ['grpc', 'ok', 1]]);
    for (let at = 1; at < Math.max(client.length, server.length); at++) {
      const cut = (side: 'client' | 'server', b: Buffer): Piece[] => (at < b.length ? [[side, b.subarray(0, at)], [side, b.subarray(at)]] : [[side, b]]);
      expect(records([...cut('client', client), ...cut('server', server)])).toEqual(whole);
    }
    const bytes = (side: 'client' | 'server', b: Buffer): Piece[] => [...b].map((x) => [side, Buffer.of(x)]);
    expect(records([...bytes('client', client), ...bytes('server', server)])).toEqual(whole);
  });

  it('response heads seen before their requests\' (a capture\'s directions out of order) still read as gRPC', () => {
    const reqs = firstFrame(client, 1); // the client's first HEADERS
    const data = firstFrame(server, 0); // the server's first DATA: every response HEADERS is before it
    expect(records([['client', client.subarray(0, reqs)], ['server', server.subarray(0, data)], ['client', client.subarray(reqs)],
      ['server', server.subarray(data)]])).toEqual(whole);
  });
});
