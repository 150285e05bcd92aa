/**
 * Proxy throughput: wrk against an HTTP upstream — direct, through a plain Node `socket.pipe()` proxy,
 * through flowtap (HTTP/1 decoding and the JSONL sink on; inline, in a worker thread, and over two
 * processes), and through haproxy in TCP mode — at 16 and 256 connections, in interleaved rounds, each
 * part its own process. Then latency at a constant rate of half the pipe proxy's -c16 throughput (what
 * each adds over direct, and CPU per 10k requests), and a 1 GB upload streamed through flowtap with body
 * capture on, sampling the proxy's RSS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult, Measured } from './measure.js';
import { freePort, rssKb, startChild } from './processes.js';

const here = new URL('./proxy/', import.meta.url).pathname;
const ROUNDS = 3;
const SECONDS = 4;
const CONNECTIONS = [16, 256];

const start = (script: string, args: (string | number)[]) => startChild(join(here, script), args);

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

function wrk(port: number, connections: number): { rps: number; p99: number } {
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const m = /\s99%\s+([\d.]+)(us|ms|s)/.exec(r.stdout);
  const p99 = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  if (!(rps > 0)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return { rps, p99 };
}


export async function benchProxy(): Promise<BenchResult> {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('bench/proxy needs wrk (apt-get install -y wrk)');
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-'));
  const [up, pipeP, ftP, haP] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const kids: ChildProcess[] = [];
  try {
    kids.push(await start('upstream.mjs', [up]));
    kids.push(await start('pipe-proxy.mjs', [pipeP, up]));
    const flowtap = await start('flowtap-proxy.mjs', [ftP, up, join(dir, 'records.jsonl')]);
    kids.push(flowtap);
    const ftwP = await freePort();
    const flowtapWorker = await start('flowtap-proxy.mjs', [ftwP, up, join(dir, 'records-worker.jsonl'), 'worker']);
    kids.push(flowtapWorker);
    const ftcP = await freePort();
    const flowtapCluster = await start('flowtap-proxy.mjs', [ftcP, up, join(dir, 'records-cluster.jsonl'), 'cluster']);
    kids.push(flowtapCluster);
    const targets: { name: string; port: number; proc: ChildProcess }[] = [
      { name: 'direct', port: up, proc: kids[0] }, { name: 'Node socket.pipe() proxy', port: pipeP, proc: kids[1] },
      { name: 'flowtap (HTTP/1 decoding + JSONL sink)', port: ftP, proc: flowtap },
      { name: 'flowtap, decoding in a worker thread', port: ftwP, proc: flowtapWorker },
      { name: 'flowtap, 2 processes (--workers 2)', port: ftcP, proc: flowtapCluster },
    ];
    if (spawnSync('sh', ['-c', 'command -v haproxy']).status === 0) {
      writeFileSync(join(dir, 'haproxy.cfg'), `global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n` +
        `frontend f\n  bind 127.0.0.1:${haP}\n  default_backend b\nbackend b\n  server u 127.0.0.1:${up}\n`);
      const ha = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
      kids.push(ha);
      await waitForPort(haP);
      targets.push({ name: 'haproxy (TCP mode)', port: haP, proc: ha });
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const results: Measured[] = [];
    const ratios: Record<string, number> = {};
    for (const c of CONNECTIONS) {
      const runs = targets.map(() => [] as { rps: number; p99: number }[]);
      for (let round = 0; round < ROUNDS; round++) targets.forEach((t, i) => runs[i].push(wrk(t.port, c)));
      targets.forEach((t, i) => results.push({
        name: `-c${c} ${t.name}, p99 ${med(runs[i].map((r) => r.p99)).toFixed(2)} ms`,
        opsPerSec: med(runs[i].map((r) => r.rps)),
        mbPerSec: 0,
        medianMs: med(runs[i].map((r) => r.p99)),
        passesMs: runs[i].map((r) => 1000 / r.rps),
      }));
      const perRound = (a: number, b: number) => med(runs[a].map((r, k) => r.rps / runs[b][k].rps));
      ratios[`-c${c} flowtap/pipe proxy`] = perRound(2, 1);
      ratios[`-c${c} flowtap worker/pipe proxy`] = perRound(3, 1);
      ratios[`-c${c} flowtap 2 processes/pipe proxy`] = perRound(4, 1);
      if (targets.length > 5) ratios[`-c${c} flowtap/haproxy`] = perRound(2, 5);
      if (c === CONNECTIONS[0]) pipeRps = med(runs[1].map((r) => r.rps));
    }
    const ask = (p: ChildProcess) => new Promise<{ records: number; written: number; dropped: number; shed: number }>((resolve) => { p.once('message', (m) => resolve(m as never)); p.send('stats'); });
    const stats = await ask(flowtap);
    const wstats = await ask(flowtapWorker);
    const cstats = await ask(flowtapCluster);

    // Constant rate, half the pipe proxy's -c16 capacity: what each path adds to direct's latency, whether
    // the tap keeps up (records written = requests answered), and the CPU each proxy spends.
    const rate = Math.round(pipeRps / 2);
    const fixed = targets.slice(0, 5).map((t) => {
      const cpu0 = cpuMs(t.proc.pid!);
      const r = spawnSync('node', [join(here, 'constant-rate.mjs'), ...[t.port, rate, 16, SECONDS].map(String)], { encoding: 'utf8' });
      const cpu = cpuMs(t.proc.pid!) - cpu0;
      const m = JSON.parse(r.stdout.trim().split('\n').pop() || 'null') as { sent: number; answered: number; total: number; p50: number; p99: number; p999: number } | null;
      if (!m) throw new Error(`constant-rate failed: ${r.stderr}`);
      return { ...t, ...m, cpuPer10k: (cpu / m.total) * 10_000 };
    });
    const fixedLoss: Record<string, number> = {};
    await new Promise((r) => setTimeout(r, 500)); // the sinks' last flush
    for (const [i, before, label] of [[2, stats, 'inline'], [3, wstats, 'worker'], [4, cstats, '2 processes']] as const) {
      const after = await ask(fixed[i].proc);
      fixedLoss[`fixed rate, flowtap ${label}: records lost`] = fixed[i].total - (after.written - before.written);
    }
    for (const f of fixed) {
      results.push({
        name: `${rate}/s ${f.name}: p50 ${f.p50.toFixed(2)}, p99 ${f.p99.toFixed(2)}, p99.9 ${f.p999.toFixed(2)} ms`
          + (f === fixed[0] ? '' : `, ${Math.round(f.cpuPer10k)} ms CPU/10k`),
        opsPerSec: (f.answered / SECONDS), mbPerSec: 0, medianMs: f.p99, passesMs: [],
      });
    }
    const added = (i: number, k: 'p50' | 'p99' | 'p999') => fixed[i][k] - fixed[0][k];
    const pipeAdded = added(1, 'p99');

    // 1 GB through flowtap with body capture on: RSS must not follow the body.
    const big = await start('flowtap-proxy.mjs', [await freePort().then(async (p) => { bigPort = p; return p; }), up, join(dir, 'big.jsonl')]);
    kids.push(big);
    const rss0 = rssKb(big.pid!);
    let rssMax = rss0;
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssKb(big.pid!)); }, 50);
    const GB = 1024 ** 3;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ port: bigPort, host: '127.0.0.1', method: 'POST', path: '/upload', headers: { 'content-length': GB } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => (body === String(GB) ? resolve() : reject(new Error(`upstream got ${body} bytes`))));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < GB) {
          sent += chunk.length;
          if (!req.write(chunk)) { req.once('drain', pump); return; }
        }
        req.end();
      };
      pump();
    });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssKb(big.pid!));
    return {
      name: 'proxy',
      unit: `requests/s (wrk -t1, -c${CONNECTIONS.join(' and -c')}, median of ${ROUNDS} interleaved rounds of ${SECONDS} s)`,
      results,
      ratios: {
        ...ratios,
        'fixed rate, requests/s (half the pipe\'s -c16)': rate,
        'fixed rate, pipe: added p50 ms': added(1, 'p50'),
        'fixed rate, pipe: added p99 ms': pipeAdded,
        'fixed rate, pipe: added p99.9 ms': added(1, 'p999'),
        ...Object.fromEntries(([[2, 'inline'], [3, 'worker'], [4, '2 processes']] as const).flatMap(([i, label]) => [
          [`fixed rate, flowtap ${label}: added p50 ms`, added(i, 'p50')],
          [`fixed rate, flowtap ${label}: added p99 ms`, added(i, 'p99')],
          [`fixed rate, flowtap ${label}: added p99.9 ms`, added(i, 'p999')],
          [`fixed rate, flowtap ${label}: added p99 over the pipe's, ms`, added(i, 'p99') - pipeAdded],
          [`fixed rate, flowtap ${label}/pipe: CPU per 10k requests`, fixed[i].cpuPer10k / fixed[1].cpuPer10k],
        ])),
        'fixed rate, pipe: CPU ms per 10k requests': fixed[1].cpuPer10k,
        'fixed rate, flowtap inline: CPU ms per 10k requests': fixed[2].cpuPer10k,
        ...fixedLoss,
        'rss growth MB for 1 GB through flowtap': (rssMax - rss0) / 1024,
        '1 GB upload through flowtap, MB/s': 1024 / seconds,
        'records written during the wrk runs': stats.records,
        'records dropped': stats.dropped,
        'worker: records written': wstats.records,
        'worker: records dropped': wstats.dropped,
        'worker: bytes shed': wstats.shed,
        '2 processes: records written': cstats.records,
        '2 processes: records dropped': cstats.dropped,
      },
      targets: {
        ...Object.fromEntries(CONNECTIONS.flatMap((c) => [[`-c${c} flowtap/pipe proxy`, 0.9], [`-c${c} flowtap worker/pipe proxy`, 0.9],
          [`-c${c} flowtap 2 processes/pipe proxy`, 0.9]])),
        ...Object.fromEntries(['inline', 'worker', '2 processes'].flatMap((label) => [
          [`fixed rate, flowtap ${label}: added p99 over the pipe's, ms`, { atMost: 1 }],
          [`fixed rate, flowtap ${label}: records lost`, { atMost: 0 }],
        ])),
      },
    };
  } finally {
    for (const k of kids) k.kill('SIGKILL');
  }
}

let bigPort = 0;
let pipeRps = 0;

/** CPU time (user + system) of a process and its child processes, ms. */
function cpuMs(pid: number): number {
  const ticks = (p: number) => {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch { return 0; }
  };
  let kids: number[] = [];
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* none */ }
  return [pid, ...kids].reduce((n, p) => n + ticks(p), 0) * 10; // USER_HZ is 100 on Linux
}
