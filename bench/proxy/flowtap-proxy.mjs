// flowtap's tap proxy with HTTP/1 decoding and the JSONL sink on, as `flowtap dump --out jsonl:FILE` runs
// it; a fourth argument `worker` decodes in a worker thread (`--decode-worker`), which then writes the file
// itself, `cluster` runs two tap processes on the port with the sink in this one (`--workers 2`).
import { TapCluster, TapProxy } from '../../dist/index.js';
import { JsonlSink } from '../../dist/sinks/index.js';
const [listen, upstream, out, mode] = process.argv.slice(2);
// The sink's default queue (10,000 records), as `flowtap dump` has it: what is dropped here, a user's dump drops.
const file = { path: out };
const options = { listen: { port: Number(listen) }, upstream: { host: '127.0.0.1', port: Number(upstream) }, protocol: 'http1' };
const proxy = mode === 'cluster'
  ? new TapCluster({ workers: 2, proxy: options })
  : new TapProxy({ ...options, decodeIn: mode === 'worker' ? 'worker' : 'inline', sinks: mode === 'worker' ? [{ kind: 'jsonl', options: file }] : undefined });
const sink = mode === 'worker' ? null : new JsonlSink(file);
// As `flowtap dump` does with --workers 2: the JSON lines made where the records were made are written as they are.
if (mode === 'cluster') proxy.on('lines', (text, count) => sink.writeLines(text, count));
else if (sink) proxy.on('record', (r) => sink.write(r));
await proxy.listen();
process.send?.('ready');
process.on('SIGINT', () => process.exit(0)); // lets --cpu-prof write its profile
process.on('message', async (m) => {
  if (m !== 'stats') return;
  const s = proxy instanceof TapCluster ? await proxy.refreshStats() : proxy.stats;
  const k = sink ? sink.stats : proxy.sinkStats[0];
  process.send?.({ records: s.records, written: k.written, dropped: k.dropped + (s.recordsDropped ?? 0), shed: s.decodeShed });
});
