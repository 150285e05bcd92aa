import { createReadStream } from 'node:fs';
import { CaptureDecoder } from '../capture/read.js';
import { KeyLog } from '../capture/tls/keylog.js';
import { ProtoRegistry } from '../codecs/grpc/schemas.js';
import type { AnyRecord } from '../records/types.js';
import type { PluginHost } from '../plugins/host.js';
import { protocols } from '../pipeline/protocols.js';
import { formatTableRow, TABLE_HEADER } from './table.js';
import { record, RECORD_USAGE, replay, REPLAY_USAGE } from './replay.js';
import { diff, DIFF_USAGE } from './diff.js';
import { dump, DUMP_USAGE } from './dump.js';
import { parseFlags, UsageError, usageFailure, wholeNumber, withPlugins } from './common.js';

const USAGE = `usage: flowtap <command> [options]

commands:
  read FILE      decode a pcap/pcapng capture into exchange records
  dump           run the transparent tap proxy, recording what crosses it
  record         record whole exchanges (live capture, capture file or proxy) for replay
  replay FILE... send recorded requests to a target again (GoReplay's .gor or flowtap recordings)
  diff           compare a candidate's answers with production's, noise cancelled (three-way or two-way)

run "flowtap <command> --help" for a command's options`;

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
