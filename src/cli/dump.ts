/** `flowtap dump`: the tap proxy from the command line, in one process or several (`--workers`). */
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { PluginFile } from '../plugins/load.js';
import type { PluginHost, PluginStats } from '../plugins/host.js';
import { protocols } from '../pipeline/protocols.js';
import type { TapProxyStats } from '../pipeline/tap-proxy.js';
import type { MirrorOptions, ShadowStats } from '../replay/mirror.js';
import { applyRate, SELECT_FLAGS, SELECT_HELP, selectionFrom } from './select-flags.js';
import type { SinkStats } from '../sinks/batching.js';
import { redact } from '../sinks/http.js';
import { hostPort, makeSink, outSpec, parseFlags, printPluginStats, sinkErrorPrinter, sinkSpec, UsageError, untilStopped, unwritableOutput, wholeNumber, withPlugins, type OutSpec } from './common.js';

export const DUMP_USAGE = `usage: flowtap dump --listen [HOST:]PORT --upstream HOST:PORT [options]

Forwards every connection to the upstream unchanged and writes one exchange record
per request/response it sees (protocols detected per connection).

options:
  --listen [HOST:]PORT   where to listen (host default 127.0.0.1)
  --upstream HOST:PORT   where to forward
  --out SPEC             where records go; repeatable:
                           jsonl:PATH         a file (jsonl:- for stdout, the default)
                           es:URL             Elasticsearch _bulk (http://user:pass@host:9200;
                                              index flowtap-{protocol})
                           splunk:URL         Splunk HEC (http://host:8088; token from the URL's
                                              password or FLOWTAP_SPLUNK_TOKEN)
                           clickhouse:URL     ClickHouse HTTP (http://user:pass@host:8123/?table=T&create=1)
  --decode PROTO         force a protocol (${protocols.map((p) => p.name).join(', ')}) instead of detecting it
  --trace-key NAME       extra header holding a trace id; repeatable
  --span-key NAME        extra header holding a span id; repeatable
  --body-capture BYTES   body bytes kept per message (default 4096, 0 for none)
  --no-mask              keep authorization, cookies and password/token body fields
                         (masked as "***" by default)
  --idle-timeout SECONDS close a connection silent both ways this long (default: never)
  --decode-inline        decode on the forwarding thread. The default is a worker thread, where
                         forwarding never waits for decoding and, past a 64 MiB backlog, decode work
                         is shed and counted, and which writes the outputs itself (stdout too, where
                         it can open it); --mirror and plugins need the records on the forwarding
                         thread, so with them decoding is inline
  --decode-worker        insist on the worker thread (an error with --mirror or plugins)
  --workers N            run N tap processes on the one port (connections handed out round-robin;
                         each does its own decoding, plugins and mirroring); records come back to
                         this process for --out, counts are summed (default 1); when every --out is a
                         store (es, splunk, clickhouse) and no plugin needs them, each process writes
                         to the stores itself
  --tls-cert FILE        terminate TLS with this certificate (PEM; with --tls-key): clients
                         speak HTTPS to flowtap, records carry "tls"
  --tls-key FILE         the certificate's private key (PEM)
  --alpn LIST            protocols offered to TLS clients (default http/1.1; h2,http/1.1 when
                         the upstream speaks HTTP/2 too)
  --upstream-tls         re-encrypt to the upstream, verifying its certificate
  --upstream-ca FILE     trust this CA (PEM) for the upstream's certificate
  --insecure             do not verify the upstream's certificate
  --plugin FILE          a plugin module (its default export); repeatable
  --plugin-worker FILE   the same, its hooks in a worker thread with a hard timeout; repeatable
  --mirror URL           copy every complete request to this shadow (http://HOST:PORT) as well; its
                         answers are discarded, and a slow or dead shadow never slows the primary
                         (bounded queue, drops counted); repeatable
  --mirror-queue N       copies waiting per shadow before new ones are dropped (default 1000)
  --rate N | N%          mirror at most N requests a second (the rest dropped, counted) or N% of them
with --mirror, replay's selection and rewrite flags apply to the copies:
${SELECT_HELP}
  -h, --help             show this help

On a terminal a one-line status (connections, records, drops) is kept up to date.
Stops on SIGINT/SIGTERM after writing what is queued.`;

export function dump(args: string[]): Promise<number> | number {
  const parsed = parseFlags({
    args, allowPositionals: false, strict: true,
    options: {
      listen: { type: 'string' }, upstream: { type: 'string' }, out: { type: 'string', multiple: true },
      decode: { type: 'string' }, 'trace-key': { type: 'string', multiple: true }, 'span-key': { type: 'string', multiple: true },
      'body-capture': { type: 'string' }, 'no-mask': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      plugin: { type: 'string', multiple: true }, 'plugin-worker': { type: 'string', multiple: true },
      mirror: { type: 'string', multiple: true }, 'mirror-queue': { type: 'string' }, rate: { type: 'string' }, ...SELECT_FLAGS,
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'upstream-tls': { type: 'boolean' },
      'upstream-ca': { type: 'string' }, insecure: { type: 'boolean' }, alpn: { type: 'string' },
      'decode-worker': { type: 'boolean' }, 'decode-inline': { type: 'boolean' }, 'idle-timeout': { type: 'string' }, workers: { type: 'string' },
    },
  });
  const v = parsed.values;
  if (v.help) { process.stdout.write(DUMP_USAGE + '\n'); return 0; }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (!v['upstream-tls'] && (v['upstream-ca'] !== undefined || v.insecure)) throw new UsageError('--upstream-ca and --insecure go with --upstream-tls');
  if (v.alpn !== undefined && v['tls-cert'] === undefined) throw new UsageError('--alpn goes with --tls-cert');
  const needsInline = Boolean(v.mirror?.length || v.plugin?.length || v['plugin-worker']?.length);
  if (v['decode-worker'] && needsInline) {
    throw new UsageError('--decode-worker cannot go with --mirror or plugins (they need the records on the main thread)');
  }
  if (v['decode-worker'] && v['decode-inline']) throw new UsageError('--decode-worker and --decode-inline: choose one');
  // Measured in bench/proxy: the worker thread adds less latency than inline decoding (fixed rate, added
  // p99 over the pipe's: 0.9–12 ms against 11–128 in six runs) for about the same CPU per request (0.86–1.14×
  // inline's), so it is the default wherever nothing needs the records on the forwarding thread.
  const decodeIn = v['decode-inline'] || needsInline ? 'inline' : 'worker';
  const alpn = v.alpn?.split(',').map((x) => x.trim()).filter(Boolean);
  if (alpn && (alpn.length === 0 || alpn.some((x) => x !== 'h2' && x !== 'http/1.1'))) throw new UsageError(`--alpn takes h2 and/or http/1.1, not "${v.alpn}"`);
  let tlsOpt: { cert: Buffer; key: Buffer; ALPNProtocols?: string[] } | undefined;
  let ca: Buffer | undefined;
  try {
    if (v['tls-cert'] !== undefined) tlsOpt = { cert: readPem('--tls-cert', v['tls-cert']), key: readPem('--tls-key', v['tls-key']!), ALPNProtocols: alpn };
    if (v['upstream-ca'] !== undefined) ca = readPem('--upstream-ca', v['upstream-ca']);
  } catch (e) {
    process.stderr.write(`flowtap: ${(e as Error).message}\n`);
    return 2;
  }
  const upstreamTls = v['upstream-tls'] ? { ca, rejectUnauthorized: !v.insecure } : undefined;
  const idleTimeout = v['idle-timeout'] === undefined ? 0 : wholeNumber('--idle-timeout', v['idle-timeout']) * 1000;
  const workers = v.workers === undefined ? 1 : wholeNumber('--workers', v.workers);
  if (workers < 1 || workers > 256) throw new UsageError(`--workers takes 1 to 256, not ${workers}`);
  if (!v.listen) throw new UsageError('dump needs --listen [HOST:]PORT');
  if (!v.upstream) throw new UsageError('dump needs --upstream HOST:PORT');
  const listen = hostPort('--listen', v.listen, '127.0.0.1');
  const upstream = hostPort('--upstream', v.upstream, null);
  if (v.decode !== undefined && !/^[a-z0-9-]+$/.test(v.decode)) throw new UsageError(`--decode: "${v.decode}" is not a protocol name`);
  const outs = (v.out ?? ['jsonl:-']).map(outSpec);
  const bodyCapture = v['body-capture'] === undefined ? 4096 : wholeNumber('--body-capture', v['body-capture']);
  const mirror = v.mirror?.length ? mirrorOptions(v) : undefined;
  if (!mirror && (v.rate !== undefined || v['mirror-queue'] !== undefined)) throw new UsageError('--rate and --mirror-queue go with --mirror URL');
  return withPlugins(v.plugin, v['plugin-worker'], async (host) => {
    const known = host?.allProtocols ?? protocols;
    if (v.decode !== undefined && !known.some((p) => p.name === v.decode)) {
      throw new UsageError(`--decode: unknown protocol "${v.decode}" (known: ${known.map((p) => p.name).join(', ')})`);
    }
    return runDump({
      listen, upstream: { host: upstream.host!, port: upstream.port }, outs, protocol: v.decode,
      traceKeys: v['trace-key'] ?? [], spanKeys: v['span-key'] ?? [], mask: !v['no-mask'], bodyCapture, host, mirror,
      plugins: [...(v.plugin ?? []).map((path) => ({ path })), ...(v['plugin-worker'] ?? []).map((path) => ({ path, isolate: 'worker' as const }))],
      tls: tlsOpt, upstreamTls, decodeIn,
      idleTimeout, workers,
    });
  }, DUMP_USAGE);
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

async function runDump(o: {
  listen: { host: string | undefined; port: number }; upstream: { host: string; port: number }; outs: OutSpec[];
  protocol: string | undefined; traceKeys: string[]; spanKeys: string[]; bodyCapture: number; mask: boolean;
  host: PluginHost | null; plugins: PluginFile[]; mirror?: MirrorOptions;
  tls?: { cert: Buffer; key: Buffer; ALPNProtocols?: string[] }; upstreamTls?: { ca?: Buffer; rejectUnauthorized: boolean };
  decodeIn: 'inline' | 'worker'; idleTimeout: number; workers: number;
}): Promise<number> {
  const unwritable = unwritableOutput(o.outs);
  if (unwritable) { process.stderr.write(`flowtap: ${unwritable}\n`); return 2; }
  // Decoded in a thread with nothing else needing the records here, the thread writes them itself, so
  // they never come back to the forwarding thread. stdout goes there too when the thread can open it on
  // its own (a worker's process.stdout is piped through this thread). With several processes, each writes
  // to the stores itself (a store takes many writers; a JSONL file has one, this process).
  const stdout = o.workers === 1 && o.outs.some((x) => x.kind === 'jsonl' && x.target === '-') ? stdoutPath() : null;
  const inThread = o.decodeIn === 'worker' && !o.host && !o.mirror
    && (o.workers === 1 ? o.outs.every((x) => !(x.kind === 'jsonl' && x.target === '-') || stdout !== null) : o.outs.every((x) => x.kind !== 'jsonl'));
  const threadOuts = o.outs.map((x) => (x.kind === 'jsonl' && x.target === '-' && stdout ? { ...x, target: stdout } : x));
  const sinks = inThread ? [] : await Promise.all(o.outs.map((out) => makeSink(out)));
  // The thread's (or the processes') sinks' failures, printed as makeSink's are.
  const printers = o.outs.map(sinkErrorPrinter);
  const threadSinkError = (e: Error, i: number) => printers[i](e);
  /** Each output's counts, wherever its sink is (`tap` is made below, before this is called). */
  const outputStats = (): SinkStats[] => (inThread ? tap.sinkStats() : sinks.map((x) => x.stats));
  const { mask, pipeline, tee } = await import('../pipeline/stages.js');
  const proxyOptions = {
    listen: { host: o.listen.host, port: o.listen.port }, upstream: o.upstream, protocol: o.protocol,
    traceKeys: o.traceKeys, spanKeys: o.spanKeys, bodyCapture: o.bodyCapture,
    tls: o.tls, upstreamTls: o.upstreamTls, decodeIn: o.decodeIn, idleTimeout: o.idleTimeout,
  };
  let tap: Tap;
  if (o.workers > 1) {
    if (o.mirror) {
      // Said here, once, as without --workers (each process makes its own from the same options).
      const { Mirror } = await import('../replay/mirror.js');
      try { new Mirror(o.mirror).close(); } catch (e) { process.stderr.write(`flowtap: ${(e as Error).message}\n`); return 2; }
    }
    const { TapCluster } = await import('../pipeline/tap-cluster.js');
    // Plugins and masking run in each process, before records leave it; this one only writes them out.
    const c = new TapCluster({ workers: o.workers, proxy: { ...proxyOptions, sinks: inThread ? threadOuts.map(sinkSpec) : undefined },
      plugins: o.plugins, mask: o.mask, mirror: o.mirror });
    if (inThread) {
      c.on('sinkError', threadSinkError);
    } else if (sinks.every((x) => 'writeLines' in x)) c.on('lines', writeLines(sinks as LineSink[]));
    // JSON lines only (above): each record goes out as its process wrote it, neither parsed nor written again here.
    else c.on('record', pipeline(tee(...sinks)));
    c.on('workerExit', (x) => process.stderr.write(`\nflowtap: tap process ${x.worker} exited (${x.signal ?? `code ${x.code}`})${x.replaced ? '; a new one took its place' : '; too many exits this minute, not replaced'}\n`));
    tap = { events: c, stats: () => c.stats, listen: () => c.listen(), close: () => c.close(), mirrorStats: () => c.mirrorStats, pluginStats: () => c.pluginStats, sinkStats: () => c.sinkStats };
  } else {
    let mirror: import('../replay/mirror.js').Mirror | undefined;
    if (o.mirror) {
      const { Mirror } = await import('../replay/mirror.js');
      try { mirror = new Mirror(o.mirror); } catch (e) { process.stderr.write(`flowtap: ${(e as Error).message}\n`); return 2; }
    }
    const { TapProxy } = await import('../pipeline/tap-proxy.js');
    // Plugins see records before masking; without plugins the proxy masks (in the decoding thread, with
    // a decoding thread, whose JSON lines then go to JSONL outputs as they are).
    const p = new TapProxy({ ...proxyOptions, protocols: o.host?.allProtocols, mirror, mask: o.mask && !o.host,
      sinks: inThread ? threadOuts.map(sinkSpec) : undefined });
    if (inThread) {
      p.on('sinkError', threadSinkError);
    } else if (o.host) p.on('record', pipeline(o.host.stage(), ...(o.mask ? [mask()] : []), tee(...sinks)));
    else if (o.decodeIn === 'worker' && sinks.every((x) => 'writeLines' in x)) p.on('lines', writeLines(sinks as LineSink[]));
    else p.on('record', pipeline(tee(...sinks)));
    tap = {
      events: p, stats: () => p.stats, listen: () => p.listen(),
      close: async () => { await p.close(); mirror?.close(); },
      mirrorStats: () => mirror?.stats ?? [], pluginStats: () => [], sinkStats: () => p.sinkStats,
    };
  }
  tap.events.on('upstreamError', (e: Error) => { if (!process.stderr.isTTY) process.stderr.write(`flowtap: upstream: ${e.message}\n`); });
  let address;
  try {
    address = await tap.listen();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    process.stderr.write(code || o.workers === 1
      ? `flowtap: cannot listen on ${o.listen.host}:${o.listen.port}: ${code ?? (e as Error).message}\n`
      : `flowtap: ${(e as Error).message}\n`);
    await Promise.all(sinks.map((s) => s.close()));
    return 2;
  }
  process.stderr.write(`flowtap: listening on ${address.address}:${address.port}${o.workers > 1 ? ` (${o.workers} processes)` : ''}, forwarding to ${o.upstream.host}:${o.upstream.port}\n`);
  const tty = process.stderr.isTTY && !o.outs.some((x) => x.kind === 'jsonl' && x.target === '-');
  const status = () => {
    const dropped = outputStats().reduce((n, x) => n + x.dropped, 0);
    const s = tap.stats();
    process.stderr.write(`\r\x1b[Kconnections ${s.open} open / ${s.connections} total  records ${s.records}  drops ${dropped}  upstream errors ${s.upstreamErrors}`);
  };
  const ticker = tty ? setInterval(status, 250) : null;
  await untilStopped();
  if (ticker) { clearInterval(ticker); status(); process.stderr.write('\n'); }
  await tap.close();
  await Promise.all(sinks.map((s) => s.close()));
  const s = tap.stats() as TapProxyStats & { recordsDropped?: number };
  if (s.decodeShed > 0) {
    process.stderr.write(`flowtap: ${s.decodeShed} forwarded bytes were not decoded (decode backlog full); their records say what is missing\n`);
  }
  // A sink that could not keep up (or reach its store) says how much it lost, terminal or not.
  outputStats().forEach((x, i) => {
    if (x.dropped > 0) process.stderr.write(`flowtap: ${o.outs[i].kind} sink ${outName(o.outs[i])}: ${x.dropped} records dropped (its queue was full, or they were not written before the end), ${x.written} written\n`);
  });
  if (s.recordsDropped) process.stderr.write(`flowtap: ${s.recordsDropped} records dropped on their way from the tap processes (this one was not keeping up)\n`);
  for (const m of tap.mirrorStats()) {
    process.stderr.write(`flowtap: mirror ${m.target}: ${m.mirrored} mirrored, ${m.answered} answered, ${m.failed} failed, `
      + `${m.dropped} dropped (queue full or over --rate), ${m.skipped} not mirrored (filters)\n`);
  }
  printPluginStats(tap.pluginStats());
  return 0;
}

interface LineSink { writeLines(text: string, count: number): void }

/**
 * This process's stdout as a path another thread can open for itself (Linux: a new open of the same pipe,
 * terminal or file, appending, and blocking whatever this thread's handle made of the pipe), or null where
 * there is none (stdout a socket, no /proc): then stdout stays this thread's.
 */
function stdoutPath(): string | null {
  const path = '/proc/self/fd/1';
  try {
    closeSync(openSync(path, 'a'));
    return path;
  } catch {
    return null;
  }
}

/** An output as it may be printed: a store's URL without its credentials (a Splunk token lives there). */
function outName(out: OutSpec): string {
  return out.kind === 'jsonl' ? out.target : redact(out.target);
}

/** JSON lines (records serialised where they were made) to sinks that write them as they are, a block at a time. */
function writeLines(sinks: LineSink[]): (text: string, count: number) => void {
  return (text, count) => { for (const s of sinks) s.writeLines(text, count); };
}

/** What dump needs of a TapProxy or a TapCluster. */
interface Tap {
  events: { on(event: 'upstreamError', fn: (e: Error) => void): unknown };
  stats(): TapProxyStats;
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
  mirrorStats(): ShadowStats[];
  pluginStats(): PluginStats[];
  /** Sinks the tap opened in its decoding thread (their counts). */
  sinkStats(): SinkStats[];
}

/** --mirror and the flags that shape what is copied. */
function mirrorOptions(v: Parameters<typeof selectionFrom>[0] & { mirror?: string[]; 'mirror-queue'?: string; rate?: string }): MirrorOptions {
  const selection = selectionFrom(v);
  selection.allowSideEffects = true; // a mirror copies what production does; filters say what not to copy
  const rate = applyRate(v.rate, selection);
  return { targets: v.mirror!, queue: v['mirror-queue'] === undefined ? 1000 : wholeNumber('--mirror-queue', v['mirror-queue']), selection, rate };
}
