/**
 * 1M seeded mutated HTTP/2 + gRPC exchanges through flowtap (the test suite runs 100k):
 *   node --expose-gc --import tsx scripts/fuzz-http2.ts [count] [seed]
 */
import { fuzzHttp2 } from './fuzz-http2-lib.js';

const count = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 20261122);
const t0 = performance.now();
try {
  console.log(JSON.stringify({ ...fuzzHttp2(count, seed), seconds: (performance.now() - t0) / 1000 }));
} catch (e) {
  console.error('flowtap threw:', e);
  process.exit(1);
}
