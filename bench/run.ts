/**
 * `npm run bench`: every microbenchmark in one run, flowtap beside its peers on the same input.
 * Prints a table and ratios per benchmark, then one final JSON line with everything.
 */
import { benchDubbo } from './dubbo.js';
import { benchHttp1 } from './http1.js';
import type { BenchResult } from './measure.js';

const benches: Record<string, () => BenchResult> = { http1: benchHttp1, dubbo: benchDubbo };
const only = process.argv.slice(2);
const all: BenchResult[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const r = run();
  all.push(r);
  console.log(`\n${r.name} (${r.unit}, median of 15 interleaved rounds; ratios are medians of per-round ratios)`);
  for (const m of r.results) {
    console.log(`  ${m.name.padEnd(36)} ${Math.round(m.opsPerSec).toLocaleString('en').padStart(12)}  ${m.mbPerSec.toFixed(1).padStart(8)} MB/s`);
  }
  for (const [k, v] of Object.entries(r.ratios)) {
    const target = r.targets[k];
    const verdict = target === undefined ? '' : v >= target ? `  (target ≥${target}: met)` : `  (target ≥${target}: NOT met)`;
    console.log(`  ${k.padEnd(36)} ${v.toFixed(2)}×${verdict}`);
  }
}
// The final line: machine-readable, without the per-pass detail.
console.log(JSON.stringify({ node: process.version, benches: all.map((b) => ({ ...b, results: b.results.map(({ passesMs, ...m }) => m) })) }));
