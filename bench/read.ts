/**
 * `flowtap read` of a large capture vs tshark with the same decode: real loopback traffic (wrk against a
 * Node http upstream, keep-alive, 8 connections) captured by tcpdump, then each tool reads the file to
 * /dev/null once; elapsed time and peak RSS from /usr/bin/time. flowtap runs as users run it (a decoding thread
 * per core for a capture this size) and with `--threads 1`. Needs root, tcpdump, tshark and wrk.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './measure.js';
import { freePort, startChild } from './processes.js';

const SECONDS = 5;
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Seconds and peak RSS (MB) of a command whose output goes to /dev/null. */
function timed(cmd: string, args: string[]): { seconds: number; rssMb: number; status: number | null } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', 'sh', '-c', `"$0" "$@" > /dev/null 2>/dev/null`, cmd, ...args], { encoding: 'utf8' });
  const [e, m] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds: e, rssMb: m / 1024, status: r.status };
}

export async function benchRead(): Promise<BenchResult> {
  for (const c of ['tcpdump', 'tshark', 'wrk']) if (!have(c)) throw new Error(`bench/read needs ${c}`);
  if (process.getuid?.() !== 0) throw new Error('bench/read captures on loopback: needs root');
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-read-'));
  const file = join(dir, 'http1.pcap');
  const port = await freePort();
  const upstream = await startChild(new URL('./proxy/upstream.mjs', import.meta.url).pathname, [port]);
  try {
    const td = spawn('tcpdump', ['-i', 'lo', '--immediate-mode', '-B', String(256 * 1024), '-s', '0', '-w', file, `tcp port ${port}`],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let tdErr = '';
    td.stderr!.on('data', (d) => { tdErr += d; });
    await new Promise<void>((r) => { const t = setInterval(() => { if (tdErr.includes('listening')) { clearInterval(t); r(); } }, 20); });
    const w = spawnSync('wrk', ['-t1', '-c8', `-d${SECONDS}s`, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
    await new Promise((r) => setTimeout(r, 300));
    td.kill('SIGINT');
    await new Promise((r) => td.once('exit', r));
    const requests = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
    const dropped = Number(/(\d+) packets dropped by kernel/.exec(tdErr)?.[1] ?? 0);
    const mb = statSync(file).size / 1e6;
    const cli = new URL('../dist/cli.js', import.meta.url).pathname;
    // As users run it (decoding threads, one per core, for a file this size), and in one thread.
    const ft = timed('node', [cli, 'read', file]);
    const one = timed('node', [cli, 'read', file, '--threads', '1']);
    const ts = timed('tshark', ['-r', file, '-T', 'fields', '-e', 'http.response.code']);
    if (ft.status !== 0 || one.status !== 0 || ts.status !== 0) throw new Error(`a reader failed (flowtap ${ft.status}, ${one.status}, tshark ${ts.status})`);
    const m = (name: string, t: { seconds: number; rssMb: number }) =>
      ({ name: `${name}, peak RSS ${t.rssMb.toFixed(0)} MB`, opsPerSec: requests / t.seconds, mbPerSec: mb / t.seconds, medianMs: t.seconds * 1000, passesMs: [t.seconds * 1000] });
    return {
      name: 'read',
      unit: `exchanges/s reading a ${mb.toFixed(1)} MB capture of ${requests} HTTP/1 exchanges (${dropped} packets dropped by the kernel), one run`,
      results: [m(`flowtap read (${Math.min(8, availableParallelism())} decoding threads)`, ft), m('flowtap read --threads 1', one), m('tshark -T fields -e http.response.code', ts)],
      ratios: {
        'flowtap/tshark': ts.seconds / ft.seconds, 'flowtap --threads 1/tshark': ts.seconds / one.seconds,
        'flowtap peak RSS MB': ft.rssMb, 'flowtap --threads 1 peak RSS MB': one.rssMb, 'tshark peak RSS MB': ts.rssMb,
      },
      targets: { 'flowtap/tshark': 10 },
    };
  } finally {
    upstream.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
