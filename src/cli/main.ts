import { createReadStream, readFileSync } from 'node:fs';
import { CaptureDecoder } from '../capture/read.js';
import { KeyLog } from '../capture/tls/keylog.js';
import { ProtoRegistry } from '../codecs/grpc/schemas.js';
import type { AnyRecord } from '../records/types.js';
import type { PluginHost } from '../plugins/host.js';
import { protocols } from '../pipeline/protocols.js';
import { formatTableRow, TABLE_HEADER } from './table.js';
import { record, RECORD_USAGE, replay, REPLAY_USAGE } from './replay.js';
import { diff, DIFF_USAGE } from './diff.js';
import { applyRate, SELECT_FLAGS, SELECT_HELP, selectionFrom } from './select-flags.js';
import type { MirrorOptions } from '../replay/mirror.js';
import { hostPort, makeSink, outSpec, parseFlags, UsageError, untilStopped, usageFailure, wholeNumber, withPlugins, type OutSpec } from './common.js';

const USAGE = `usage: flowtap <command> [options]

commands:
  read FILE      decode a pcap/pcapng capture into exchange records
  dump           run the transparent tap proxy, recording what crosses it
  record         record whole exchanges (live capture, capture file or proxy) for replay
  replay FILE... send recorded requests to a target again (GoReplay's .gor or flowtap recordings)
  diff           compare a candidate's answers with production's, noise cancelled (three-way or two-way)

run "flowtap <command> --help" for a command's options`;

const DUMP_USAGE = `usage: flowtap dump --listen [HOST:]PORT --upstream HOST:PORT [options]

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
  --decode-worker        decode in a worker thread: forwarding never waits for decoding; past a
                         64 MiB backlog decode work is shed and counted (not with --mirror or plugins)
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

const READ_USAGE = `usage: flowtap read FILE [options]

Decodes every TCP connection in FILE (pcap or pcapng) and prints one exchange record
per line (JSON, ordered by startTime), then exits 0. Protocols are detected per
connection from the first bytes, on any port.

options:
  --format jsonl|table   output format (default jsonl)
  --decode PORT=PROTO    decode connections to PORT as PROTO (${protocols.map((p) => p.name).join(', ')}); repeatable
  --trace-key NAME       extra header holding a trace id; repeatable
  --span-key NAME        extra header holding a span id; repeatable
  --body-capture BYTES   body bytes kept per message (default 4096, 0 for none)
  --timeout SECONDS      a request unanswered this long is a timeout (default 60)
  --values               decode Dubbo arguments, return values and exceptions fully
  --proto-dir DIR        decode gRPC messages with the .proto files under DIR
  --keylog FILE          decrypt TLS 1.2/1.3 with this key log (SSLKEYLOGFILE format); secrets in
                         a pcapng file (editcap --inject-secrets) are used without it
  --plugin FILE          a plugin module (its default export); repeatable
  --plugin-worker FILE   the same, its hooks in a worker thread with a hard timeout; repeatable
  -h, --help             show this help

exit status: 0 done, 2 bad arguments or a file that cannot be read as a capture`;

function main(argv: string[]): Promise<number> | number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  try {
    if (command === 'read') return read(rest);
    if (command === 'dump') return dump(rest);
    if (command === 'record') return record(rest);
    if (command === 'replay') return replay(rest);
    if (command === 'diff') return diff(rest);
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    const usages: Record<string, string> = { read: READ_USAGE, dump: DUMP_USAGE, record: RECORD_USAGE, replay: REPLAY_USAGE, diff: DIFF_USAGE };
    return usageFailure(e, Object.hasOwn(usages, command) ? usages[command] : USAGE);
  }
}

function read(args: string[]): Promise<number> | number {
  const parsed = parseFlags({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      format: { type: 'string', default: 'jsonl' },
      decode: { type: 'string', multiple: true },
      'trace-key': { type: 'string', multiple: true },
      'span-key': { type: 'string', multiple: true },
      'body-capture': { type: 'string' },
      timeout: { type: 'string' },
      values: { type: 'boolean' },
      'proto-dir': { type: 'string' },
      keylog: { type: 'string' },
      plugin: { type: 'string', multiple: true },
      'plugin-worker': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const { values: v, positionals } = parsed;
  if (v.help) { process.stdout.write(READ_USAGE + '\n'); return 0; }
  let keylog: KeyLog | undefined;
  if (v.keylog !== undefined) {
    try {
      keylog = KeyLog.fromFile(v.keylog);
    } catch (e) {
      process.stderr.write(`flowtap: ${(e as Error).message}\n`);
      return 2;
    }
    if (keylog.size === 0) process.stderr.write(`flowtap: warning: ${v.keylog} holds no key log lines (CLIENT_RANDOM, *_TRAFFIC_SECRET_0, ...)\n`);
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'read needs a capture file' : 'read takes one file');
  if (v.format !== 'jsonl' && v.format !== 'table') throw new UsageError(`--format must be jsonl or table, not "${v.format}"`);
  const decode: Record<number, string> = {};
  for (const d of v.decode ?? []) {
    const m = /^(\d{1,5})=([a-z0-9-]+)$/.exec(d);
    if (!m || Number(m[1]) > 65535) throw new UsageError(`--decode takes PORT=PROTO, e.g. 8080=http1, not "${d}"`);
    decode[Number(m[1])] = m[2];
  }
  const bodyCapture = v['body-capture'] === undefined ? 4096 : wholeNumber('--body-capture', v['body-capture']);
  const timeout = v.timeout === undefined ? 60_000 : wholeNumber('--timeout', v.timeout) * 1000;
  let protos: ProtoRegistry | undefined;
  if (v['proto-dir'] !== undefined) {
    try {
      protos = ProtoRegistry.load(v['proto-dir']);
    } catch (e) {
      process.stderr.write(`flowtap: ${(e as Error).message}\n`);
      return 2;
    }
  }
  const file = positionals[0];
  const format = v.format;
  return withPlugins(v.plugin, v['plugin-worker'], async (host) => {
    const known = host?.allProtocols ?? protocols;
    for (const name of Object.values(decode)) {
      if (!known.some((p) => p.name === name)) throw new UsageError(`--decode: unknown protocol "${name}" (known: ${known.map((p) => p.name).join(', ')})`);
    }
    return readFile(file, format, {
      decode, bodyCapture, timeout, traceKeys: v['trace-key'] ?? [], spanKeys: v['span-key'] ?? [], decodeValues: v.values ?? false, protos,
      protocols: known, keylog,
    }, host);
  }, READ_USAGE);
}

function dump(args: string[]): Promise<number> | number {
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
      'decode-worker': { type: 'boolean' }, 'idle-timeout': { type: 'string' },
    },
  });
  const v = parsed.values;
  if (v.help) { process.stdout.write(DUMP_USAGE + '\n'); return 0; }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (!v['upstream-tls'] && (v['upstream-ca'] !== undefined || v.insecure)) throw new UsageError('--upstream-ca and --insecure go with --upstream-tls');
  if (v.alpn !== undefined && v['tls-cert'] === undefined) throw new UsageError('--alpn goes with --tls-cert');
  if (v['decode-worker'] && (v.mirror?.length || v.plugin?.length || v['plugin-worker']?.length)) {
    throw new UsageError('--decode-worker cannot go with --mirror or plugins (they need the records on the main thread)');
  }
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
      tls: tlsOpt, upstreamTls, decodeIn: v['decode-worker'] ? 'worker' : 'inline',
      idleTimeout,
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
  host: PluginHost | null; mirror?: MirrorOptions;
  tls?: { cert: Buffer; key: Buffer; ALPNProtocols?: string[] }; upstreamTls?: { ca?: Buffer; rejectUnauthorized: boolean };
  decodeIn: 'inline' | 'worker'; idleTimeout: number;
}): Promise<number> {
  const { TapProxy } = await import('../pipeline/tap-proxy.js');
  const sinks = await Promise.all(o.outs.map((out) => makeSink(out)));
  let mirror;
  if (o.mirror) {
    const { Mirror } = await import('../replay/mirror.js');
    try { mirror = new Mirror(o.mirror); } catch (e) { process.stderr.write(`flowtap: ${(e as Error).message}\n`); return 2; }
  }
  const proxy = new TapProxy({
    listen: { host: o.listen.host, port: o.listen.port }, upstream: o.upstream, protocol: o.protocol,
    traceKeys: o.traceKeys, spanKeys: o.spanKeys, bodyCapture: o.bodyCapture, protocols: o.host?.allProtocols, mirror,
    tls: o.tls, upstreamTls: o.upstreamTls, decodeIn: o.decodeIn, idleTimeout: o.idleTimeout,
  });
  const { mask, pipeline, tee } = await import('../pipeline/stages.js');
  const stages = [...(o.host ? [o.host.stage()] : []), ...(o.mask ? [mask()] : []), tee(...sinks)];
  proxy.on('record', pipeline(...stages));
  proxy.on('upstreamError', (e) => { if (!process.stderr.isTTY) process.stderr.write(`flowtap: upstream: ${e.message}\n`); });
  let address;
  try {
    address = await proxy.listen();
  } catch (e) {
    process.stderr.write(`flowtap: cannot listen on ${o.listen.host}:${o.listen.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`flowtap: listening on ${address.address}:${address.port}, forwarding to ${o.upstream.host}:${o.upstream.port}\n`);
  const tty = process.stderr.isTTY && !o.outs.some((x) => x.kind === 'jsonl' && x.target === '-');
  const status = () => {
    const dropped = sinks.reduce((n, s) => n + s.stats.dropped, 0);
    process.stderr.write(`\r\x1b[Kconnections ${proxy.stats.open} open / ${proxy.stats.connections} total  records ${proxy.stats.records}  drops ${dropped}  upstream errors ${proxy.stats.upstreamErrors}`);
  };
  const ticker = tty ? setInterval(status, 250) : null;
  await untilStopped();
  if (ticker) { clearInterval(ticker); status(); process.stderr.write('\n'); }
  await proxy.close();
  await Promise.all(sinks.map((s) => s.close()));
  if (proxy.stats.decodeShed > 0) {
    process.stderr.write(`flowtap: ${proxy.stats.decodeShed} forwarded bytes were not decoded (decode backlog full); their records say what is missing\n`);
  }
  if (mirror) {
    mirror.close();
    for (const s of mirror.stats) {
      process.stderr.write(`flowtap: mirror ${s.target}: ${s.mirrored} mirrored, ${s.answered} answered, ${s.failed} failed, `
        + `${s.dropped} dropped (queue full or over --rate), ${s.skipped} not mirrored (filters)\n`);
    }
  }
  return 0;
}

/** --mirror and the flags that shape what is copied. */
function mirrorOptions(v: Parameters<typeof selectionFrom>[0] & { mirror?: string[]; 'mirror-queue'?: string; rate?: string }): MirrorOptions {
  const selection = selectionFrom(v);
  selection.allowSideEffects = true; // a mirror copies what production does; filters say what not to copy
  const rate = applyRate(v.rate, selection);
  return { targets: v.mirror!, queue: v['mirror-queue'] === undefined ? 1000 : wholeNumber('--mirror-queue', v['mirror-queue']), selection, rate };
}

async function readFile(
  path: string, format: 'jsonl' | 'table',
  options: ConstructorParameters<typeof CaptureDecoder>[0],
  host: PluginHost | null,
): Promise<number> {
  let out = format === 'table' ? TABLE_HEADER + '\n' : '';
  const print = (r: AnyRecord) => { out += (format === 'table' ? formatTableRow(r) : JSON.stringify(r)) + '\n'; };
  const dec = new CaptureDecoder(options, host ? (r) => host.process(r, print) : print);
  const flush = async () => {
    if (out.length === 0) return;
    const text = out;
    out = '';
    if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
  };
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      dec.write(chunk as Buffer);
      if (dec.error) break;
      if (out.length > 1 << 16) await flush();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    process.stderr.write(`flowtap: cannot read ${path}: ${why}\n`);
    return 2;
  } finally {
    stream.destroy();
  }
  const summary = dec.end();
  await host?.drain();
  await flush();
  if (dec.error) {
    process.stderr.write(`flowtap: ${path}: ${dec.error}\n`);
    return 2;
  }
  if (summary.warning) process.stderr.write(`flowtap: warning: ${summary.warning}\n`);
  const { noKeys, badKeys } = summary.tls;
  if (options.keylog !== undefined || summary.tls.decrypted > 0) {
    if (badKeys > 0) process.stderr.write(`flowtap: warning: ${badKeys} TLS connection(s) did not decrypt with the key log's secrets (wrong key log?); reported from their handshake only\n`);
    if (noKeys > 0) process.stderr.write(`flowtap: warning: ${noKeys} TLS connection(s) have no secrets in the key log; reported from their handshake only\n`);
  }
  return 0;
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0); // `flowtap read x | head` is normal use
  throw e;
});

Promise.resolve(main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write(`flowtap: ${(e as Error).message}\n`); process.exitCode = 1; },
);
