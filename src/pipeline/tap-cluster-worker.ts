/**
 * One process of a TapCluster (built as dist/tap-worker.js, run by node:cluster): a whole tap proxy —
 * forwarding, decoding, plugins, masking, mirroring — on the port the primary shares. Its records go to
 * the primary as batches of JSON lines over the IPC channel; the primary owns the sinks. When the primary
 * does not keep up, batches beyond `maxPending` bytes are dropped and counted, never waited for: the
 * traffic through this process must not slow because a sink is slow.
 */
import type { AnyRecord } from '../records/types.js';
import type { ClusterMessage, ClusterWorkerConfig, WorkerReport } from './tap-cluster.js';
import type { Stage } from './stages.js';

const send = (m: ClusterMessage, done?: (e: Error | null) => void) => process.send!(m, undefined, undefined, done);

/** Set once the proxy listens: what the primary's words do from then on. */
let running: { stop(): Promise<void>; report(id: number): void } | null = null;
let stopAsked = false;
let starting = false;
// The primary coordinates shutdown (a terminal's ^C reaches every process of the group): wait for its word.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

process.on('message', (m: ClusterMessage) => {
  if (m.t === 'config') {
    starting = true;
    start(m.config).catch((e: Error) => {
      send({ t: 'fatal', message: e.message, code: (e as NodeJS.ErrnoException).code }, () => process.exit(1));
    });
  } else if (m.t === 'stop') {
    stopAsked = true;
    if (running) void running.stop();
    else if (!starting) process.exit(0); // nothing started, nothing to hand over
  } else if (m.t === 'report') running?.report(m.id);
});
// The primary is gone (killed): nobody takes the records; close what is open and leave.
process.on('disconnect', () => {
  stopAsked = true;
  if (running) void running.stop().finally(() => process.exit(0));
  else process.exit(0);
});
// A message sent before this module has loaded (ESM loads asynchronously) would be lost: ask for it now.
send({ t: 'ready' });

async function start(config: ClusterWorkerConfig): Promise<void> {
  const [{ TapProxy }, { mask, pipeline }, { protocols }] = await Promise.all([
    import('./tap-proxy.js'), import('./stages.js'), import('./protocols.js'),
  ]);
  const host = config.plugins?.length ? await (await import('../plugins/load.js')).loadPlugins(config.plugins) : null;
  const known = host?.allProtocols ?? protocols;
  const forced = config.proxy.protocol;
  if (forced !== undefined && forced !== 'auto' && !known.some((p) => p.name === forced)) {
    throw new Error(`unknown protocol "${forced}" (known: ${known.map((p) => p.name).join(', ')})`);
  }
  const mirror = config.mirror ? new (await import('../replay/mirror.js')).Mirror(config.mirror) : undefined;
  // Without plugins the proxy itself masks and gives JSON lines (made in its decoding thread, in worker
  // mode), which go on as they are; plugins need records, and mask after their hooks.
  const proxy = new TapProxy({ ...config.proxy, protocols: host?.allProtocols, mirror, mask: config.proxy.mask || (!host && config.mask) });

  // Records: JSON lines gathered for a few milliseconds (or 64 KiB), then one message.
  let text = '';
  let count = 0;
  let pending = 0;
  let shipDropped = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (count === 0) return;
    const size = text.length;
    if (pending + size > config.maxPending) shipDropped += count;
    else {
      pending += size;
      send({ t: 'records', text, count }, () => { pending -= size; });
    }
    text = '';
    count = 0;
  };
  const shipLines = (lines: string, n: number) => {
    text += lines;
    count += n;
    if (text.length > 1 << 16) flush();
    else if (!scheduled) { scheduled = true; setTimeout(flush, 4); } // as the decoding thread's batches: a message per few ms, not per tick
  };
  const ship: Stage = (r: AnyRecord) => shipLines(JSON.stringify(r) + '\n', 1);
  if (host) proxy.on('record', pipeline(host.stage(), ...(config.mask ? [mask()] : []), ship));
  else proxy.on('lines', shipLines);
  proxy.on('upstreamError', (e, info) => send({ t: 'event', name: 'upstreamError', message: e.message, code: (e as NodeJS.ErrnoException).code, connectionId: info.connectionId }));
  proxy.on('tapError', (e, info) => send({ t: 'event', name: 'tapError', message: e.message, connectionId: info.connectionId }));
  proxy.on('sinkError', (e, sink) => send({ t: 'event', name: 'sinkError', message: e.message, sink }));

  const report = (): WorkerReport => ({
    proxy: { ...proxy.stats }, sinks: proxy.sinkStats.map((x) => ({ ...x })), recordsDropped: shipDropped, mirror: mirror?.stats ?? [], plugins: host?.stats ?? [],
  });
  const address = await proxy.listen();
  send({ t: 'listening', address: { address: address.address, port: address.port, family: address.family } });
  const ticker = setInterval(() => send({ t: 'stats', report: report(), final: false }), config.statsInterval);

  let stopping = false;
  running = {
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(ticker);
      await proxy.close();
      await host?.drain();
      flush();
      await host?.close();
      mirror?.close();
      if (!process.connected) process.exit(0);
      send({ t: 'stats', report: report(), final: true }, () => { process.disconnect(); setImmediate(() => process.exit(0)); });
    },
    report(id) {
      if (stopping) return;
      flush(); // records made so far arrive before the counts that include them
      send({ t: 'stats', report: report(), final: false, id });
    },
  };
  // Asked to stop while starting: stop now that there is something to stop.
  if (stopAsked) void running.stop();
}
