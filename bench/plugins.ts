/**
 * Plugins: records/s of full HTTP/1 records (bench/http1's corpus through a Conversation) with no plugin;
 * with a no-op hook (the host's own cost); with DeepFlow's OPT_STATUS hook as shipped in examples/plugins
 * (the target: it costs at most 10%, ratio ≥ 0.9; the corpus has no OPT_STATUS bodies, so this is the host
 * plus the hook's substring check); with a hook that JSON-parses every response body (a heavy hook's own
 * work, for scale); and the OPT_STATUS hook isolated in a worker thread (structured clone both ways;
 * reported, not targeted).
 */
import { Conversation, loadPlugins, PluginHost, type AnyRecord } from '../dist/index.js';
import { corpus } from './http1.js';
import { compare, ratio, type BenchResult } from './measure.js';

const EXCHANGES = 20_000;
const plugin = new URL('../examples/plugins/opt-status.mjs', import.meta.url).pathname;

function feed(chunks: ReturnType<typeof corpus>, onRecord: (r: AnyRecord) => void): void {
  const c = new Conversation({ client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 8080 }, connectionId: 'b', onRecord });
  for (const { side, chunk } of chunks) c.write(side, chunk, 1);
  c.close(2);
}

export async function benchPlugins(): Promise<BenchResult> {
  const chunks = corpus(EXCHANGES);
  const inline = await loadPlugins([plugin]);
  const noop = new PluginHost().add({ name: 'noop', hooks: { http1: () => undefined } });
  const parseAll = new PluginHost().add({ name: 'parse-all', hooks: { http1: (r) => {
    const body = r.response?.body;
    if (body && !r.response?.bodyEncoding) { try { JSON.parse(body); } catch { /* not JSON */ } }
  } } });
  let sink = 0;
  const count = () => { sink++; };
  const measured = compare([
    { name: 'no plugin', fn: () => feed(chunks, count) },
    { name: 'no-op hook, in process', fn: () => feed(chunks, (r) => noop.process(r, count)) },
    { name: 'opt-status hook, in process', fn: () => feed(chunks, (r) => inline.process(r, count)) },
    { name: 'JSON-parse-every-body hook, in process', fn: () => feed(chunks, (r) => parseAll.process(r, count)) },
  ], EXCHANGES, 0, 11);
  // The worker path is asynchronous: timed end to end (records handed in until the last one is back).
  const worker = await loadPlugins([{ path: plugin, isolate: 'worker' }], { timeoutMs: 5000 });
  const rounds: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    feed(chunks, (r) => worker.process(r, count));
    await worker.drain();
    if (i > 0) rounds.push(performance.now() - t0); // the first round warms the worker up
  }
  await worker.close();
  rounds.sort((a, b) => a - b);
  const ms = rounds[Math.floor(rounds.length / 2)];
  const workerMeasured = { name: 'opt-status hook, isolate: worker', opsPerSec: (EXCHANGES / ms) * 1000, mbPerSec: 0, medianMs: ms, passesMs: rounds };
  if (sink === 0) throw new Error('no records');
  return {
    name: 'plugins: HTTP/1 records/s',
    unit: 'records/s',
    results: [...measured, workerMeasured],
    ratios: {
      'no-op hook / no plugin': ratio(measured[1], measured[0]),
      'opt-status hook / no plugin': ratio(measured[2], measured[0]),
      'JSON-parse hook / no plugin': ratio(measured[3], measured[0]),
      'worker hook / no plugin': measured[0].medianMs / ms,
    },
    targets: { 'opt-status hook / no plugin': 0.9 },
  };
}
