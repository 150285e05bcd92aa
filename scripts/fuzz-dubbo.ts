/**
 * 1M seeded mutated inputs through the Dubbo decoder (the test suite runs 100k):
 *   node --expose-gc --import tsx scripts/fuzz-dubbo.ts [count] [seed]
 * Prints a summary; exits 1 if anything threw.
 */
import { fuzz } from './fuzz-dubbo-lib.js';

const count = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 20261122);
const t0 = performance.now();
try {
  const r = fuzz(count, seed);
  const withValues = fuzz(Math.min(count, 100_000), seed + 1, true);
  console.log(JSON.stringify({ ...r, seconds: (performance.now() - t0) / 1000, withValues }));
} catch (e) {
  console.error('the decoder threw:', e);
  process.exit(1);
}
