/**
 * Per-endpoint summary of a capture: calls, errors, p50/p99 latency — flowtap's library API in a page.
 *
 *   npm run build && node --import tsx examples/endpoint-summary/main.ts capture.pcap
 */
import { readCaptureFile, type AnyRecord } from 'flowtap';

const file = process.argv[2];
if (!file) {
  console.error('usage: endpoint-summary FILE.pcap');
  process.exit(2);
}

const byEndpoint = new Map<string, { calls: number; errors: number; durations: number[] }>();
const summary = await readCaptureFile(file, {}, (r: AnyRecord) => {
  const method = (r.request as { method?: string | null }).method;
  const key = `${r.protocol} ${method ? method + ' ' : ''}${r.endpoint}`;
  let e = byEndpoint.get(key);
  if (!e) byEndpoint.set(key, (e = { calls: 0, errors: 0, durations: [] }));
  e.calls++;
  if (r.status !== 'ok') e.errors++;
  if (r.duration !== null) e.durations.push(r.duration);
}).catch((err: Error) => {
  console.error(err.message);
  process.exit(2);
});

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)].toFixed(1);
};
console.log(`${'ENDPOINT'.padEnd(40)} ${'CALLS'.padStart(7)} ${'ERRORS'.padStart(7)} ${'P50 ms'.padStart(9)} ${'P99 ms'.padStart(9)}`);
for (const [k, e] of [...byEndpoint].sort((a, b) => b[1].calls - a[1].calls)) {
  console.log(`${k.padEnd(40)} ${String(e.calls).padStart(7)} ${String(e.errors).padStart(7)} ${pct(e.durations, 50).padStart(9)} ${pct(e.durations, 99).padStart(9)}`);
}
console.log(`\n${summary.packets} packets, ${summary.connections} connections (${summary.undecoded} not decoded), ${summary.records} exchanges`);
