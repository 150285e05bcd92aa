/**
 * Seeded mutation fuzzing for the Dubbo decoder, shared by the test suite (≥100k inputs) and
 * `scripts/fuzz-dubbo.ts` (1M). Mutations: bit flips, byte sets, truncation, splicing two fixtures,
 * duplicated ranges, and giant lengths written where the frame and Hessian keep lengths.
 */
import { collectGarbage } from './gc.js';
import { readFileSync, existsSync } from 'node:fs';
import { DubboDecoder, encodeHeartbeat, encodeRequest, encodeResponse, javaException } from '../src/index.js';
import { seededRandom } from './seeded-random.js';

/** Whole Dubbo frames to mutate: Pipy's dubbo-go stream (when present) and frames flowtap's encoder writes. */
export function fixtures(): Buffer[] {
  const out: Buffer[] = [];
  const pipy = new URL('../../shared/conformance/pipy/dubbo-stream.bin', import.meta.url).pathname;
  if (existsSync(pipy)) {
    const b = readFileSync(pipy);
    for (let i = 0; i < b.length;) { const len = b.readUInt32BE(i + 12); out.push(b.subarray(i, i + 16 + len)); i += 16 + len; }
  }
  out.push(
    encodeRequest({ requestId: 7, service: 'a.b.Svc', serviceVersion: null, method: 'm', parameterTypes: 'Ljava/util/Map;J[I',
      args: [{ k: [1, 'x', { n: null }], d: new Date(0) }, { $class: 'long', $: '9007199254740993' }, [1, 2, 3]], attachments: { traceparent: '00-a-b-01' } }),
    encodeResponse({ requestId: 7, value: { $class: 'x.User', $: { id: 1, name: 'ü✓😀', tags: ['a', 'b'] } }, attachments: { dubbo: '2.0.2' } }),
    encodeResponse({ requestId: 8, exception: javaException('java.lang.IllegalStateException', 'boom') }),
    encodeResponse({ requestId: 9, status: 60, errorMessage: 'not found' }),
    encodeHeartbeat(10),
  );
  return out;
}

export function mutate(r: () => number, pool: Buffer[]): Buffer {
  const base = pool[Math.floor(r() * pool.length)];
  let b = Buffer.from(base);
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const op = Math.floor(r() * 7);
    const at = Math.floor(r() * b.length);
    switch (op) {
      case 0: b[at] ^= 1 << Math.floor(r() * 8); break; // flip a bit
      case 1: b[at] = Math.floor(r() * 256); break; // set a byte
      case 2: b = b.subarray(0, at); break; // truncate
      case 3: { const other = pool[Math.floor(r() * pool.length)]; b = Buffer.concat([b.subarray(0, at), other.subarray(Math.floor(r() * other.length))]); break; } // splice
      case 4: { const len = Math.floor(r() * 32); b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]); break; } // duplicate a range
      case 5: if (b.length >= 16) b.writeUInt32BE([0xffffffff, 0x7fffffff, 8 * 1024 * 1024, b.length * 4][Math.floor(r() * 4)], 12); break; // giant frame length
      case 6: { // giant Hessian lengths: a long string chunk, a huge fixed list, a huge class field count
        const giant = [Buffer.from([0x53, 0xff, 0xff]), Buffer.from([0x58, 0x49, 0x7f, 0xff, 0xff, 0xff]), Buffer.from([0x43, 0x01, 0x41, 0x49, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(64, 0x57)][Math.floor(r() * 4)];
        b = Buffer.concat([b.subarray(0, Math.max(16, at)), giant, b.subarray(Math.max(16, at))]);
        break;
      }
    }
  }
  return b;
}

export interface FuzzResult { inputs: number; messages: number; errors: number; maxMs: number; heapGrowthMb: number }

/** Decode `count` mutated inputs, each split at random points; throws only if the decoder itself threw. */
export function fuzz(count: number, seed: number, decodeValues = false): FuzzResult {
  const r = seededRandom(seed);
  const pool = fixtures();
  let messages = 0;
  let errors = 0;
  let maxMs = 0;
  collectGarbage();
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    const input = mutate(r, pool);
    const t0 = performance.now();
    const d = new DubboDecoder({ decodeValues, onMessage: () => { messages++; }, onError: () => { errors++; } });
    let at = 0;
    while (at < input.length) {
      const n = 1 + Math.floor(r() * 64);
      d.write(input.subarray(at, at + n), i);
      at += n;
    }
    d.end(i);
    const ms = performance.now() - t0;
    if (ms > maxMs) maxMs = ms;
  }
  collectGarbage();
  return { inputs: count, messages, errors, maxMs, heapGrowthMb: (process.memoryUsage().heapUsed - heap0) / 1e6 };
}
