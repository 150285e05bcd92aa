import v8 from 'node:v8';

/**
 * Timing for the microbenchmarks. Candidates run round-robin, pass by pass, so JIT warm-up, GC pressure
 * and CPU frequency drift fall on all of them alike; each gets the median of its passes.
 */

export interface Measured {
  name: string;
  opsPerSec: number;
  mbPerSec: number;
  medianMs: number;
  /** Every pass, in ms, in round order (pass i of every candidate ran in the same round). */
  passesMs: number[];
  /** JS heap bytes allocated per op (one extra pass under V8's GC profiler), when measured. */
  bytesPerOp?: number;
}

/**
 * Heap bytes `fn` allocates: what every GC during it freed plus what is still there at the end (V8's
 * GCProfiler reports the used heap before and after each collection). External memory (Buffers' backing
 * stores) is not counted.
 */
export function allocated(fn: () => void): number {
  const p = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  p.start();
  fn();
  const after = v8.getHeapStatistics().used_heap_size;
  const { statistics } = p.stop();
  let freed = 0;
  for (const e of statistics) freed += e.beforeGC.heapStatistics.usedHeapSize - e.afterGC.heapStatistics.usedHeapSize;
  return after - before + freed;
}

/**
 * Speed of `a` relative to `b` (>1: a is faster): the median over rounds of b's time / a's time. Both ran
 * back to back in each round, so this is robust to the drift a shared VM shows between rounds.
 */
export function ratio(a: Measured, b: Measured): number {
  const r = a.passesMs.map((t, i) => b.passesMs[i] / t).sort((x, y) => x - y);
  return r[Math.floor(r.length / 2)];
}

export interface BenchResult {
  name: string;
  unit: string;
  results: Measured[];
  ratios: Record<string, number>;
  /** A number: the ratio must be at least it; `{ atMost }`: at most it (latencies, added milliseconds). */
  targets: Record<string, number | { atMost: number }>;
}

export interface Candidate { name: string; fn: () => void }

export function compare(candidates: Candidate[], ops: number, bytes: number, passes = 15): Measured[] {
  // A full collection once, before the warm-up: what earlier benches in this process left in the old
  // generation is not collected in the middle of this one's passes.
  (globalThis as { gc?: () => void }).gc?.();
  for (let w = 0; w < 3; w++) for (const c of candidates) c.fn(); // warm-up
  const times = candidates.map(() => [] as number[]);
  for (let i = 0; i < passes; i++) {
    candidates.forEach((c, k) => {
      // A young-generation collection: each pass starts with none of the previous pass's young garbage
      // to scavenge. Not a full one: with no instance of a candidate alive, a full GC frees its classes'
      // maps (V8 holds transition targets weakly) and with them its optimised code, so every pass began
      // cold — measured: hundreds of "weak objects" deoptimisations per bench, the first 5,000 HPACK
      // blocks of a pass at 4 µs instead of 0.75, a fixed cost that took most from the fastest candidate.
      (globalThis as { gc?: (o?: { type: 'minor' }) => void }).gc?.({ type: 'minor' });
      const t0 = process.hrtime.bigint();
      c.fn();
      times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return candidates.map((c, k) => {
    const t = [...times[k]].sort((a, b) => a - b);
    const ms = t[Math.floor(t.length / 2)];
    return { name: c.name, opsPerSec: (ops / ms) * 1000, mbPerSec: bytes / 1e6 / (ms / 1000), medianMs: ms, passesMs: times[k],
      bytesPerOp: allocated(c.fn) / ops };
  });
}
