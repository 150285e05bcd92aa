/** `flowtap dump --workers N` and TapCluster: several tap processes on one port, one set of sinks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TapCluster, type AnyRecord } from '../src/index.js';
import { cleanups, tempDir } from './tools.js';

const { closers, listen } = cleanups(afterEach);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const PLUGIN = new URL('../examples/plugins/opt-status.mjs', import.meta.url).pathname;

/** Start `flowtap dump ARGS`; resolves with the port it says it listens on. */
async function startDump(args: string[]): Promise<{ cli: ChildProcess; port: number; stderr: () => string }> {
  const cli = spawn('node', [CLI, 'dump', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  cli.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const port = await new Promise<number>((resolve, reject) => {
    cli.stderr!.on('data', () => { const m = /listening on [^:]+:(\d+)/.exec(err); if (m) resolve(Number(m[1])); });
    cli.on('exit', (c) => reject(new Error(`dump exited ${c}: ${err}`)));
  });
  return { cli, port, stderr: () => err };
}

const get = (port: number, path: string) => new Promise<{ code: number; body: string }>((resolve, reject) => {
  http.get({ port, host: '127.0.0.1', path, agent: false, headers: { authorization: 'Basic c2VjcmV0' } }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve({ code: res.statusCode!, body }));
  }).on('error', reject);
});

/** The pids of a process's children (the tap processes of a dump). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('flowtap dump --workers 2', () => {
  it('spreads connections over two processes; plugins, masking and the mirror run in each; one JSONL file gets every record; counts are summed', async () => {
    const upstream = await listen(http.createServer((q, s) => {
      q.resume();
      s.end(q.url === '/opt' ? '{"OPT_STATUS":"AUTH_HEADER_ERROR","DESCRIPTION":"bad token"}' : `you asked for ${q.url}`);
    }));
    const shadowSeen: string[] = [];
    const shadow = await listen(http.createServer((q, s) => { shadowSeen.push(q.url!); s.end('shadow'); }));
    const out = join(tempDir(), 'records.jsonl');
    const { cli, port, stderr } = await startDump(['--upstream', `127.0.0.1:${upstream}`, '--out', `jsonl:${out}`, '--workers', '2',
      '--plugin', PLUGIN, '--mirror', `http://127.0.0.1:${shadow}`]);
    expect(stderr()).toMatch(/\(2 processes\)/);
    expect(childrenOf(cli.pid!)).toHaveLength(2);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => get(port, i === 7 ? '/opt' : `/r${i}`)));
    expect(answers.filter((a) => a.code === 200)).toHaveLength(40);
    await new Promise((r) => setTimeout(r, 300)); // the mirror's copies
    cli.kill('SIGINT');
    const [code] = await once(cli, 'exit');
    expect(code, stderr()).toBe(0);
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.endpoint).sort()).toEqual(Array.from({ length: 40 }, (_, i) => (i === 7 ? '/opt' : `/r${i}`)).sort());
    // One connection per request, handed out round-robin: both processes took some, and ids never collide.
    const ids = records.map((r) => r.connectionId as string);
    expect(new Set(ids).size).toBe(40);
    const byProcess = new Map<string, number>();
    for (const id of ids) byProcess.set(id.split('-')[0], (byProcess.get(id.split('-')[0]) ?? 0) + 1);
    expect(byProcess.size).toBe(2);
    for (const n of byProcess.values()) expect(n).toBeGreaterThan(0);
    expect(records.every((r) => r.request.headers.authorization === '***')).toBe(true); // masked in the processes
    expect(records.find((r) => r.endpoint === '/opt')).toMatchObject({ code: 500, status: 'server_error', error: 'bad token', attributes: { op_stat: 'AUTH_HEADER_ERROR' } });
    expect(shadowSeen, stderr()).toHaveLength(40);
    // The mirror's counts, summed over both processes, in the one exit line.
    expect(stderr()).toMatch(new RegExp(`mirror http://127\\.0\\.0\\.1:${shadow}: 40 mirrored, 40 answered, 0 failed, 0 dropped`));
  }, 30_000);

  it('a tap process that dies is replaced and said so; the port keeps serving; the records it had sent are kept', async () => {
    const upstream = await listen(http.createServer((q, s) => { q.resume(); s.end('ok'); }));
    const out = join(tempDir(), 'records.jsonl');
    const { cli, port, stderr } = await startDump(['--upstream', `127.0.0.1:${upstream}`, '--out', `jsonl:${out}`, '--workers', '2']);
    const before = await Promise.all(Array.from({ length: 10 }, (_, i) => get(port, `/before${i}`)));
    expect(before.every((a) => a.code === 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // both processes have sent their records (batched for a few ms)
    const [victim] = childrenOf(cli.pid!);
    process.kill(victim, 'SIGKILL');
    for (let i = 0; i < 100 && !/a new one took its place/.test(stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(stderr()).toMatch(/tap process \d exited \(SIGKILL\); a new one took its place/);
    for (let i = 0; i < 100 && childrenOf(cli.pid!).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => get(port, `/after${i}`)));
    expect(after.every((a) => a.code === 200)).toBe(true);
    cli.kill('SIGINT');
    const [code] = await once(cli, 'exit');
    expect(code, stderr()).toBe(0);
    const endpoints = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).endpoint as string);
    // What the killed process had sent is kept (what it had not yet sent would be gone with it), and
    // everything after the kill was recorded.
    expect(endpoints.filter((e) => e.startsWith('/before')).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/before${i}`).sort());
    expect(endpoints.filter((e) => e.startsWith('/after')).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/after${i}`).sort());
  }, 30_000);

  it('a bad plugin or protocol is refused before listening, with the same words as one process', async () => {
    const bad = spawn('node', [CLI, 'dump', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--workers', '2', '--decode', 'nope'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    bad.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const [code] = await once(bad, 'exit');
    expect(code).toBe(2);
    expect(err).toMatch(/--decode: unknown protocol "nope"/);
  });
});

describe('TapCluster', () => {
  it('gives records as objects and as the JSON lines the processes wrote; a listener that throws is the user\'s error, and the others still get everything', async () => {
    const upstream = await listen(http.createServer((q, s) => { q.resume(); s.end('ok'); }));
    const c = new TapCluster({ workers: 2, proxy: { listen: { port: 0 }, upstream: { host: '127.0.0.1', port: upstream } } });
    const records: AnyRecord[] = [];
    const lines: string[] = [];
    const userErrors: string[] = [];
    c.on('record', (r) => records.push(r));
    c.on('lines', () => { throw new Error('my bug'); });
    c.on('lines', (text, count) => { const l = text.slice(0, -1).split('\n'); expect(l).toHaveLength(count); lines.push(...l); });
    c.on('userError', (e) => userErrors.push(e.message));
    const { port } = await c.listen();
    closers.push(() => c.close());
    await Promise.all(Array.from({ length: 10 }, (_, i) => get(port, `/l${i}`)));
    const stats = await c.refreshStats();
    expect(stats).toMatchObject({ workers: 2, connections: 10, records: 10, recordsDropped: 0 });
    expect(records.map((r) => r.endpoint).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/l${i}`).sort());
    expect(lines.map((l) => JSON.parse(l))).toEqual(records); // the same records, either way
    expect(userErrors.length).toBeGreaterThan(0);
    expect(userErrors.every((m) => m === 'a record callback threw: my bug')).toBe(true);
    expect(stats.userErrors).toBe(userErrors.length);
  }, 30_000);
});
