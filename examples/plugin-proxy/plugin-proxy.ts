/**
 * Pipy's plugin proxy (tutorial 11, the Splunk demo) as a flowtap application: it reads Pipy's four files
 * unchanged — proxy.json (listen, plugins), router.json, balancer.json, logger.json — and chains flowtap's
 * Router, PluginProxy (with the Balancer) and a SplunkSink for the access log (batched by size and by time:
 * a trickle is flushed within a second). `plugins/router.js`, `logger.js`, `balancer.js`, `default.js` name
 * the stages; a plugin it does not know is an error, not a silent skip.
 *
 *   node --import tsx examples/plugin-proxy/plugin-proxy.ts [--dir DIR] [--jsonl FILE]
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Balancer, PluginProxy, Router, type AccessRecord } from 'flowtap/gateway';
import { JsonlSink, SplunkSink, type RecordSink } from 'flowtap/sinks';

const KNOWN = ['router', 'logger', 'balancer', 'default'];

export async function startPluginProxy(dir: string, opts: { jsonl?: string; listen?: number } = {}) {
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const proxyConf = read('proxy.json') as { listen: number; plugins: string[] };
  const stages = proxyConf.plugins.map((p) => basename(p).replace(/\.js$/, ''));
  for (const s of stages) if (!KNOWN.includes(s)) throw new Error(`proxy.json: unknown plugin "${s}" (known: ${KNOWN.join(', ')})`);
  const router = new Router(stages.includes('router') ? read('router.json').routes : {});
  const balancer = new Balancer(stages.includes('balancer') ? read('balancer.json').services : {});
  const proxy = new PluginProxy({ router, balancer });
  const sinks: RecordSink[] = [];
  if (stages.includes('logger')) {
    const log = read('logger.json') as { logURL: string; Authorization: string };
    const token = /^Splunk\s+(.+)$/.exec(log.Authorization ?? '')?.[1];
    if (!token) throw new Error('logger.json: "Authorization" is "Splunk <token>"');
    sinks.push(new SplunkSink({ url: log.logURL.replace(/\/services\/collector\/event\/?$/, ''), token, batchSize: 1000, flushInterval: 1000, sourcetype: 'flowtap:access' }));
  }
  if (opts.jsonl) sinks.push(new JsonlSink({ path: opts.jsonl }));
  // The sinks take exchange records; an access record carries the two fields they read (its time and a protocol).
  proxy.on('access', (r: AccessRecord) => { for (const s of sinks) s.write({ ...r, startTime: r.reqTime, protocol: 'http1' } as never); });
  const server = http.createServer(proxy.handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.listen ?? proxyConf.listen, '127.0.0.1', () => resolve()); });
  return {
    server, proxy, sinks, port: (server.address() as { port: number }).port,
    async close() {
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      balancer.close();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { values: v } = parseArgs({ options: { dir: { type: 'string' }, jsonl: { type: 'string' } } });
  const p = await startPluginProxy(v.dir ?? new URL('.', import.meta.url).pathname, { jsonl: v.jsonl });
  console.log(`plugin proxy: listening on ${p.port}`);
  process.once('SIGINT', () => { void p.close().then(() => process.exit(0)); });
}
