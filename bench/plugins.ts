/**
 * Plugins: records/s of full HTTP/1 records (bench/http1's corpus through a Conversation) with no plugin,
 * with DeepFlow's OPT_STATUS hook in process, and with the same hook isolated in a worker thread. The
 * in-process target: it costs at most 10% (ratio ≥ 0.9). The worker figure includes the structured-clone
 * hand-off both ways and is reported, not targeted.
 */
import { Conversation, loadPlugins, type AnyRecord } from '../dist/index.js';
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
  let sink = 0;
  const count = () => { sink++; };
  const measured = compare([
    { name: 'no plugin', fn: () => feed(chunks, count) },
    { name: 'opt-status hook, in process', fn: () => feed(chunks, (r) => inline.process(r, count)) },
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
      'in-process hook / no plugin': ratio(measured[1], measured[0]),
      'worker hook / no plugin': measured[0].medianMs / ms,
    },
    targets: { 'in-process hook / no plugin': 0.9 },
  };
}
