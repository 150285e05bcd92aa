import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filter, map, mask, pipeline, rateLimit, sample, tee, type AnyRecord } from '../src/index.js';
import { JsonlSink } from '../src/sinks/index.js';
import { freePort, tempDir } from './tools.js';

function rec(i: number, extra: Record<string, unknown> = {}): AnyRecord {
  return {
    protocol: 'http1', client: { ip: '10.0.0.1', port: 1000 + i }, server: { ip: '10.0.0.2', port: 80 }, connectionId: String(i),
    startTime: i, endTime: i + 1, duration: 1, status: 'ok', code: 200, endpoint: `/e${i % 3}`, error: null,
    traceId: `t${i}`, spanId: null, xRequestId: null, requestSize: 10, responseSize: 10,
    request: { method: 'POST', headers: { authorization: 'Bearer secret', 'x-ok': 'fine' }, body: '{"user":"a","password":"p","nested":{"apiKey":"k","n":1}}', bodySize: 50 },
    response: { statusCode: 200, headers: { 'set-cookie': ['a=1', 'b=2'] }, bodySize: 0 },
    ...extra,
  } as unknown as AnyRecord; // a partial http1 record: the stages only look at what is here
}

describe('pipeline stages', () => {
  it('read top-down: filter, map, tee; the chain runs in order', () => {
    const seen: string[] = [];
    const out: AnyRecord[] = [];
    const handle = pipeline(
      filter((r) => r.endpoint !== '/e0'),
      map((r) => ({ ...r, endpoint: r.endpoint.toUpperCase() })),
      tee((r) => seen.push(r.endpoint)),
      tee((r) => out.push(r)),
    );
    for (let i = 0; i < 6; i++) handle(rec(i));
    expect(seen).toEqual(['/E1', '/E2', '/E1', '/E2']);
    expect(out).toHaveLength(4);
  });

  it('sample by a field is consistent: the same trace id is always kept or always dropped, at about the percentage', () => {
    const kept = new Set<string>();
    const handle = pipeline(sample({ percent: 25, by: 'traceId' }), tee((r) => kept.add(r.traceId!)));
    for (let i = 0; i < 4000; i++) handle(rec(i));
    const again = new Set<string>();
    const h2 = pipeline(sample({ percent: 25, by: 'traceId' }), tee((r) => again.add(r.traceId!)));
    for (let i = 0; i < 4000; i++) h2(rec(i));
    expect([...again]).toEqual([...kept]);
    expect(kept.size / 4000).toBeGreaterThan(0.2);
    expect(kept.size / 4000).toBeLessThan(0.3);
  });

  it('rateLimit passes at most N a second and counts the rest', () => {
    const counters = { dropped: 0 };
    let passed = 0;
    const handle = pipeline(rateLimit(100, counters), tee(() => { passed++; }));
    for (let i = 0; i < 1000; i++) handle(rec(i));
    expect(passed).toBeGreaterThanOrEqual(100);
    expect(passed).toBeLessThanOrEqual(102);
    expect(counters.dropped).toBe(1000 - passed);
  });

  it('mask hides authorization, cookies and password/token JSON fields, on a copy', () => {
    const original = rec(1);
    let masked: AnyRecord | undefined;
    pipeline(mask(), tee((r) => { masked = r; }))(original);
    const req = masked!.request as { headers: Record<string, string>; body: string };
    expect(req.headers).toEqual({ authorization: '***', 'x-ok': 'fine' });
    expect(JSON.parse(req.body)).toEqual({ user: 'a', password: '***', nested: { apiKey: '***', n: 1 } });
    expect((masked!.response as { headers: Record<string, unknown> }).headers['set-cookie']).toBe('***');
    expect((original.request as { headers: Record<string, string> }).headers.authorization).toBe('Bearer secret'); // untouched
    const dubbo = rec(2, { protocol: 'dubbo', request: { attachments: { token: 'abc', path: 'svc' } }, response: null });
    pipeline(mask(), tee((r) => { masked = r; }))(dubbo);
    expect((masked!.request as { attachments: object }).attachments).toEqual({ token: '***', path: 'svc' });
    // Decoded values carry field names too: a gRPC message decoded with its schema, Dubbo arguments.
    const message = { sku: 'A-1', customer_token: 'tok', lines: [{ qty: 2, password: 'p' }] };
    const grpc = rec(3, { protocol: 'grpc', request: { metadata: { authorization: 'Bearer x' }, message }, response: null });
    pipeline(mask(), tee((r) => { masked = r; }))(grpc);
    expect(masked!.request).toEqual({ metadata: { authorization: '***' }, message: { sku: 'A-1', customer_token: '***', lines: [{ qty: 2, password: '***' }] } });
    expect(message.customer_token).toBe('tok'); // the original is untouched
    const plain = rec(4, { protocol: 'grpc', request: { metadata: {}, message: { sku: 'B' } }, response: null });
    pipeline(mask(), tee((r) => { masked = r; }))(plain);
    expect(masked).toBe(plain); // nothing to mask: no copy
  });
});

describe('JSONL sink', () => {
  it('writes every record as one JSON line and flushes on close', async () => {
    const path = join(tempDir(), 'r.jsonl');
    const sink = new JsonlSink({ path, batchSize: 7 });
    for (let i = 0; i < 100; i++) sink.write(rec(i));
    await sink.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.connectionId)).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(sink.stats).toMatchObject({ accepted: 100, written: 100, dropped: 0 });
  });

  it('rotates by size, keeping the configured number of files', async () => {
    const path = join(tempDir(), 'r.jsonl');
    const sink = new JsonlSink({ path, batchSize: 10, rotateBytes: 20_000, keep: 2 });
    for (let i = 0; i < 300; i++) sink.write(rec(i));
    await sink.close();
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const f of [path, `${path}.1`, `${path}.2`]) expect(readFileSync(f).length).toBeLessThanOrEqual(20_000 + 2_000);
    const last = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(last[last.length - 1].connectionId).toBe('299');
  });

  it('blocks of lines (writeLines) are written as they are, whole lines per rotated file, and bound, batched and counted by their records', async () => {
    const path = join(tempDir(), 'b.jsonl');
    // Blocks of 1 to 300 lines, each line ~1 KB: most blocks are bigger than a write piece (32 KiB).
    const sink = new JsonlSink({ path, batchSize: 250, maxQueue: 1000, rotateBytes: 100_000, keep: 50, flushInterval: 60_000 });
    const sent: string[] = [];
    const block = (n: number) => {
      const lines = Array.from({ length: n }, (_, k) => JSON.stringify({ n: sent.length + k, pad: 'x'.repeat(1000) }));
      sent.push(...lines);
      return lines.join('\n') + '\n';
    };
    const drops: number[] = [];
    sink.on('drop', (n) => drops.push(n));
    sink.writeLines(block(300), 300);
    sink.writeLines(block(1), 1);
    sink.write(rec(0));
    sink.writeLine(JSON.stringify({ n: 'line' }));
    // The queue holds 303 records (four items); 697 more fit, so a block of 698 is dropped whole.
    expect(sink.stats).toMatchObject({ accepted: 303, queued: 303, dropped: 0 });
    const big = block(698);
    sink.writeLines(big, 698);
    expect(sink.stats).toMatchObject({ accepted: 303, queued: 303, dropped: 698 });
    expect(drops).toEqual([698]);
    sink.writeLines(block(248), 248);
    expect(sink.stats).toMatchObject({ accepted: 551, queued: 551 });
    const batches: number[] = [];
    sink.on('written', (n) => batches.push(n));
    await sink.close();
    expect(sink.stats).toMatchObject({ accepted: 551, written: 551, dropped: 698, queued: 0 });
    // By records, not items: the 300-line block alone (more than a batch), then three single ones (the
    // last block would take them past 250), then the last block.
    expect(batches).toEqual([300, 3, 248]);
    const files = [path, ...Array.from({ length: 50 }, (_, i) => `${path}.${i + 1}`)].filter(existsSync).reverse();
    expect(files.length).toBeGreaterThan(3);
    const text = files.map((f) => readFileSync(f, 'utf8'));
    for (const t of text) expect(t.endsWith('\n')).toBe(true); // whole lines in every file
    for (const t of text.slice(0, -1)) expect(t.length).toBeLessThanOrEqual(100_000 + 34_000);
    const got = text.join('').split('\n').slice(0, -1);
    const kept = [...sent.slice(0, 301), JSON.stringify(rec(0)), JSON.stringify({ n: 'line' }), ...sent.slice(301 + 698)];
    expect(got).toEqual(kept);
  });

  it('a file that fails (a full disk, a missing directory) fails its batches, never counts them written, and is opened again once it can be', async () => {
    const full = new JsonlSink({ path: '/dev/full', flushInterval: 5, backoff: 5, maxBackoff: 20, maxQueue: 20 });
    const errors: string[] = [];
    full.on('error', (e) => errors.push(e.message));
    for (let i = 0; i < 30; i++) full.write(rec(i));
    for (let i = 0; i < 100 && full.stats.failures < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(full.stats.failures).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toMatch(/ENOSPC/);
    await full.close();
    expect(full.stats).toMatchObject({ accepted: 20, written: 0, dropped: 10 + 20, queued: 0 });

    const dir = join(tempDir(), 'later');
    const path = join(dir, 'r.jsonl');
    const sink = new JsonlSink({ path, flushInterval: 5, backoff: 5, maxBackoff: 20 });
    sink.on('error', () => {});
    for (let i = 0; i < 5; i++) sink.write(rec(i));
    for (let i = 0; i < 100 && sink.stats.failures === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sink.stats).toMatchObject({ written: 0, queued: 5 });
    mkdirSync(dir); // the directory appears: the next attempt opens the file and writes the batch
    for (let i = 0; i < 200 && sink.stats.written < 5; i++) await new Promise((r) => setTimeout(r, 10));
    await sink.close();
    expect(sink.stats).toMatchObject({ accepted: 5, written: 5, dropped: 0 });
    expect(readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l).connectionId)).toEqual(['0', '1', '2', '3', '4']);
  });

  it('a full queue drops and counts instead of growing', () => {
    const sink = new JsonlSink({ path: join(tempDir(), 'r.jsonl'), maxQueue: 50, batchSize: 1000, flushInterval: 60_000 });
    const drops: number[] = [];
    sink.on('drop', (n) => drops.push(n));
    for (let i = 0; i < 200; i++) sink.write(rec(i));
    expect(sink.stats).toMatchObject({ accepted: 50, dropped: 150, queued: 50 });
    expect(drops).toEqual([1]); // one event per episode, not one per record
    return sink.close();
  });
});

/** `flowtap dump` with these arguments, in front of an upstream answering "hi"; `stop()` is SIGINT. */
async function startDump(args: string[], stdout: 'pipe' | number = 'pipe') {
  const upstream = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('hi')); });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const up = (upstream.address() as AddressInfo).port;
  const cli = spawn('node', [new URL('../dist/cli.js', import.meta.url).pathname, 'dump', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up}`, ...args],
    { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  let out = '';
  cli.stdout?.on('data', (d) => { out += d; });
  const port = await new Promise<number>((resolve, reject) => {
    cli.stderr!.on('data', (d) => { err += d; const m = /listening on [^:]+:(\d+)/.exec(err); if (m) resolve(Number(m[1])); });
    cli.on('exit', (c) => reject(new Error(`dump exited ${c}: ${err}`)));
  });
  const get = (path: string) => new Promise<void>((resolve) => http.get({ port, host: '127.0.0.1', path, headers: { authorization: 'Basic c2VjcmV0' } }, (res) => { res.resume(); res.on('end', resolve); }));
  const stop = async () => {
    cli.kill('SIGINT');
    const [code] = await once(cli, 'exit');
    upstream.close();
    return { code: code as number, stderr: err, stdout: out };
  };
  return { get, stop };
}

describe('flowtap dump', () => {
  it.each([[[]], [['--decode-inline']]])('proxies, writes records to the JSONL file (masked by default), and stops cleanly on SIGINT %j', async (extra: string[]) => {
    const out = join(tempDir(), 'dump.jsonl');
    const d = await startDump(['--out', `jsonl:${out}`, ...extra]);
    for (const path of ['/one', '/two']) await d.get(path);
    const { code } = await d.stop();
    expect(code).toBe(0);
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => [r.endpoint, r.code, r.request.headers.authorization])).toEqual([['/one', 200, '***'], ['/two', 200, '***']]);
  });

  it('an output file that cannot be opened is an error at once (exit 2), before any traffic', () => {
    const dir = tempDir();
    for (const [target, why] of [[join(dir, 'no/such/dir.jsonl'), 'its directory does not exist'], [dir, 'it is a directory']]) {
      const r = spawnSync('node', [new URL('../dist/cli.js', import.meta.url).pathname, 'dump', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9',
        '--out', `jsonl:${target}`], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`flowtap: --out jsonl:${target}: cannot open it for writing: ${why}\n`);
    }
  });

  // stdout, the default output: a pipe and a file (what `> records.jsonl` gives), in worker mode (where the
  // decoding thread opens stdout for itself) and inline.
  it.each([[[]], [['--decode-inline']]])('writes records to stdout, a pipe or a file, every line whole %j', async (extra: string[]) => {
    const piped = await startDump(extra);
    for (const path of ['/p1', '/p2', '/p3']) await piped.get(path);
    const p = await piped.stop();
    expect(p.code).toBe(0);
    expect(p.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l).endpoint)).toEqual(['/p1', '/p2', '/p3']);
    const file = join(tempDir(), 'redirected.jsonl');
    const fd = openSync(file, 'w');
    const redirected = await startDump(extra, fd);
    closeSync(fd);
    for (const path of ['/f1', '/f2']) await redirected.get(path);
    expect((await redirected.stop()).code).toBe(0);
    expect(readFileSync(file, 'utf8').split('\n').slice(0, -1).map((l) => JSON.parse(l).endpoint)).toEqual(['/f1', '/f2']);
  });

  // By default the decoding thread writes both outputs itself; inline, this thread does.
  it.each([[[]], [['--decode-inline']]])('an output that cannot be reached loses its records, says how many at the end (without its credentials), and the other output gets them all %j', async (extra: string[]) => {
    const out = join(tempDir(), 'dump.jsonl');
    const dead = await freePort();
    const d = await startDump(['--out', `es:http://elastic:s3cret@127.0.0.1:${dead}`, '--out', `jsonl:${out}`, ...extra]);
    for (const path of ['/one', '/two', '/three']) await d.get(path);
    const { code, stderr } = await d.stop();
    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(3);
    expect(stderr).toContain(`flowtap: es sink: `); // its failures, as they happened
    expect(stderr).toContain(`flowtap: es sink http://127.0.0.1:${dead}/: 3 records dropped (its queue was full, or they were not written before the end), 0 written`);
    expect(stderr).not.toContain('s3cret');
  }, 30_000);
});

describe('npm run demo', () => {
  it('runs the traffic-dump demo end to end: all three protocols recorded, errors and slow calls, secrets masked, exit 0', async () => {
    const out = join(tempDir(), 'records.jsonl');
    const root = new URL('..', import.meta.url).pathname;
    const p = spawn('node', ['--import', 'tsx', join(root, 'examples/traffic-dump/demo.ts')], { cwd: root, env: { ...process.env, FLOWTAP_DEMO_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.setEncoding('utf8');
    let stdout = '';
    p.stdout.on('data', (d) => { stdout += d; });
    const [code] = await once(p, 'exit');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ENDPOINT\s+CALLS\s+ERRORS\s+P50 ms\s+P99 ms$/m);
    expect(stdout).toMatch(/^http1\s+GET \/boom\s+3\s+3\s/m);
    expect(stdout).toMatch(/^dubbo\s+demo\.UserService\/updateUser\s+5\s+5\s/m);
    expect(stdout).toMatch(/^grpc\s+\/demo\.Inventory\/GetStock\s+24\s+4\s/m);
    expect(stdout).toMatch(/^grpc\s+\/demo\.Inventory\/Reserve\s+8\s+2\s/m);
    expect(stdout).toMatch(/136 exchanges recorded/);
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records).toHaveLength(136);
    expect(new Set(records.map((r) => r.protocol))).toEqual(new Set(['http1', 'dubbo', 'grpc']));
    for (const r of records) {
      if (r.protocol === 'http1') expect(r.request.headers.authorization).toBe('***');
      else if (r.protocol === 'dubbo') expect(r.request.attachments.token).toBe('***');
    }
    // gRPC: messages decoded with the service's .proto, a secret field masked, statuses as the client saw them.
    const grpc = records.filter((r) => r.protocol === 'grpc');
    const reserve = grpc.filter((r) => r.endpoint === '/demo.Inventory/Reserve');
    expect(reserve.map((r) => r.request.message.customer_token)).toEqual(Array(8).fill('***'));
    expect(reserve.filter((r) => r.code === 4).map((r) => r.request.message.sku)).toEqual(['SLOW-1', 'SLOW-1']); // DEADLINE_EXCEEDED
    const missing = grpc.filter((r) => r.code === 5);
    expect(missing.map((r) => r.response.grpcMessage).sort()).toEqual(['no such SKU: X-0', 'no such SKU: X-1', 'no such SKU: X-2', 'no such SKU: X-3']);
    const watch = grpc.filter((r) => r.endpoint === '/demo.Inventory/WatchStock');
    expect(watch.map((r) => [r.response.messages, r.response.message.warehouse])).toEqual(Array(3).fill([5, 'fra-1']));
    const post = records.find((r) => r.request.method === 'POST');
    expect(JSON.parse(post.request.body).password).toBe('***');
  }, 60_000);
});
