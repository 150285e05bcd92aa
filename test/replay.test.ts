/** Record and replay: GoReplay's files and flags against real servers, on flowtap's decoders. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Replayer, readRecordings, type Payload } from '../src/replay/index.js';
import { recordThrough } from './taps.js';
import { captureSkipReason, cleanups, freePort, run, runAsync, tempDir } from './tools.js';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const { closers, listen } = cleanups(afterEach);
const SEP = Buffer.from('\n🐵🙈🙉\n');

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; raw: string[]; body: Buffer; at: number }

/** A Node http server that remembers every request it got, exactly. */
async function target(answer: (s: Seen) => { status?: number; body?: string } = () => ({})) {
  const seen: Seen[] = [];
  const server = http.createServer((q, s) => {
    const parts: Buffer[] = [];
    q.on('data', (d: Buffer) => parts.push(d));
    q.on('end', () => {
      const x: Seen = { method: q.method!, url: q.url!, headers: q.headers, raw: q.rawHeaders, body: Buffer.concat(parts), at: performance.now() };
      seen.push(x);
      const a = answer(x);
      s.statusCode = a.status ?? 200;
      s.end(a.body ?? `answer ${q.url}`);
    });
  });
  const port = await listen(server);
  return { seen, port, url: `http://127.0.0.1:${port}` };
}

function gor(type: 1 | 2 | 3, id: string, tsNs: bigint, payload: Buffer | string, latency = -1n): Buffer {
  return Buffer.concat([Buffer.from(`${type} ${id} ${tsNs} ${latency}\n`), Buffer.from(payload), SEP]);
}
const id = (n: number) => n.toString(16).padStart(24, '0');
const T0 = 1_700_000_000_000_000_000n;
const ms = (n: number) => BigInt(n) * 1_000_000n;

/** A strict reader written from the format in the issue, sharing no code with flowtap's. */
function strictGor(file: Buffer): { type: string; id: string; ts: string; latency: string; payload: Buffer }[] {
  const out = [];
  let at = 0;
  while (at < file.length) {
    const nl = file.indexOf(10, at);
    const meta = file.subarray(at, nl).toString('latin1');
    const m = /^([123]) ([0-9a-f]{24}) (\d+) (-1|\d+)$/.exec(meta);
    if (!m) throw new Error(`bad meta line at byte ${at}: ${JSON.stringify(meta)}`);
    const end = file.indexOf(SEP, nl + 1);
    if (end < 0) throw new Error('no separator');
    out.push({ type: m[1], id: m[2], ts: m[3], latency: m[4], payload: file.subarray(nl + 1, end) });
    at = end + SEP.length;
  }
  return out;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string, agent?: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port, path, method, headers, agent }, (r) => {
      let b = '';
      r.setEncoding('utf8').on('data', (d) => { b += d; }).on('end', () => resolve(b));
    });
    q.on('error', reject);
    q.end(body);
  });
}

describe('.gor files', () => {
  it('what flowtap records parses with a strict reader: meta lines, raw messages as on the wire, separators, shared ids', async () => {
    const up = await target();
    const dir = tempDir();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(() => agent.destroy());
    const { recorder: rec } = await recordThrough(join(dir, 'r.gor'), up.port, async (port) => {
      await get(port, '/a?x=1', { 'X-Mixed-Case': 'Value' }, 'GET', undefined, agent);
      await get(port, '/b', { 'content-type': 'text/plain' }, 'POST', 'the body', agent);
    });
    expect(rec.stats).toMatchObject({ exchanges: 2, payloads: 4, unrecordable: 0 });
    const p = strictGor(readFileSync(join(dir, 'r.gor')));
    expect(p.map((x) => x.type)).toEqual(['1', '2', '1', '2']);
    expect(p[0].id).toBe(p[1].id);
    expect(p[0].id).not.toBe(p[2].id);
    expect(p[0].latency).toBe('-1');
    expect(Number(p[1].latency)).toBeGreaterThan(0);
    expect(p[0].payload.toString()).toMatch(/^GET \/a\?x=1 HTTP\/1\.1\r\nX-Mixed-Case: Value\r\n/); // case and order kept
    expect(p[2].payload.toString()).toMatch(/\r\n\r\nthe body$/);
    expect(p[1].payload.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*answer \/a\?x=1$/);
    // Timestamps are Unix ns of now.
    expect(Math.abs(Number(BigInt(p[0].ts) / 1_000_000n) - Date.now())).toBeLessThan(60_000);
  });

  it('a hand-written .gor (binary and chunked bodies, two files, out-of-order timestamps, .gz) replays exactly', async () => {
    const up = await target();
    const dir = tempDir();
    const binary = Buffer.from([0, 1, 2, 255, 254, 10, 13, 10, 0x80]);
    const bin = Buffer.concat([Buffer.from(`POST /bin HTTP/1.1\r\nHost: rec\r\nContent-Length: ${binary.length}\r\n\r\n`), binary]);
    const chunked = 'POST /chunked HTTP/1.1\r\nHost: rec\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    // File one: timestamps 30, 10 (out of order), file two (gzipped): 20, 40.
    writeFileSync(join(dir, 'part-1.gor'), Buffer.concat([gor(1, id(3), T0 + ms(30), 'GET /third HTTP/1.1\r\nHost: rec\r\n\r\n'), gor(1, id(1), T0 + ms(10), bin)]));
    writeFileSync(join(dir, 'part-2.gor.gz'), gzipSync(Buffer.concat([gor(1, id(2), T0 + ms(20), chunked), gor(1, id(4), T0 + ms(40), 'GET /fourth HTTP/1.1\r\nHost: rec\r\n\r\n')])));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 'part-*'), '--target', up.url, '--allow-side-effects']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/replayed 4 of 4 requests/);
    expect(up.seen.map((s) => s.url)).toEqual(['/bin', '/chunked', '/third', '/fourth']); // by timestamp, across files
    expect(up.seen[0].body.equals(binary)).toBe(true);
    expect(up.seen[1].body.toString()).toBe('hello world');
    expect(up.seen[1].headers['transfer-encoding']).toBe('chunked');
    expect(up.seen.every((s) => s.headers.host === `127.0.0.1:${up.port}`)).toBe(true); // the target's Host, not "rec"
  });

  it("a separator inside a body cuts the record there, as GoReplay's reader does; the rest is skipped and reported", async () => {
    const dir = tempDir();
    const body = 'before\n🐵🙈🙉\nafter';
    writeFileSync(join(dir, 's.gor'), Buffer.concat([
      gor(1, id(1), T0, `POST /x HTTP/1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`),
      gor(1, id(2), T0 + ms(1), 'GET /next HTTP/1.1\r\n\r\n'),
    ]));
    const problems: string[] = [];
    const got = [];
    for await (const p of readRecordings([join(dir, 's.gor')], { onProblem: (_f, line, why) => problems.push(`${line}: ${why}`) })) got.push(p);
    expect(got.map((p) => p.raw!.toString())).toEqual([`POST /x HTTP/1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\nbefore`, 'GET /next HTTP/1.1\r\n\r\n']);
    expect(problems).toEqual([expect.stringMatching(/^7: not a payload meta line: "after\\n"/)]);
  });

  it('writes size-limited chunks with GoReplay name tokens, and .gz', async () => {
    const up = await target();
    const dir = tempDir();
    const { RecordingWriter } = await import('../src/replay/index.js');
    const w = new RecordingWriter(join(dir, 'traffic-%Y.gor.gz'), { sizeLimit: 200 });
    for (let i = 0; i < 5; i++) w.write({ type: 1, id: id(i), timestamp: T0 + ms(i), latency: -1n, protocol: 'http1', raw: Buffer.from(`GET /${i} HTTP/1.1\r\nHost: x\r\n${'X-Pad: '.padEnd(60, 'p')}\r\n\r\n`) });
    await w.close();
    const year = new Date().getFullYear();
    expect(w.files.map((f) => f.slice(dir.length + 1))).toEqual([0, 1, 2, 3, 4].map((n) => `traffic-${year}_${n}.gor.gz`));
    expect(strictGor(gunzipSync(readFileSync(w.files[0]))).map((p) => p.id)).toEqual([id(0)]);
    const r = await runAsync('node', [CLI, 'replay', join(dir, `traffic-${year}_*.gor.gz`), '--target', up.url, '--speed', 'max']);
    expect(r.status, r.stderr).toBe(0);
    expect(up.seen.map((s) => s.url)).toEqual(['/0', '/1', '/2', '/3', '/4']);
  });
});

describe('replay timing, rate, filters and rewrites', () => {
  it('--speed 200% halves the gaps, out-of-order timestamps never stall, --rate 50 holds the rate', async () => {
    const up = await target();
    const dir = tempDir();
    const lines = [0, 200, 400, 600].map((t, i) => gor(1, id(i), T0 + ms(t), `GET /t${t} HTTP/1.1\r\nHost: x\r\n\r\n`));
    // One request stamped before the first: it is sent at once, and nothing waits for the past.
    lines.push(gor(1, id(9), T0 - ms(5000), 'GET /early HTTP/1.1\r\nHost: x\r\n\r\n'));
    writeFileSync(join(dir, 't.gor'), Buffer.concat(lines));
    const started = performance.now();
    const r = await runAsync('node', [CLI, 'replay', join(dir, 't.gor'), '--target', up.url, '--speed', '200%']);
    expect(r.status, r.stderr).toBe(0);
    expect(up.seen.map((s) => s.url)).toEqual(['/early', '/t0', '/t200', '/t400', '/t600']);
    const gaps = up.seen.slice(2).map((s, i) => s.at - up.seen[i + 1].at);
    // 200 ms recorded, halved. The schedule is absolute, so one late send (a loaded machine) shortens the
    // next gap: each gap is held to "clearly halved" (not 0 as at max, not 200), their sum to 300 ms.
    for (const g of gaps) { expect(g).toBeGreaterThan(50); expect(g).toBeLessThan(160); }
    const total = gaps.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(300 - 15);
    expect(total).toBeLessThan(300 + 90);
    expect(performance.now() - started).toBeLessThan(5000); // the -5 s timestamp did not make it wait 5 s

    const rate = await target();
    writeFileSync(join(dir, 'many.gor'), Buffer.concat(Array.from({ length: 60 }, (_, i) => gor(1, id(i), T0, `GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`))));
    const r2 = await runAsync('node', [CLI, 'replay', join(dir, 'many.gor'), '--target', rate.url, '--speed', 'max', '--rate', '50']);
    expect(r2.status, r2.stderr).toBe(0);
    expect(rate.seen).toHaveLength(60);
    const span = rate.seen[59].at - rate.seen[0].at;
    // 60 requests at 50/s: 59 intervals of 20 ms.
    expect(span).toBeGreaterThan(59 * 20 * 0.9);
    expect(span).toBeLessThan(59 * 20 * 1.3);
  });

  it('filters and rewrites do what they say, in the documented order; a target path is a prefix, never a replacement', async () => {
    const up = await target();
    const dir = tempDir();
    const reqs = [
      'GET /api/users/1?fields=a HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\nUser-Agent: UA-1\r\n\r\n',
      'GET /api/users/2 HTTP/1.1\r\nHost: prod\r\nX-Tenant: other\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\n\r\n',
      'HEAD /api/users/3 HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\n\r\n',
      'GET /api/internal/4 HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\n\r\n',
      'DELETE /api/users/5 HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\n\r\n',
      'GET /api/users/6 HTTP/1.1\r\nHost: prod\r\nX-Tenant: acme\r\nX-Debug: 1\r\n\r\n',
    ];
    writeFileSync(join(dir, 'f.gor'), Buffer.concat(reqs.map((q, i) => gor(1, id(i), T0 + ms(i), q))));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 'f.gor'), '--target', `${up.url}/v2`, '--speed', 'max',
      '--allow-url', '^/api/', '--disallow-url', '/internal/', '--allow-method', 'GET', '--allow-method', 'HEAD', '--allow-method', 'DELETE',
      '--allow-header', 'X-Tenant: ^acme$', '--disallow-header', 'X-Debug: .',
      '--rewrite-url', '/users/([0-9]+):/people/$1', '--rewrite-header', 'User-Agent: UA-(\\d+),replayed-$1',
      '--set-header', 'X-Replayed: yes', '--set-param', 'src=replay']);
    expect(r.status, r.stderr).toBe(0);
    expect(up.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /v2/api/people/1?fields=a&src=replay', 'HEAD /v2/api/people/3?src=replay']);
    expect(up.seen[0].headers).toMatchObject({ 'user-agent': 'replayed-1', 'x-replayed': 'yes', host: `127.0.0.1:${up.port}`, 'x-tenant': 'acme' });
    // The DELETE passed every filter but is held back (side effects), and the summary says so.
    expect(r.stderr).toMatch(/held back 1 requests that may change state/);
    expect(r.stderr).toMatch(/not sent: 4 filtered, 0 sampled out/);
    const kept = await runAsync('node', [CLI, 'replay', join(dir, 'f.gor'), '--target', up.url, '--speed', 'max', '--allow-url', '^/health$', '--keep-host']);
    expect(kept.status, kept.stderr).toBe(0);
    expect(up.seen.at(-1)!.headers.host).toBe('prod');
  });

  it('--rate N% with --sample-by keeps or drops every request with the same header value together', async () => {
    const up = await target();
    const dir = tempDir();
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
    const reqs = users.flatMap((u, i) => [0, 1, 2].map((k) => gor(1, id(i * 3 + k), T0 + ms(i * 3 + k), `GET /${u}/${k} HTTP/1.1\r\nX-User: ${u}\r\n\r\n`)));
    writeFileSync(join(dir, 's.gor'), Buffer.concat(reqs));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 's.gor'), '--target', up.url, '--speed', 'max', '--rate', '50%', '--sample-by', 'header:X-User']);
    expect(r.status, r.stderr).toBe(0);
    const byUser = new Map<string, number>();
    for (const s of up.seen) byUser.set(String(s.headers['x-user']), (byUser.get(String(s.headers['x-user'])) ?? 0) + 1);
    expect([...byUser.values()].every((n) => n === 3)).toBe(true); // all three of a user, or none
    expect(byUser.size).toBeGreaterThan(8);
    expect(byUser.size).toBeLessThan(32);
  });
});

describe('replay connections and the typed hook', () => {
  it('--sessions reproduces the original connections: each one\'s requests on one connection of its own, in order', async () => {
    const sockets = new Map<string, string[]>();
    const server = http.createServer((q, s) => {
      const key = `${q.socket.remotePort}`;
      sockets.set(key, [...(sockets.get(key) ?? []), q.url!]);
      s.end('ok');
    });
    const port = await listen(server);
    const dir = tempDir();
    const { encodeFtr, FTR_HEADER } = await import('../src/replay/index.js');
    // Two original connections, interleaved in time.
    const lines = [FTR_HEADER + '\n'];
    for (let i = 0; i < 6; i++) {
      const conn = i % 2 === 0 ? '10.0.0.1:1111 1' : '10.0.0.2:2222 2';
      lines.push(encodeFtr({ type: 1, id: id(i), timestamp: T0 + ms(i), latency: -1n, protocol: 'http1', connection: conn,
        raw: Buffer.from(`GET /${conn.slice(0, 8)}/${i} HTTP/1.1\r\nHost: x\r\n\r\n`) }));
    }
    writeFileSync(join(dir, 's.ftr'), lines.join(''));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 's.ftr'), '--target', `http://127.0.0.1:${port}`, '--speed', 'max', '--sessions']);
    expect(r.status, r.stderr).toBe(0);
    expect([...sockets.values()].sort()).toEqual([['/10.0.0.1/0', '/10.0.0.1/2', '/10.0.0.1/4'], ['/10.0.0.2/1', '/10.0.0.2/3', '/10.0.0.2/5']]);
  });

  it('replay({ transform }): the hook edits requests in place and drops those it returns false for', async () => {
    const up = await target();
    const dir = tempDir();
    writeFileSync(join(dir, 'h.gor'), Buffer.concat(['/a', '/b', '/c'].map((p, i) => gor(1, id(i), T0 + ms(i), `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`))));
    const s = await new Replayer({
      target: up.url, speed: 'max',
      transform(req) {
        if (req.target() === '/b') return false;
        req.setHeader('X-Hook', req.target());
      },
    }).run([join(dir, 'h.gor')]);
    expect(s).toMatchObject({ sent: 2, answered: 2, filtered: 1 });
    expect(up.seen.map((x) => [x.url, x.headers['x-hook']])).toEqual([['/a', '/a'], ['/c', '/c']]);
  });
});

describe('middleware (GoReplay protocol)', () => {
  // Written from the protocol in the issue: hex lines in, hex lines out; no flowtap code.
  const script = `
    const rl = require('readline').createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      const buf = Buffer.from(line, 'hex');
      const nl = buf.indexOf(10);
      const meta = buf.subarray(0, nl).toString();
      let payload = buf.subarray(nl + 1).toString('latin1');
      if (meta[0] !== '1') return;                         // responses: nothing to pass on
      if (payload.startsWith('GET /drop-me ')) return;     // drop: do not write it back
      if (payload.startsWith('GET /tag-me ')) payload = payload.replace('\\r\\n', '\\r\\nX-Middleware: tagged\\r\\n');
      process.stdout.write(Buffer.concat([Buffer.from(meta + '\\n'), Buffer.from(payload, 'latin1')]).toString('hex') + '\\n');
    });`;

  it('a middleware that drops one request and rewrites another: both take effect', async () => {
    const up = await target();
    const dir = tempDir();
    writeFileSync(join(dir, 'mw.cjs'), script);
    writeFileSync(join(dir, 'm.gor'), Buffer.concat(['/keep', '/drop-me', '/tag-me'].map((p, i) => gor(1, id(i), T0 + ms(i), `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`))));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 'm.gor'), '--target', up.url, '--speed', 'max', '--middleware', `node ${join(dir, 'mw.cjs')}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(up.seen.map((s) => s.url).sort()).toEqual(['/keep', '/tag-me']);
    expect(up.seen.find((s) => s.url === '/tag-me')!.headers['x-middleware']).toBe('tagged');
    expect(r.stderr).toMatch(/dropped by the middleware: 1/);
  });

  it('a middleware that exits: one clear line, exit 1, nothing replayed twice', async () => {
    const up = await target();
    const dir = tempDir();
    writeFileSync(join(dir, 'die.cjs'), `let n = 0; require('readline').createInterface({ input: process.stdin }).on('line', (l) => { if (++n > 2) process.exit(3); process.stdout.write(l + '\\n'); });`);
    writeFileSync(join(dir, 'm.gor'), Buffer.concat(Array.from({ length: 6 }, (_, i) => gor(1, id(i), T0 + ms(i * 50), `GET /m${i} HTTP/1.1\r\n\r\n`))));
    const r = await runAsync('node', [CLI, 'replay', join(dir, 'm.gor'), '--target', up.url, '--middleware', `node ${join(dir, 'die.cjs')}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/stopped: middleware "node .*die.cjs" exited \(code 3\); nothing was sent twice/);
    expect(up.seen.map((s) => s.url)).toEqual(['/m0', '/m1']);
  });
});

describe('bad input', () => {
  it('a file that is neither .gor nor a recording, a truncated record, a target that refuses: one line each, exit status as documented', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'junk.gor'), 'this is not a recording\n');
    const junk = await runAsync('node', [CLI, 'replay', join(dir, 'junk.gor'), '--target', 'http://127.0.0.1:1']);
    expect(junk.status).toBe(2);
    expect(junk.stderr).toBe(`flowtap: ${join(dir, 'junk.gor')}: neither a .gor file nor a flowtap recording (it starts with "this is not a recording\\n")\n`);
    const missing = await runAsync('node', [CLI, 'replay', join(dir, 'nope.gor'), '--target', 'http://127.0.0.1:1']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`flowtap: cannot read ${join(dir, 'nope.gor')}: no such file\n`);

    const up = await target();
    const whole = gor(1, id(1), T0, 'GET /whole HTTP/1.1\r\n\r\n');
    writeFileSync(join(dir, 'cut.gor'), Buffer.concat([whole, gor(1, id(2), T0 + ms(1), 'GET /cut HTTP/1.1\r\n\r\n').subarray(0, 40)]));
    const cut = await runAsync('node', [CLI, 'replay', join(dir, 'cut.gor'), '--target', up.url]);
    expect(cut.status, cut.stderr).toBe(0);
    expect(cut.stderr).toMatch(/cut\.gor:6: the file ends inside a record \(no separator after it\) \(skipped\)/);
    expect(up.seen.map((s) => s.url)).toEqual(['/whole']);

    const dead = await freePort();
    writeFileSync(join(dir, 'three.gor'), Buffer.concat([1, 2, 3].map((i) => gor(1, id(i), T0 + ms(i), `GET /${i} HTTP/1.1\r\n\r\n`))));
    const refused = await runAsync('node', [CLI, 'replay', join(dir, 'three.gor'), '--target', `http://127.0.0.1:${dead}`, '--speed', 'max']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`failed: 3 × 127\\.0\\.0\\.1:${dead}: connection refused`));
    expect(refused.stderr).toMatch(/replayed 3 of 3 requests .*: 0 answered, 3 failed/);

    const badFlag = await runAsync('node', [CLI, 'replay', join(dir, 'three.gor'), '--target', up.url, '--speed', 'fast']);
    expect(badFlag.status).toBe(2);
    expect(badFlag.stderr.split('\n')[0]).toBe('flowtap: --speed takes 200%, 2x, 0.5x or max, not "fast"');
  });
});

describe('outputs that cannot be written', () => {
  it('a missing directory or a directory as the file: exit 2 at once, for record -o, replay --out and --records', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'one.gor'), gor(1, id(1), T0, 'GET /one HTTP/1.1\r\n\r\n'));
    const cases: [string[], string][] = [
      [['record', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '-o', join(dir, 'no/x.gor'), '--duration', '5'], `flowtap: -o ${join(dir, 'no/x.gor')}: ${join(dir, 'no')}: no such directory\n`],
      [['record', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '-o', dir, '--duration', '5'], `flowtap: -o ${dir}: ${dir} is a directory\n`],
      [['replay', join(dir, 'one.gor'), '--target', 'http://127.0.0.1:9', '--out', join(dir, 'no/out.gor')], `flowtap: --out ${join(dir, 'no/out.gor')}: ${join(dir, 'no')}: no such directory\n`],
      [['replay', join(dir, 'one.gor'), '--target', 'http://127.0.0.1:9', '--records', `jsonl:${join(dir, 'no/r.jsonl')}`], `flowtap: --records jsonl:${join(dir, 'no/r.jsonl')}: cannot open it for writing: its directory does not exist\n`],
    ];
    for (const [args, stderr] of cases) {
      const r = await runAsync('node', [CLI, ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(stderr);
    }
  });

  it('a recording whose disk fills (/dev/full) through the proxy: traffic goes on untouched, the loss is said, exit 1', async () => {
    const up = await target();
    const port = await freePort();
    const cli = runAsync('node', [CLI, 'record', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${up.port}`, '-o', '/dev/full', '--duration', '3']);
    let answers: string[] = [];
    for (let i = 0; i < 100 && answers.length === 0; i++) {
      answers = await Promise.all([1, 2, 3, 4, 5].map((k) => get(port, `/${k}`))).catch(() => []);
      if (answers.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(answers).toEqual([1, 2, 3, 4, 5].map((k) => `answer /${k}`));
    const r = await cli;
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/exchanges seen for \/dev\/full; the recording is incomplete: cannot write \/dev\/full: ENOSPC[^\n]*\(\d+ payloads after that were not written\)\n$/);

    // replay --out the same: every request still sent and answered, the output's loss said, exit 1.
    const dir = tempDir();
    writeFileSync(join(dir, 'three.gor'), Buffer.concat([1, 2, 3].map((i) => gor(1, id(i), T0 + ms(i), `GET /r${i} HTTP/1.1\r\n\r\n`))));
    const rep = await runAsync('node', [CLI, 'replay', join(dir, 'three.gor'), '--target', up.url, '--speed', 'max', '--out', '/dev/full']);
    expect(rep.status).toBe(1);
    expect(rep.stderr).toMatch(/replayed 3 of 3 requests .*: 3 answered, 0 failed/);
    expect(rep.stderr).toMatch(/flowtap: --out is incomplete: cannot write \/dev\/full: ENOSPC[^\n]*\(\d+ payloads after that were not written\)\n/);
    expect(up.seen.map((x) => x.url).filter((u) => u.startsWith('/r'))).toEqual(['/r1', '/r2', '/r3']);
  }, 20_000);
});

describe('record, then replay through the API, with type-3 output', () => {
  it('Replayer: each request once, answers as records and type-3 payloads paired with their ids', async () => {
    const before = await target();
    const dir = tempDir();
    await recordThrough(join(dir, 'api.ftr'), before.port, async (port) => {
      for (let i = 0; i < 20; i++) await get(port, `/item/${i}`, { 'x-n': String(i) });
    });
    const after = await target((s) => ({ status: s.url.endsWith('/13') ? 503 : 200, body: `v2 ${s.url}` }));
    const replayer = new Replayer({ target: after.url, speed: 'max', workers: 4, out: join(dir, 'out.ftr') });
    const records: string[] = [];
    replayer.on('record', (r) => records.push(`${r.endpoint} ${r.code}`));
    const s = await replayer.run([join(dir, 'api.ftr')]);
    expect(s).toMatchObject({ requests: 20, sent: 20, answered: 20, failed: 0, byCode: { '2xx': 19, '5xx': 1 } });
    expect(after.seen.map((x) => x.url).sort()).toEqual(before.seen.map((x) => x.url).sort()); // each once
    expect(records).toHaveLength(20);
    const out: Payload[] = [];
    for await (const p of readRecordings([join(dir, 'out.ftr')])) out.push(p);
    const types = (t: number) => out.filter((p) => p.type === t);
    expect(types(1)).toHaveLength(20);
    expect(types(2)).toHaveLength(20);
    expect(types(3)).toHaveLength(20);
    const ids = new Set(types(1).map((p) => p.id));
    expect(types(3).every((p) => ids.has(p.id))).toBe(true);
    expect(types(3).find((p) => p.raw!.toString().includes('v2 /item/13'))!.raw!.toString()).toMatch(/^HTTP\/1\.1 503 /);
  });

  const skip = captureSkipReason();
  it.skipIf(skip !== null)(`live capture: flowtap record -i lo --port P, then replay; libpcap's drop counts printed${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    const up = await target();
    const dir = tempDir();
    const rec = runAsync('node', [CLI, 'record', '-i', 'lo', '--port', String(up.port), '-o', join(dir, 'live.gor'), '--duration', '3']);
    await new Promise((r) => setTimeout(r, 1200));
    for (let i = 0; i < 10; i++) await get(up.port, `/live/${i}`);
    const done = await rec;
    expect(done.status, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/flowtap: 10 exchanges recorded to .*live\.gor/);
    expect(done.stderr).toMatch(/flowtap: tcpdump: \d+ packets captured, \d+ received by filter, 0 dropped by kernel/);
    const again = await target();
    const r = await runAsync('node', [CLI, 'replay', join(dir, 'live.gor'), '--target', again.url, '--speed', 'max']);
    expect(r.status, r.stderr).toBe(0);
    expect(again.seen.map((s) => s.url).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/live/${i}`).sort());
  });

  const httpv1 = new URL('../../shared/conformance/deepflow/httpv1.pcap', import.meta.url).pathname;
  it.skipIf(!existsSync(httpv1))('record --pcap: a capture file (DeepFlow httpv1.pcap) to .gor, the request and response as captured', async () => {
    const dir = tempDir();
    const r = await runAsync('node', [CLI, 'record', '--pcap', httpv1, '-o', join(dir, 'c.gor')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/flowtap: 1 exchanges recorded to .*c\.gor\n/);
    const p = strictGor(readFileSync(join(dir, 'c.gor')));
    expect(p.map((x) => x.type)).toEqual(['1', '2']);
    expect(p[0].payload.toString('latin1')).toMatch(/^POST \/query\?1590632942 HTTP\/1\.1\r\nHost: rq\.cct\.cloud\.duba\.net\r\n/);
    expect(p[0].payload.length).toBe(231); // the record's requestSize: every byte of it
    expect(p[1].payload.length).toBe(227);
    expect(Number(p[0].ts) / 1e6).toBeCloseTo(1590632942971.698, 0);
  });

  it('record: one clear sentence when tcpdump is missing or the interface does not exist', () => {
    const r = run('node', [CLI, 'record', '-i', 'no-such-if0', '--port', '80', '-o', join(tempDir(), 'x.gor'), '--duration', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^flowtap: (tcpdump: .*no-such-if0|tcpdump is not installed|no permission to capture)/);
  });
});
