/**
 * Gateways, one run: rest2dubbo's requests/s under wrk (POST /v1/getBook, 16 connections) against the Java
 * provider in test/java (skipped without a JDK and Hessian); the plugin proxy against a plain Node http
 * reverse proxy on the same upstream (wrk -c16, GET through each), ratio.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult, Measured } from './measure.js';
import { freePort, startChild } from './processes.js';

const here = new URL('./gateway/', import.meta.url).pathname;
const SECONDS = 4;

function wrk(url: string, script?: string): number {
  const r = spawnSync('wrk', ['-t1', '-c16', `-d${SECONDS}s`, ...(script ? ['-s', script] : []), url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (!(rps > 0) || non2xx > 0) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return rps;
}

const start = startChild;

export async function benchGateway(): Promise<BenchResult> {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('bench/gateway needs wrk (apt-get install -y wrk)');
  const kids: ChildProcess[] = [];
  const results: Measured[] = [];
  const ratios: Record<string, number> = {};
  const m = (name: string, rps: number): Measured => ({ name, opsPerSec: rps, mbPerSec: 0, medianMs: 1000 / rps, passesMs: [1000 / rps] });
  try {
    const up = await freePort();
    kids.push(await start(new URL('./proxy/upstream.mjs', import.meta.url).pathname, [up]));
    const plain = await freePort();
    kids.push(await start(join(here, 'plain-proxy.mjs'), [plain, up]));
    const pp = await freePort();
    kids.push(await start(join(here, 'plugin-proxy.mjs'), [pp, up]));
    const runs = { plain: [] as number[], plugin: [] as number[] };
    for (let round = 0; round < 2; round++) {
      runs.plain.push(wrk(`http://127.0.0.1:${plain}/hi/x`));
      runs.plugin.push(wrk(`http://127.0.0.1:${pp}/hi/x`));
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    results.push(m('plain Node http reverse proxy', med(runs.plain)), m('plugin proxy (router, balancer, access records)', med(runs.plugin)));
    ratios['plugin proxy / plain reverse proxy'] = med(runs.plugin) / med(runs.plain);

    const jar = '/usr/share/java/hessian.jar';
    if (existsSync(jar) && spawnSync('sh', ['-c', 'command -v javac']).status === 0) {
      const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-'));
      spawnSync('javac', ['-cp', jar, '-d', dir, new URL('../test/java/DubboPeer.java', import.meta.url).pathname]);
      const opens = ['java.lang', 'java.util', 'java.math', 'java.util.concurrent'].flatMap((p) => ['--add-opens', `java.base/${p}=ALL-UNNAMED`]);
      const java = spawn('java', [...opens, '-cp', `${jar}:${dir}`, 'DubboPeer', 'provider', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
      kids.push(java);
      const dubbo = await new Promise<number>((resolve) => java.stdout!.once('data', (d) => resolve(Number(/listening (\d+)/.exec(String(d))![1]))));
      const gw = await freePort();
      kids.push(await start(join(here, 'rest2dubbo.mjs'), [gw, dubbo]));
      const lua = join(dir, 'post.lua');
      writeFileSync(lua, 'wrk.method = "POST"\nwrk.body = \'{"id": "42"}\'\nwrk.headers["Content-Type"] = "application/json"\n');
      wrk(`http://127.0.0.1:${gw}/v1/getBook`, lua); // warm-up (JIT on both sides)
      results.push(m('rest2dubbo POST /v1/getBook → Java provider (4 Dubbo connections)', wrk(`http://127.0.0.1:${gw}/v1/getBook`, lua)));
    }
    return { name: 'gateways (wrk -t1 -c16)', unit: 'requests/s', results, ratios, targets: {} };
  } finally {
    for (const k of kids) k.kill();
  }
}
