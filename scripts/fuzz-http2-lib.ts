/**
 * Seeded mutation fuzzing for the HTTP/2 + gRPC path (frames, HPACK, streams, gRPC messages), shared by the
 * test suite (100k inputs) and `scripts/fuzz-http2.ts` (1M). Fixtures: both byte streams of a real Node
 * http2 gRPC-style exchange (test/fixtures/h2-*.bin).
 */
import { collectGarbage } from './gc.js';
import { readFileSync } from 'node:fs';
import { Conversation } from '../src/index.js';
import { seededRandom } from './seeded-random.js';

const fixture = (name: string) => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url));

function mutate(r: () => number, base: Buffer, other: Buffer): Buffer {
  let b = Buffer.from(base);
  for (let k = 0, ops = 1 + Math.floor(r() * 4); k < ops; k++) {
    const at = Math.floor(r() * b.length);
    switch (Math.floor(r() * 7)) {
      case 0: b[at] ^= 1 << Math.floor(r() * 8); break;
      case 1: b[at] = Math.floor(r() * 256); break;
      case 2: b = b.subarray(0, at); break;
      case 3: b = Buffer.concat([b.subarray(0, at), other.subarray(Math.floor(r() * other.length))]); break;
      case 4: { const len = Math.floor(r() * 40); b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]); break; }
      case 5: if (at + 3 <= b.length) b.writeUIntBE([0xffffff, 0x4000, 0x3fff][Math.floor(r() * 3)], at, 3); break; // giant frame length
      case 6: { // HPACK bombs: huge integers, a table-size update past the limit, endless CONTINUATION
        const bomb = [Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x3f, 0xe1, 0xff, 0xff, 0x0f]),
          Buffer.concat(Array.from({ length: 50 }, () => Buffer.from([0, 0, 4, 9, 0, 0, 0, 0, 1, 0xbe, 0xbe, 0xbe, 0xbe])))][Math.floor(r() * 3)];
        b = Buffer.concat([b.subarray(0, at), bomb, b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

export interface FuzzResult {
  inputs: number;
  records: number;
  /** Records that carry a decoded response, and those that decoded whole (status ok). */
  withResponse: number;
  ok: number;
  /** ok records made from the unmutated pairs (every 100th input): 3 each, or the harness is broken. */
  controlRecords: number;
  maxMs: number;
  heapGrowthMb: number;
}

export function fuzzHttp2(count: number, seed: number): FuzzResult {
  const r = seededRandom(seed);
  const client = fixture('h2-client.bin');
  const server = fixture('h2-server.bin');
  let records = 0;
  let withResponse = 0;
  let ok = 0;
  let controlRecords = 0;
  let maxMs = 0;
  collectGarbage();
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    // Every 100th input is left whole: a control that the harness itself still decodes records.
    const control = i % 100 === 0;
    const c = control || i % 2 === 0 ? client : mutate(r, client, server);
    const s = control || i % 2 === 1 ? server : mutate(r, server, client);
    const t0 = performance.now();
    const conv = new Conversation({ client: { ip: 'a', port: 1 }, server: { ip: 'b', port: 2 }, connectionId: String(i),
      protocol: i % 3 === 0 ? 'auto' : 'http2', midStream: i % 5 === 0, onRecord: (rec) => {
        records++;
        if (rec.response !== null) withResponse++;
        if (rec.status === 'ok') ok++;
        if (control && rec.status === 'ok') controlRecords++;
      } });
    // Interleave random-sized pieces of both directions, as a capture would.
    let ci = 0;
    let si = 0;
    while (ci < c.length || si < s.length) {
      const n = 1 + Math.floor(r() * 48);
      // (The control sends its requests first: an answer before its request is not something a capture shows.)
      if (ci < c.length && (si >= s.length || control || r() < 0.5)) { conv.write('client', c.subarray(ci, ci + n), i); ci += n; }
      else { conv.write('server', s.subarray(si, si + n), i); si += n; }
    }
    conv.end('client', i);
    conv.end('server', i);
    conv.close(i);
    maxMs = Math.max(maxMs, performance.now() - t0);
  }
  collectGarbage();
  return { inputs: count, records, withResponse, ok, controlRecords, maxMs, heapGrowthMb: (process.memoryUsage().heapUsed - heap0) / 1e6 };
}
