/**
 * `npm run bench`: every microbenchmark in one run, flowtap beside its peers on the same input.
 * Prints a table and ratios per benchmark, then one final JSON line with everything.
 */
import { benchBpf } from './bpf.js';
import { benchConns } from './conns.js';
import { benchDiff } from './diff.js';
import { benchDubbo } from './dubbo.js';
import { benchGateway } from './gateway.js';
import { benchHttp1 } from './http1.js';
import { benchGrpc } from './grpc.js';
import { benchHttp2 } from './http2.js';
import { benchPlugins } from './plugins.js';
import { benchProxy } from './proxy.js';
import { benchRead } from './read.js';
import { benchReplay } from './replay.js';
import { benchTls } from './tls.js';
import type { BenchResult } from './measure.js';

const benches: Record<string, () => BenchResult | Promise<BenchResult>> = { http1: benchHttp1, dubbo: benchDubbo, http2: benchHttp2, grpc: benchGrpc, plugins: benchPlugins, replay: benchReplay, diff: benchDiff, gateway: benchGateway, proxy: benchProxy, bpf: benchBpf, tls: benchTls, read: benchRead, conns: benchConns };
const only = process.argv.slice(2);
const all: BenchResult[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (only.length > 0 && !only.includes(name)) continue;
  let r: BenchResult;
  try {
    r = await run();
  } catch (e) {
    // A bench this machine cannot run (no wrk, not root) is reported and skipped; the others still run.
    console.log(`\n${name}: skipped — ${(e as Error).message}`);
    continue;
  }
  all.push(r);
  console.log(`\n${r.name} (${r.unit}; ratios are medians of per-round ratios)`);
  for (const m of r.results) {
    const mb = m.mbPerSec > 0 ? `  ${m.mbPerSec.toFixed(1).padStart(8)} MB/s` : '';
    const alloc = m.bytesPerOp !== undefined ? `  ${Math.round(m.bytesPerOp).toLocaleString('en').padStart(8)} B allocated/op` : '';
    console.log(`  ${m.name.padEnd(44)} ${Math.round(m.opsPerSec).toLocaleString('en').padStart(12)}${mb}${alloc}`);
  }
  for (const [k, v] of Object.entries(r.ratios)) {
    const target = r.targets[k];
    const [met, says] = target === undefined ? [true, '']
      : typeof target === 'number' ? [v >= target, `≥${target}`] : [v <= target.atMost, `≤${target.atMost}`];
    const verdict = target === undefined ? '' : `  (target ${says}: ${met ? 'met' : 'NOT met'})`;
    const ratioLike = k.includes('/') && !k.includes('MB') && !k.endsWith('/s');
    console.log(`  ${k.padEnd(44)} ${ratioLike ? `${v.toFixed(2)}×` : Number.isInteger(v) ? String(v) : v.toFixed(1)}${verdict}`);
  }
}
// The final line: machine-readable, without the per-pass detail.
console.log(JSON.stringify({ node: process.version, benches: all.map((b) => ({ ...b, results: b.results.map(({ passesMs, ...m }) => m) })) }));
