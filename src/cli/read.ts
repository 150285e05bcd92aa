/** `flowtap read FILE`: a capture's exchange records, as JSON lines or a table. */
import { createReadStream, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ParallelCaptureReader } from '../capture/parallel.js';
import { CaptureDecoder, type CaptureSummary } from '../capture/read.js';
import { KeyLog } from '../capture/tls/keylog.js';
import { ProtoRegistry } from '../codecs/grpc/schemas.js';
import type { AnyRecord } from '../records/types.js';
import { protocols } from '../pipeline/protocols.js';
import { formatTableRow, TABLE_HEADER } from './table.js';
import { parseFlags, UsageError, wholeNumber, withPlugins } from './common.js';

export const READ_USAGE = `usage: flowtap read FILE [options]

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
  --threads N            decoding threads (default: one per core, at most 8, for files of 32 MB
                         and more, else 1); the output is the same for every N. Plugins need 1
  -h, --help             show this help

exit status: 0 done, 2 bad arguments or a file that cannot be read as a capture`;

export function read(args: string[]): Promise<number> | number {
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
      threads: { type: 'string' },
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
  const plugins = (v.plugin?.length ?? 0) + (v['plugin-worker']?.length ?? 0) > 0;
  let threads: number;
  if (v.threads !== undefined) {
    threads = wholeNumber('--threads', v.threads);
    if (threads < 1 || threads > 64) throw new UsageError(`--threads takes 1 to 64, not ${threads}`);
    if (threads > 1 && plugins) throw new UsageError('--threads above 1 cannot be used with --plugin or --plugin-worker (plugins see each record in the reading thread)');
  } else {
    threads = plugins ? 1 : autoThreads(file);
  }
  return withPlugins(v.plugin, v['plugin-worker'], async (host) => {
    const known = host?.allProtocols ?? protocols;
    for (const name of Object.values(decode)) {
      if (!known.some((p) => p.name === name)) throw new UsageError(`--decode: unknown protocol "${name}" (known: ${known.map((p) => p.name).join(', ')})`);
    }
    const session = { bodyCapture, traceKeys: v['trace-key'] ?? [], spanKeys: v['span-key'] ?? [], decodeValues: v.values ?? false };
    if (threads > 1) {
      return readFile(file, format, keylog !== undefined, (out) => new ParallelCaptureReader({
        threads, format, decode, timeout, ...session, protoDir: v['proto-dir'], keylog: keylog?.toText(),
      }, out));
    }
    return readFile(file, format, keylog !== undefined, (out) => {
      const print = (r: AnyRecord) => { out((format === 'table' ? formatTableRow(r) : JSON.stringify(r)) + '\n'); };
      const dec = new CaptureDecoder({ decode, timeout, ...session, protos, protocols: known, keylog }, host ? (r) => host.process(r, print) : print);
      return {
        write: (chunk) => dec.write(chunk),
        get error() { return dec.error; },
        ready: () => null,
        end: async () => { const summary = dec.end(); await host?.drain(); return summary; },
      };
    });
  }, READ_USAGE);
}

/**
 * Files this big are read with a decoding thread per core. Each thread's start-up and warm-up cost ~0.2 s
 * of CPU: on two cores, --threads 2 was slower at 16 MB (0.72–0.80 s against 0.66–0.77) and faster at 41 MB
 * (median 1.14 s against 1.26); the lines cross near 25 MB.
 */
const PARALLEL_BYTES = 32 << 20;

function autoThreads(file: string): number {
  let size = 0;
  try { size = statSync(file).size; } catch { /* readFile says why it cannot be read */ }
  return size >= PARALLEL_BYTES ? Math.min(8, availableParallelism()) : 1;
}

/** A capture being decoded: in this thread (CaptureDecoder) or in several (ParallelCaptureReader). */
interface Reading {
  write(chunk: Buffer): void;
  readonly error: string | null;
  /** Resolves when the reading may go on (null: at once). */
  ready(): Promise<void> | null;
  end(): Promise<CaptureSummary>;
}

async function readFile(path: string, format: 'jsonl' | 'table', keylogGiven: boolean,
  start: (out: (text: string | Buffer) => void) => Reading): Promise<number> {
  let queued: (string | Buffer)[] = format === 'table' ? [TABLE_HEADER + '\n'] : [];
  let size = 0;
  const dec = start((text) => { queued.push(text); size += text.length; });
  const flush = async () => {
    if (queued.length === 0) return;
    const parts = queued;
    queued = [];
    size = 0;
    // Strings are joined (records of one thread are short lines); buffers of the threads go as they are.
    let ok = true;
    if (parts.every((p) => typeof p === 'string')) ok = process.stdout.write(parts.join(''));
    else for (const p of parts) ok = process.stdout.write(p);
    if (!ok) await new Promise((r) => process.stdout.once('drain', r));
  };
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      dec.write(chunk as Buffer);
      if (dec.error) break;
      await dec.ready();
      if (size > 1 << 16) await flush();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    process.stderr.write(`flowtap: cannot read ${path}: ${why}\n`);
    await dec.end().catch(() => {});
    return 2;
  } finally {
    stream.destroy();
  }
  const summary = await dec.end();
  await flush();
  if (dec.error) {
    process.stderr.write(`flowtap: ${path}: ${dec.error}\n`);
    return 2;
  }
  if (summary.warning) process.stderr.write(`flowtap: warning: ${summary.warning}\n`);
  const { noKeys, badKeys } = summary.tls;
  if (keylogGiven || summary.tls.decrypted > 0) {
    if (badKeys > 0) process.stderr.write(`flowtap: warning: ${badKeys} TLS connection(s) did not decrypt with the key log's secrets (wrong key log?); reported from their handshake only\n`);
    if (noKeys > 0) process.stderr.write(`flowtap: warning: ${noKeys} TLS connection(s) have no secrets in the key log; reported from their handshake only\n`);
  }
  return 0;
}
