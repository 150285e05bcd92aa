/**
 * Replay rate: a recorded file of keep-alive GETs replayed as fast as possible (`--speed max`) with 16
 * connections against a local Node server in its own process, beside wrk with the same 16 connections
 * against the same server, in interleaved rounds. Target: flowtap ≥ 0.5× wrk. flowtap does more per
 * request than wrk (filters, Host rewrite, decoding every answer into a record, type-3 payloads
 * in memory), so the ratio is what a replay costs over a bare load generator.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Replayer } from '../dist/replay/index.js';
import type { BenchResult, Measured } from './measure.js';
import { freePort } from './processes.js';

const REQUESTS = 40_000;
const CONNECTIONS = 16;
const ROUNDS = 3;
const upstreamScript = new URL('./proxy/upstream.mjs', import.meta.url).pathname;

function wrk(port: number, seconds: number): number {
  const r = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, `http://127.0.0.1:${port}/v1/items/1`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  if (!(rps > 0)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return rps;
}

export async function benchReplay(): Promise<BenchResult> {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('bench/replay needs wrk (apt-get install -y wrk)');
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-'));
  const file = join(dir, 'gets.gor');
  const sep = Buffer.from('\n🐵🙈🙉\n');
  const t0 = 1_700_000_000_000_000_000n;
  const parts: Buffer[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    parts.push(Buffer.from(`1 ${i.toString(16).padStart(24, '0')} ${t0 + BigInt(i) * 1000n} -1\nGET /v1/items/${i} HTTP/1.1\r\nHost: api.internal\r\nUser-Agent: svc/1.0\r\nAccept: application/json\r\n\r\n`), sep);
  }
  writeFileSync(file, Buffer.concat(parts));
  const port = await freePort();
  const up: ChildProcess = fork(upstreamScript, [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((r) => up.once('message', r));
  try {
    const replayRuns: number[] = [];
    const wrkRuns: number[] = [];
    let heap = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const r = new Replayer({ target: `http://127.0.0.1:${port}`, speed: 'max', workers: CONNECTIONS });
      const s = await r.run([file]);
      if (s.answered !== REQUESTS) throw new Error(`replay answered ${s.answered} of ${REQUESTS}`);
      replayRuns.push(REQUESTS / (s.elapsedMs / 1000));
      heap = Math.max(heap, process.memoryUsage().heapUsed);
      wrkRuns.push(wrk(port, 3));
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const m = (name: string, runs: number[]): Measured => ({ name, opsPerSec: med(runs), mbPerSec: 0, medianMs: 1000 / med(runs), passesMs: runs.map((x) => 1000 / x) });
    const ratios = replayRuns.map((x, i) => x / wrkRuns[i]);
    return {
      name: `replay: ${REQUESTS} recorded GETs, ${CONNECTIONS} keep-alive connections, local Node server`,
      unit: 'requests/s',
      results: [m(`flowtap replay --speed max --workers ${CONNECTIONS}`, replayRuns), m(`wrk -t1 -c${CONNECTIONS}`, wrkRuns)],
      ratios: { 'flowtap replay / wrk': med(ratios), 'heap MB after a replay': Math.round(heap / 1e6) },
      targets: { 'flowtap replay / wrk': 0.5 },
    };
  } finally {
    up.kill();
  }
}
