/** HPACK: header blocks/s from flowtap's decoder vs hpack.js's decompressor, same blocks, one run. */
import { createRequire } from 'node:module';
import { HpackDecoder } from '../src/codecs/http2/hpack.js';
import { compare, ratio, type BenchResult } from './measure.js';

const require = createRequire(import.meta.url);

interface Compressor { write(h: object[]): void; read(): Buffer | null }
interface Decompressor { write(b: Buffer): void; execute(): void; read(): unknown }

/** Blocks like a gRPC client's: pseudo-headers, repeated metadata (dynamic table hits), some fresh values, Huffman on. */
export function hpackCorpus(blocks: number): Buffer[] {
  const hpack = require('hpack.js') as { compressor: { create(o: object): Compressor } };
  const c = hpack.compressor.create({ table: { maxSize: 4096 } });
  const out: Buffer[] = [];
  for (let i = 0; i < blocks; i++) {
    c.write([
      { name: ':method', value: 'POST' }, { name: ':scheme', value: 'http' }, { name: ':path', value: `/shop.Orders/${i % 3 ? 'Get' : 'Create'}` },
      { name: ':authority', value: 'orders.internal:50051' }, { name: 'content-type', value: 'application/grpc' }, { name: 'te', value: 'trailers' },
      { name: 'grpc-timeout', value: '2S' }, { name: 'user-agent', value: 'grpc-node-js/1.12.2' },
      { name: 'traceparent', value: `00-4bf92f3577b34da6a3ce929d0e0e${String(i % 10000).padStart(4, '0')}-00f067aa0ba902b7-01` },
      { name: 'x-request-id', value: `req-${i}` },
    ].map((h) => ({ ...h, huffman: true })));
    const parts: Buffer[] = [];
    for (let b = c.read(); b; b = c.read()) parts.push(b);
    out.push(Buffer.concat(parts));
  }
  return out;
}

export function benchHttp2(): BenchResult {
  const N = 50_000;
  const blocks = hpackCorpus(N);
  const bytes = blocks.reduce((n, b) => n + b.length, 0);
  const hpack = require('hpack.js') as { decompressor: { create(o: object): Decompressor } };
  const results = compare([
    {
      name: 'flowtap HPACK decoder',
      fn: () => {
        const d = new HpackDecoder();
        let fields = 0;
        for (const b of blocks) { const r = d.decode(b); if ('error' in r) throw new Error(r.error); fields += r.headers.length; }
        if (fields !== N * 10) throw new Error(`decoded ${fields} fields`);
      },
    },
    {
      name: 'hpack.js decompressor',
      fn: () => {
        const d = hpack.decompressor.create({ table: { maxSize: 4096 } });
        let fields = 0;
        for (const b of blocks) { d.write(b); d.execute(); while (d.read()) fields++; }
        if (fields !== N * 10) throw new Error(`hpack.js decoded ${fields} fields`);
      },
    },
  ], N, bytes);
  return {
    name: 'http2',
    unit: 'HPACK header blocks/s, median of 15 interleaved rounds',
    results,
    ratios: { 'flowtap/hpack.js': ratio(results[0], results[1]) },
    targets: { 'flowtap/hpack.js': 5 },
  };
}
