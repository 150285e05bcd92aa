import { describe, expect, it } from 'vitest';
import { fixtures, fuzz, mutate } from '../scripts/fuzz-dubbo-lib.js';
import { seededRandom } from '../scripts/seeded-random.js';
import { Hessian2Reader } from '../src/codecs/index.js';

describe('Dubbo decoder under seeded mutation', () => {
  it('100k mutated inputs (flips, truncation, splices, giant lengths), split randomly: no throw, no hang, bounded memory', () => {
    const r = fuzz(100_000, 1);
    expect(r.inputs).toBe(100_000);
    expect(r.errors).toBeGreaterThan(1000); // the mutations really do break frames
    expect(r.messages).toBeGreaterThan(1000); // and many frames still decode
    expect(r.maxMs).toBeLessThan(1000); // no input takes long (a hang would never return at all)
    expect(r.heapGrowthMb).toBeLessThan(64); // measured after a real full GC (scripts/gc.ts), not a no-op
  }, 300_000);

  it('10k mutated inputs with full values on (hessian.js sees only bodies flowtap\'s reader could walk)', () => {
    const r = fuzz(10_000, 2, true);
    expect(r.maxMs).toBeLessThan(1000);
    expect(r.heapGrowthMb).toBeLessThan(64); // measured after a real full GC (scripts/gc.ts), not a no-op
  }, 300_000);
});

describe('Hessian skip under seeded mutation', () => {
  it('skip() steps over exactly what the recursive reader steps over, with the same error, on 50k mutated bodies', () => {
    const r = seededRandom(3);
    const pool = fixtures();
    /** The recursive walk `skip()` replaced, still used for skipped object fields: the reference here. */
    type Walker = { value(skip: boolean): unknown; pos: number; error: string | null };
    let steps = 0;
    let failed = 0;
    for (let i = 0; i < 50_000; i++) {
      const body = mutate(r, pool).subarray(16);
      const loop = new Hessian2Reader(body);
      const walk = new Hessian2Reader(body) as unknown as Walker;
      while (!loop.done && !loop.error) {
        loop.skip();
        walk.value(true);
        steps++;
        expect({ pos: loop.pos, error: loop.error }).toEqual({ pos: walk.pos, error: walk.error });
      }
      if (loop.error) failed++;
    }
    expect(steps).toBeGreaterThan(100_000);
    expect(failed).toBeGreaterThan(1000); // the mutations really do reach the error paths
  }, 120_000);
});
