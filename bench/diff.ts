/**
 * Diff rate: the same recording (20k GETs of JSON answers) replayed alone to one server, and through the
 * three-way diff (each request to three servers at once, every answer decoded, compared field by field,
 * noise counted), one run. Servers are three Node processes answering the same JSON.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffRecordings } from '../dist/diff/index.js';
import { Replayer } from '../dist/replay/index.js';
import type { BenchResult, Measured } from './measure.js';
import { freePort } from './processes.js';

const REQUESTS = 20_000;
const upstreamScript = new URL('./proxy/upstream.mjs', import.meta.url).pathname;

export async function benchDiff(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-'));
  const file = join(dir, 'gets.gor');
  const sep = Buffer.from('\n🐵🙈🙉\n');
  const parts: Buffer[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    parts.push(Buffer.from(`1 ${i.toString(16).padStart(24, '0')} ${1_700_000_000_000_000_000n + BigInt(i) * 1000n} -1\nGET /v1/items/${i % 500} HTTP/1.1\r\nHost: api\r\nAccept: application/json\r\n\r\n`), sep);
  }
  writeFileSync(file, Buffer.concat(parts));
  const kids: ChildProcess[] = [];
  const urls: string[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const p = fork(upstreamScript, [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      kids.push(p);
      await new Promise((r) => p.once('message', r));
      urls.push(`http://127.0.0.1:${port}`);
    }
    const t0 = performance.now();
    const s = await new Replayer({ target: urls[0], speed: 'max', workers: 8 }).run([file]);
    const replayMs = performance.now() - t0;
    if (s.answered !== REQUESTS) throw new Error(`replay answered ${s.answered}`);
    const t1 = performance.now();
    const { report } = await diffRecordings([file], { primary: urls[0], secondary: urls[1], candidate: urls[2], replay: { workers: 8 } });
    const diffMs = performance.now() - t1;
    if (report.requests !== REQUESTS) throw new Error(`diff compared ${report.requests}`);
    const m = (name: string, ms: number): Measured => ({ name, opsPerSec: (REQUESTS / ms) * 1000, mbPerSec: 0, medianMs: ms, passesMs: [ms] });
    return {
      name: `diff: ${REQUESTS} recorded GETs, JSON answers, 8 connections per side`,
      unit: 'requests/s',
      results: [m('replay alone (one server)', replayMs), m('three-way diff (three servers, every answer compared)', diffMs)],
      ratios: { 'three-way diff / replay alone': replayMs / diffMs },
      targets: {},
    };
  } finally {
    for (const k of kids) k.kill();
  }
}
