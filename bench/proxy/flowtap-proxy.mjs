// flowtap's tap proxy with HTTP/1 decoding and the JSONL sink on, as `flowtap dump` runs it; a fourth
// argument `worker` decodes in a worker thread (`--decode-worker`).
import { TapProxy } from '../../dist/index.js';
import { JsonlSink } from '../../dist/sinks/index.js';
const [listen, upstream, out, mode] = process.argv.slice(2);
const sink = new JsonlSink({ path: out, maxQueue: 100_000 });
const proxy = new TapProxy({ listen: { port: Number(listen) }, upstream: { host: '127.0.0.1', port: Number(upstream) }, protocol: 'http1',
  decodeIn: mode === 'worker' ? 'worker' : 'inline' });
proxy.on('record', (r) => sink.write(r));
await proxy.listen();
process.send?.('ready');
process.on('SIGINT', () => process.exit(0)); // lets --cpu-prof write its profile
process.on('message', async (m) => {
  if (m === 'stats') process.send?.({ records: proxy.stats.records, written: sink.stats.written, dropped: sink.stats.dropped, shed: proxy.stats.decodeShed });
});
