/** `flowtap record` and `flowtap replay`: GoReplay's jobs, on flowtap's decoders. */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { applyRate, parseSpeed, parseWait, selectionFrom, SELECT_FLAGS, SELECT_HELP } from './select-flags.js';
import { hostPort, makeSink, outSpec, parseFlags, untilStopped, unwritableOutput, UsageError, wholeNumber, withPlugins } from './common.js';
import type { PluginHost } from '../plugins/host.js';
import type { AnyRecord } from '../records/types.js';
import { attachWire, wireOf } from '../records/wire.js';

/** A hook's changed copy of a record still records the original's wire bytes. */
function withWireOf(original: AnyRecord, copy: AnyRecord): AnyRecord {
  const w = wireOf(original);
  return w ? attachWire(copy, w) : copy;
}

export const RECORD_USAGE = `usage: flowtap record (-i IFACE --port PORT... | --pcap FILE | --listen [HOST:]PORT --upstream HOST:PORT) -o FILE [options]

Records exchanges whole (headers, full bodies up to a cap, the original response and its timing) into
FILE: a GoReplay .gor file (name ending .gor or .gor.gz; HTTP/1 only) or a flowtap recording (any other
name; HTTP/1, HTTP/2, gRPC and Dubbo). A name ending .gz is gzipped.

inputs (one):
  -i, --interface IFACE  capture live with tcpdump (libpcap's kernel filter), no proxy in the path;
    --port PORT          ... the server port(s) to record; repeatable
  --pcap FILE            a pcap/pcapng capture file
  --listen [HOST:]PORT   run the tap proxy here ...
    --upstream HOST:PORT ... forwarding there
options:
  -o, --output FILE      where to write; %Y %m %d %H %M %S in the name are the start time
  --size-limit BYTES     start FILE_1, FILE_2, ... past this size (each file numbered FILE_0 onwards)
  --body-cap BYTES       bytes kept of each message (default 1048576); longer ones are kept cut, marked
  --duration SECONDS     stop after this long (live capture and proxy; default: until SIGINT/SIGTERM)
  --plugin FILE          a plugin (docs/plugins.md): its protocols are detected, a record its hooks drop
                         is not recorded; repeatable (--plugin-worker FILE: hooks in a worker thread)
  -h, --help             show this help

At the end it prints what was recorded and, for a live capture, what libpcap reports: packets received
and dropped by the kernel. exit status: 0 done, 1 the recording could not be written to the end (the
disk filled), 2 bad arguments, an output that cannot be written, a missing tcpdump, no capture
permission or an unreadable input`;

export const REPLAY_USAGE = `usage: flowtap replay FILE... --target URL [options]

Sends the recorded requests in FILE (.gor or flowtap recordings, plain or .gz; a glob of several is merged
by timestamp) to the target, reads the answers with flowtap's own decoders and prints a summary.
HTTP/1, HTTP/2 (h2c), gRPC and Dubbo (the target URL is http://HOST:PORT for each).

timing and connections:
  --target URL           http://HOST:PORT[/PREFIX] (a path is put in front of every request path)
  --speed X              200% or 2x (twice as fast), 0.5x, or max (no waiting); default 1x
  --max-wait DURATION    no single wait longer than this (500ms, 2s)
  --loop                 start again when the files are done (until SIGINT)
  --workers N            keep-alive connections to the target (default 8)
  --sessions             reproduce the original connections: their requests on one connection each, in order
  --keep-host            send the recorded Host (else the target's)
  --timeout DURATION     no answer within this is a failure (default 10s)
selection and rewrites (applied in this order; a request dropped here drops its response too):
${SELECT_HELP}
  --rate N               at most N requests a second (they wait their turn)
  --rate N%              send N% of the requests (consistently with --sample-by)
  --middleware CMD       a GoReplay middleware (started without a shell; hex lines on stdin/stdout)
output:
  --out FILE             write the requests sent (type 1), the recorded answers (2) and the replayed ones (3)
  --records SPEC         exchange records of the replay: jsonl:PATH, es:URL, splunk:URL, clickhouse:URL
  --plugin FILE          plugin hooks over those records; repeatable (--plugin-worker FILE: in a worker)
  -h, --help             show this help

exit status: 0 every request sent was answered; 1 some were not (refused, reset, timed out), the
middleware exited or --out could not be written to the end; 2 bad arguments, an output that cannot be
written, or a file that is neither .gor nor a flowtap recording`;

export function record(args: string[]): Promise<number> | number {
  const { values: v, positionals } = parseFlags({
    args, allowPositionals: false, strict: true,
    options: {
      interface: { type: 'string', short: 'i' }, port: { type: 'string', multiple: true }, pcap: { type: 'string' },
      listen: { type: 'string' }, upstream: { type: 'string' }, output: { type: 'string', short: 'o' },
      'size-limit': { type: 'string' }, 'body-cap': { type: 'string' }, duration: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      plugin: { type: 'string', multiple: true }, 'plugin-worker': { type: 'string', multiple: true },
    },
  });
  void positionals;
  if (v.help) { process.stdout.write(RECORD_USAGE + '\n'); return 0; }
  const inputs = [v.interface !== undefined, v.pcap !== undefined, v.listen !== undefined].filter(Boolean).length;
  if (inputs !== 1) throw new UsageError('record needs one input: -i IFACE --port PORT, --pcap FILE, or --listen PORT --upstream HOST:PORT');
  if (!v.output) throw new UsageError('record needs -o FILE');
  const ports = (v.port ?? []).map((p) => { const n = wholeNumber('--port', p); if (n < 1 || n > 65535) throw new UsageError(`--port takes 1-65535, not "${p}"`); return n; });
  if (v.interface !== undefined && ports.length === 0) throw new UsageError('a live capture needs --port PORT (the server port to record)');
  if (v.listen !== undefined && !v.upstream) throw new UsageError('--listen needs --upstream HOST:PORT');
  const keepRaw = v['body-cap'] === undefined ? 1 << 20 : wholeNumber('--body-cap', v['body-cap']);
  const sizeLimit = v['size-limit'] === undefined ? undefined : wholeNumber('--size-limit', v['size-limit']);
  const duration = v.duration === undefined ? undefined : wholeNumber('--duration', v.duration) * 1000;
  return withPlugins(v.plugin, v['plugin-worker'], (host) => runRecord({
    iface: v.interface, ports, pcap: v.pcap, listen: v.listen, upstream: v.upstream, output: v.output!, keepRaw, sizeLimit, duration, host,
  }), RECORD_USAGE);
}

async function runRecord(o: {
  iface?: string; ports: number[]; pcap?: string; listen?: string; upstream?: string; output: string;
  keepRaw: number; sizeLimit?: number; duration?: number; host: PluginHost | null;
}): Promise<number> {
  const { Recorder } = await import('../replay/recorder.js');
  const { unwritablePath } = await import('../replay/files.js');
  const unwritable = unwritablePath(o.output);
  if (unwritable) { process.stderr.write(`flowtap: -o ${o.output}: ${unwritable}\n`); return 2; }
  const recorder = new Recorder(o.output, { sizeLimit: o.sizeLimit });
  // Hooks see the record first; the recorder writes what they pass on (a copy keeps no wire: see wireOf).
  const write = (r: AnyRecord) => { recorder.record(r); };
  const onRecord = o.host ? (r: AnyRecord) => o.host!.process(r, (out) => write(out === r ? r : withWireOf(r, out))) : write;
  const protocols = o.host?.allProtocols;
  let pcapStats = '';
  let code = 0;
  if (o.pcap !== undefined || o.iface !== undefined) {
    const { CaptureDecoder } = await import('../capture/read.js');
    const dec = new CaptureDecoder({ keepRaw: o.keepRaw, protocols }, onRecord);
    if (o.pcap !== undefined) {
      try {
        for await (const chunk of createReadStream(o.pcap, { highWaterMark: 1 << 20 })) {
          dec.write(chunk as Buffer);
          if (dec.error) break;
        }
      } catch (e) {
        const c = (e as NodeJS.ErrnoException).code;
        process.stderr.write(`flowtap: cannot read ${o.pcap}: ${c === 'ENOENT' ? 'no such file' : c === 'EISDIR' ? 'it is a directory' : (e as Error).message}\n`);
        await recorder.close();
        return 2;
      }
    } else {
      const r = await liveCapture(o.iface!, o.ports, o.duration, (chunk) => dec.write(chunk));
      if (r.error) { process.stderr.write(`flowtap: ${r.error}\n`); await recorder.close(); return 2; }
      pcapStats = r.stats;
    }
    const summary = dec.end();
    if (dec.error) { process.stderr.write(`flowtap: ${o.pcap ?? 'tcpdump'}: ${dec.error}\n`); code = 2; }
    else if (summary.warning) process.stderr.write(`flowtap: warning: ${summary.warning}\n`);
  } else {
    const { TapProxy } = await import('../pipeline/tap-proxy.js');
    const listen = hostPort('--listen', o.listen!, '127.0.0.1');
    const up = hostPort('--upstream', o.upstream!, null);
    const proxy = new TapProxy({ listen: { host: listen.host, port: listen.port }, upstream: { host: up.host!, port: up.port }, keepRaw: o.keepRaw, protocols });
    proxy.on('record', onRecord);
    try {
      await proxy.listen();
    } catch (e) {
      process.stderr.write(`flowtap: cannot listen on ${listen.host}:${listen.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      await recorder.close();
      return 2;
    }
    process.stderr.write(`flowtap: recording what crosses ${listen.host}:${listen.port} → ${up.host}:${up.port}\n`);
    await untilStopped(o.duration);
    await proxy.close();
  }
  await o.host?.drain();
  await recorder.close();
  const s = recorder.stats;
  const notes = [s.unrecordable && `${s.unrecordable} without request bytes (not recorded)`, s.notHttp1 && `${s.notHttp1} not HTTP/1 (a .gor file holds HTTP/1 only: use a flowtap recording)`,
    s.cut && `${s.cut} messages over the body cap, kept cut`].filter(Boolean);
  const failed = recorder.failure ? `; the recording is incomplete: ${recorder.failure.message} (${recorder.lost} payloads after that were not written)` : '';
  process.stderr.write(`flowtap: ${s.exchanges} exchanges ${failed ? 'seen for' : 'recorded to'} ${recorder.files.join(', ') || o.output}${notes.length ? `; ${notes.join('; ')}` : ''}${failed}\n`);
  if (pcapStats) process.stderr.write(`flowtap: tcpdump: ${pcapStats}\n`);
  return failed ? code || 1 : code;
}

/**
 * Debian's tcpdump writing pcap to stdout (`-U -w -`): its kernel filter is the BPF program tcpdump compiles
 * from `tcp port P or ...`. At the end, libpcap's own counts from tcpdump's stderr.
 */
async function liveCapture(iface: string, ports: number[], duration: number | undefined, onChunk: (b: Buffer) => void): Promise<{ error?: string; stats: string }> {
  const filter = ports.map((p) => `tcp port ${p}`).join(' or ');
  const p = spawn('tcpdump', ['-i', iface, '-U', '-s', '0', '--immediate-mode', '-B', String(64 * 1024), '-w', '-', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const started = await new Promise<string | null>((resolve) => {
    p.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? 'tcpdump is not installed (apt-get install tcpdump)' : `tcpdump: ${e.message}`));
    const check = setInterval(() => { if (err.includes('listening on')) { clearInterval(check); resolve(null); } }, 20);
    p.once('exit', (code) => {
      clearInterval(check);
      // tcpdump's first complaint names the interface; a second line often only repeats the errno text.
      const why = err.trim().split('\n').find((l) => l.trim() && !l.startsWith('tcpdump: listening'))?.replace(/^tcpdump: /, '') ?? `exit ${code}`;
      resolve(/permission|not permitted/i.test(why) ? `no permission to capture on ${iface} (run as root or give tcpdump CAP_NET_RAW): ${why}` : `tcpdump: ${why}`);
    });
  });
  if (started) return { error: started, stats: '' };
  process.stderr.write(`flowtap: capturing on ${iface} (${filter})\n`);
  p.stdout!.on('data', (d: Buffer) => onChunk(d));
  const exited = new Promise<void>((r) => p.once('close', () => r()));
  await Promise.race([untilStopped(duration), exited]);
  p.kill('SIGINT');
  await exited;
  const n = (what: string) => /(\d+) packets? /.exec(err.split('\n').find((l) => l.includes(what)) ?? '')?.[1] ?? '?';
  return { stats: `${n('captured')} packets captured, ${n('received by filter')} received by filter, ${n('dropped by kernel')} dropped by kernel` };
}

export function replay(args: string[]): Promise<number> | number {
  const { values: v, positionals } = parseFlags({
    args, allowPositionals: true, strict: true,
    options: {
      target: { type: 'string' }, speed: { type: 'string' }, 'max-wait': { type: 'string' }, loop: { type: 'boolean' },
      workers: { type: 'string' }, sessions: { type: 'boolean' }, 'keep-host': { type: 'boolean' }, timeout: { type: 'string' },
      rate: { type: 'string' }, middleware: { type: 'string' }, out: { type: 'string' }, records: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' }, ...SELECT_FLAGS,
      plugin: { type: 'string', multiple: true }, 'plugin-worker': { type: 'string', multiple: true },
    },
  });
  if (v.help) { process.stdout.write(REPLAY_USAGE + '\n'); return 0; }
  if (positionals.length === 0) throw new UsageError('replay needs a recording (FILE.gor, FILE.ftr, or a glob)');
  if (!v.target) throw new UsageError('replay needs --target URL (http://HOST:PORT)');
  const selection = selectionFrom(v);
  const rate = applyRate(v.rate, selection);
  const workers = v.workers === undefined ? 8 : wholeNumber('--workers', v.workers);
  if (workers < 1) throw new UsageError('--workers takes at least 1');
  const records = (v.records ?? []).map(outSpec);
  const opts = {
    target: v.target, speed: v.speed === undefined ? 1 : parseSpeed(v.speed), maxWait: v['max-wait'] === undefined ? undefined : parseWait('--max-wait', v['max-wait']),
    loop: v.loop ?? false, workers, sessions: v.sessions ?? false, keepHost: v['keep-host'] ?? false, rate,
    timeout: v.timeout === undefined ? 10_000 : parseWait('--timeout', v.timeout), selection, middleware: v.middleware, out: v.out,
  };
  return withPlugins(v.plugin, v['plugin-worker'], (host) => runReplay(positionals, opts, records, host), REPLAY_USAGE);
}

async function runReplay(files: string[], opts: import('../replay/replayer.js').ReplayOptions, records: import('./common.js').OutSpec[],
  host: PluginHost | null): Promise<number> {
  const { Replayer } = await import('../replay/replayer.js');
  const { RecordingError } = await import('../replay/files.js');
  let replayer;
  try {
    replayer = new Replayer({ ...opts, read: { onProblem: (file, line, why) => process.stderr.write(`flowtap: ${file}:${line}: ${why} (skipped)\n`) } });
  } catch (e) {
    process.stderr.write(`flowtap: ${(e as Error).message}\n`);
    return 2;
  }
  const unwritable = unwritableOutput(records, '--records');
  if (unwritable) { process.stderr.write(`flowtap: ${unwritable}\n`); return 2; }
  const { unwritablePath } = await import('../replay/files.js');
  const badOut = opts.out === undefined ? null : unwritablePath(opts.out);
  if (badOut) { process.stderr.write(`flowtap: --out ${opts.out}: ${badOut}\n`); return 2; }
  const sinks = await Promise.all(records.map(makeSink));
  const toSinks = (r: AnyRecord) => { for (const s of sinks) s.write(r); };
  if (sinks.length) replayer.on('record', host ? (r) => host.process(r, toSinks) : toSinks);
  const tty = process.stderr.isTTY;
  let last = 0;
  if (tty) replayer.on('progress', (s) => {
    if (Date.now() - last < 250) return;
    last = Date.now();
    process.stderr.write(`\r\x1b[Ksent ${s.sent}  answered ${s.answered}  failed ${s.failed}  held back ${s.heldBack}  filtered ${s.filtered}`);
  });
  const stop = () => replayer.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let summary;
  try {
    summary = await replayer.run(files);
  } catch (e) {
    if (e instanceof RecordingError) { if (tty) process.stderr.write('\n'); process.stderr.write(`flowtap: ${e.message}\n`); return 2; }
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await host?.drain();
    await Promise.all(sinks.map((s) => s.close()));
  }
  if (tty) process.stderr.write('\n');
  const s = summary;
  const lines = [
    `replayed ${s.sent} of ${s.requests} requests to ${opts.target}: ${s.answered} answered, ${s.failed} failed (${(s.elapsedMs / 1000).toFixed(1)} s)`,
    `answers: ${Object.entries(s.byCode).sort().map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `latency p50/p99: ${fmt(s.latency.p50)} / ${fmt(s.latency.p99)} ms replayed, ${fmt(s.originalLatency.p50)} / ${fmt(s.originalLatency.p99)} ms recorded`,
  ];
  if (s.heldBack) lines.push(`held back ${s.heldBack} requests that may change state (POST, PUT, PATCH, DELETE, gRPC, Dubbo): add --allow-side-effects to send them`);
  if (s.filtered || s.sampledOut) lines.push(`not sent: ${s.filtered} filtered, ${s.sampledOut} sampled out`);
  if (s.droppedByMiddleware) lines.push(`dropped by the middleware: ${s.droppedByMiddleware}`);
  if (s.malformed) lines.push(`unreadable requests skipped: ${s.malformed}`);
  for (const [why, n] of Object.entries(s.errors)) lines.push(`failed: ${n} × ${why}`);
  if (s.stoppedBy) lines.push(`stopped: ${s.stoppedBy}; nothing was sent twice`);
  if (s.outFailure) lines.push(`--out is incomplete: ${s.outFailure.message} (${s.outFailure.lost} payloads after that were not written)`);
  process.stderr.write(lines.map((l) => `flowtap: ${l}\n`).join(''));
  return s.failed > 0 || s.stoppedBy || s.outFailure ? 1 : 0;
}

const fmt = (x: number | null) => (x === null ? '-' : x.toFixed(1));
