import { describe, expect, it } from 'vitest';
import { fuzz } from '../scripts/fuzz-dubbo-lib.js';

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
