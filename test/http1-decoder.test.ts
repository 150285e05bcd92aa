import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { http1Decoder, type Http1Message } from '../src/index.js';
import { everySplit, randomSplits, rng } from './helpers.js';

type Event = Record<string, unknown>;

/** Decode chunks; return a plain event list (messages, errors, tunnel byte counts) for comparison. */
function decode(type: 'request' | 'response', chunks: Buffer[], opts: { methods?: string[]; end?: boolean;
  bodyCapture?: number; maxHeaderSize?: number; gapAfter?: number; gap?: number } = {}): Event[] {
  const events: Event[] = [];
  let tunnel = 0;
  let asked = 0;
  const d = http1Decoder({
    type,
    bodyCapture: opts.bodyCapture,
    maxHeaderSize: opts.maxHeaderSize,
    requestMethod: () => opts.methods?.[asked++],
    onMessage: (m: Http1Message) => events.push({
      method: m.method, target: m.target, status: m.statusCode, reason: m.reason, version: m.version,
      headers: { ...m.headers }, trailers: m.trailers ? { ...m.trailers } : null, bodySize: m.bodySize,
      body: m.body?.toString('latin1') ?? null, size: m.size, upgrade: m.upgrade, interim: m.interim,
      ...(m.missing ? { missing: m.missing } : {}),
    }),
    onError: (e) => events.push({ error: e.code }),
    onTunnel: (c) => { tunnel += c.length; },
  });
  chunks.forEach((c, i) => {
    d.write(c, i);
    if (opts.gapAfter === i) d.gap(opts.gap ?? 10, i);
  });
  if (opts.end) d.end(chunks.length);
  if (tunnel) events.push({ tunnel });
  return events;
}

/** The same events whole, at every single split, and one byte at a time (small inputs). */
function checkSplits(type: 'request' | 'response', text: string | Buffer, opts: Parameters<typeof decode>[2] = {}): Event[] {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const whole = decode(type, [buf], opts);
  for (const chunks of everySplit(buf)) expect(decode(type, chunks, opts)).toEqual(whole);
  return whole;
}

const req = (s: string) => s.replace(/\n/g, '\r\n');

describe('HTTP/1 decoder: requests', () => {
  it('pipelined requests with Content-Length and chunked bodies, trailers, exact wire sizes', () => {
    const a = req('GET /a?q=1 HTTP/1.1\nHost: x\n\n');
    const b = req('POST /b HTTP/1.1\nHost: x\nContent-Length: 5\n\n') + 'hello';
    const c = req('POST /c HTTP/1.1\nTransfer-Encoding: chunked\n\n5;ext=1\nhello\n6\n world\n0\nX-Sum: 42\n\n');
    const ev = checkSplits('request', a + b + c);
    expect(ev.map((e) => [e.method, e.target, e.bodySize, e.body, e.size])).toEqual([
      ['GET', '/a?q=1', 0, null, a.length],
      ['POST', '/b', 5, 'hello', b.length],
      ['POST', '/c', 11, 'hello world', c.length],
    ]);
    expect(ev[2].trailers).toEqual({ 'x-sum': '42' });
  });

  it('repeated headers become arrays; names are lower-cased', () => {
    const [m] = checkSplits('request', req('GET / HTTP/1.1\nCookie: a=1\nCOOKIE: b=2\nX-Y: z\n\n'));
    expect(m.headers).toEqual({ cookie: ['a=1', 'b=2'], 'x-y': 'z' });
  });

  it('header maps of messages whose names repeat are built from a template: same maps, and a record the user changes leaks into none', () => {
    const msgs: Http1Message[] = [];
    const d = http1Decoder({ type: 'request', onMessage: (m) => msgs.push(m) });
    const req = (names: [string, string][]) => `GET / HTTP/1.1\r\n${names.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const seq: [string, string][][] = [
      [['Host', 'a'], ['X-Id', '1']], [['Host', 'b'], ['X-Id', '2']], [['Host', 'c'], ['X-Id', '3']], // a template from the 2nd
      [['Host', 'd'], ['X-Id', '4'], ['X-Id', '5']], // a repeated name: an array, never a template
      [['Host', 'e'], ['X-Id', '6']], [['Host', 'f'], ['X-Id', '7']], [['Host', 'g'], ['X-Id', '8']],
      [['__proto__', 'p1']], [['__proto__', 'p2']], [['__proto__', 'p3']], // defined, never set: no template
      [['123', 'n1'], ['Host', 'h']], [['123', 'n2'], ['Host', 'i']], [['123', 'n3'], ['Host', 'j']],
    ];
    for (const [i, names] of seq.entries()) {
      d.write(Buffer.from(req(names)), i);
      // The user changes each map as it comes (a plugin, a mask): later messages must not see it.
      const m = msgs[msgs.length - 1].headers as Record<string, unknown>;
      m[`u${i}`] = 'by the user';
      delete m.host;
    }
    const u = (i: number) => ({ [`u${i}`]: 'by the user' });
    expect(msgs.map((m) => m.headers)).toEqual([
      { 'x-id': '1', ...u(0) }, { 'x-id': '2', ...u(1) }, { 'x-id': '3', ...u(2) },
      { 'x-id': ['4', '5'], ...u(3) },
      { 'x-id': '6', ...u(4) }, { 'x-id': '7', ...u(5) }, { 'x-id': '8', ...u(6) },
      ...['p1', 'p2', 'p3'].map((v, k) => JSON.parse(`{"__proto__":"${v}","u${7 + k}":"by the user"}`)),
      ...['n1', 'n2', 'n3'].map((v, k) => ({ 123: v, ...u(10 + k) })),
    ]);
    for (const [k, m] of msgs.slice(7, 10).entries()) {
      expect(Object.getPrototypeOf(m.headers)).toBe(Object.prototype);
      expect(Object.keys(m.headers)).toEqual(['__proto__', `u${7 + k}`]);
    }
    // Key order is the wire's (integer-like names first, as for any object), with or without the template.
    expect(msgs.slice(10).map((m) => Object.keys(m.headers))).toEqual([['123', 'u10'], ['123', 'u11'], ['123', 'u12']]);
    expect(msgs.slice(4, 7).map((m) => JSON.stringify(m.headers))).toEqual(['{"x-id":"6","u4":"by the user"}',
      '{"x-id":"7","u5":"by the user"}', '{"x-id":"8","u6":"by the user"}']);
  });

  it('a shape a connection keeps sending gets its maps from a compiled maker: the same maps, own keys, none shared; the same where code generation is disallowed', () => {
    // Runs in this process and in a Node that may not generate code from strings (the template copy then).
    const script = `
      const { http1Decoder } = await import(process.argv[1]);
      const maps = [];
      const d = http1Decoder({ type: 'request', onMessage: (m) => maps.push(m.headers) });
      const shapes = [['Host', 'X-Id', '123'], ['__proto__', 'X-Id'], ['Constructor', 'toString', 'X-Id', 'X-B']]; // counts differ: shapes are kept by count
      for (let i = 0; i < 40; i++) for (const names of shapes) {
        d.write(Buffer.from('GET / HTTP/1.1\\r\\n' + names.map((k) => k + ': ' + k.length + '-' + i + '\\r\\n').join('') + '\\r\\n'), i);
        maps[maps.length - 1].mine = i; // the user changes each map: no later one may see it
      }
      const protos = maps.every((m) => Object.getPrototypeOf(m) === Object.prototype);
      process.stdout.write(JSON.stringify({ maps: maps.map((m) => [Object.keys(m), m]), protos }));`;
    const run = (flags: string[]) => {
      const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script, new URL('../dist/index.js', import.meta.url).href],
        { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as { maps: [string[], Record<string, unknown>][]; protos: boolean };
    };
    const expected: [string[], Record<string, unknown>][] = [];
    for (let i = 0; i < 40; i++) {
      expected.push([['123', 'host', 'x-id', 'mine'], { 123: `3-${i}`, host: `4-${i}`, 'x-id': `4-${i}`, mine: i }]);
      expected.push([['__proto__', 'x-id', 'mine'], JSON.parse(`{"__proto__":"9-${i}","x-id":"4-${i}","mine":${i}}`)]);
      expected.push([['constructor', 'tostring', 'x-id', 'x-b', 'mine'], { constructor: `11-${i}`, tostring: `8-${i}`, 'x-id': `4-${i}`, 'x-b': `3-${i}`, mine: i }]);
    }
    for (const flags of [[], ['--disallow-code-generation-from-strings']]) {
      const got = run(flags);
      expect(got.protos).toBe(true);
      expect(got.maps).toEqual(JSON.parse(JSON.stringify(expected)));
    }
  });

  it('header shapes that alternate, share a count, or are many: every map as built from scratch', () => {
    const msgs: Http1Message[] = [];
    const d = http1Decoder({ type: 'request', maxHeaderSize: 64 * 1024, onMessage: (m) => msgs.push(m) });
    const small = [['Host', 'Accept'], ['Host', 'Accept', 'X-A'], ['Host', 'Cookie'], ['A', 'B', 'C']]; // two share a count
    const many = Array.from({ length: 9 }, (_, i) => Array.from({ length: 10 + i }, (__, k) => `H${i}-${k}`)); // more than are kept
    const big = Array.from({ length: 300 }, (_, k) => `Big-${k}`); // more headers than a shape holds
    const [ha, , hc] = small;
    const sequence = [ha, ha, hc, hc, hc, ha, ...small, ...small, ...small, ...small, ...many, big, big, big, ...small, ...small];
    const expected: Record<string, string>[] = [];
    let n = 0;
    for (const names of sequence) {
      const values = names.map(() => `v${n++}`);
      d.write(Buffer.from(`GET / HTTP/1.1\r\n${names.map((k, i) => `${k}: ${values[i]}\r\n`).join('')}\r\n`), n);
      expected.push(Object.fromEntries(names.map((k, i) => [k.toLowerCase(), values[i]])));
      (msgs[msgs.length - 1].headers as Record<string, unknown>).changed = true; // the user's, not the next map's
    }
    expect(msgs.map((m) => { const { changed, ...h } = m.headers as Record<string, unknown>; expect(changed).toBe(true); return h; })).toEqual(expected);
    expect(msgs.every((m) => Object.keys(m.headers).length === Object.keys(expected[msgs.indexOf(m)]).length + 1)).toBe(true);
  });

  it('more than 32 header pairs (llhttp slow path) keeps every header and the URL', () => {
    const lines = Array.from({ length: 45 }, (_, i) => `X-H${i}: v${i}`).join('\n');
    const [m] = checkSplits('request', req(`GET /many/headers?x=1 HTTP/1.1\n${lines}\n\n`));
    expect(Object.keys(m.headers as object)).toHaveLength(45);
    expect((m.headers as Record<string, string>)['x-h44']).toBe('v44');
    expect(m.target).toBe('/many/headers?x=1');
  });

  it('heads up to the configured size pass; larger ones are a parse error, then the next request decodes', () => {
    const big = 'a'.repeat(60 * 1024);
    const ok = decode('request', [Buffer.from(req(`GET / HTTP/1.1\nX-Big: ${big}\n\n`))]);
    expect(ok[0].method).toBe('GET');
    const tooBig = Buffer.from(req(`GET /1 HTTP/1.1\nX-Big: ${big}\n\nGET /2 HTTP/1.1\n\n`));
    const ev = decode('request', [tooBig], { maxHeaderSize: 1024 });
    expect(ev).toEqual([{ error: 'HPE_HEADER_OVERFLOW' }, expect.objectContaining({ target: '/2' })]);
  });

  it('an Upgrade request holds later bytes until the answer; refused → parsed as HTTP again', () => {
    const events: string[] = [];
    const d = http1Decoder({
      type: 'request',
      onMessage: (m) => events.push(`${m.method} ${m.target} upgrade=${m.upgrade}`),
      onTunnel: (c) => events.push(`tunnel ${c.length}`),
    });
    d.write(Buffer.from(req('GET /ws HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket\n\nGET /next HTTP/1.1\n\n')));
    expect(events).toEqual(['GET /ws upgrade=true']);
    d.upgradeAnswered(false);
    expect(events).toEqual(['GET /ws upgrade=true', 'GET /next upgrade=false']);

    const t: string[] = [];
    const d2 = http1Decoder({ type: 'request', onMessage: (m) => t.push(m.method!), onTunnel: (c) => t.push(`tunnel ${c.length}`) });
    d2.write(Buffer.from(req('CONNECT db:5432 HTTP/1.1\nHost: db:5432\n\n') + '\x00\x01\x02'));
    d2.upgradeAnswered(true);
    d2.write(Buffer.from('more'));
    expect(t).toEqual(['CONNECT', 'tunnel 3', 'tunnel 4']);
  });

  it('garbage becomes one error value, never a throw, and decoding resumes at the next request line', () => {
    const text = 'BLAH BLAH\r\n\x00\xff\x10garbage\r\n' + req('GET /after HTTP/1.1\n\n');
    const ev = checkSplits('request', text);
    expect(ev).toEqual([{ error: 'HPE_INVALID_METHOD' }, expect.objectContaining({ method: 'GET', target: '/after' })]);
  });

  it('a hole inside a Content-Length body is counted, not fatal: the message is whole, its loss said', () => {
    // The lost bytes were the rest of the body; the next segment starts the next request.
    const head = req('POST /x HTTP/1.1\nContent-Length: 100\n\n');
    const chunks = [Buffer.from(head + 'abc'), Buffer.from(req('GET /later HTTP/1.1\n\n'))];
    const ev = decode('request', chunks, { gapAfter: 0, gap: 97 });
    expect(ev).toEqual([expect.objectContaining({ target: '/x', bodySize: 100, body: 'abc', missing: 97, size: head.length + 100 }),
      expect.objectContaining({ target: '/later' })]);
  });

  it('a hole longer than the rest of the body: the message is whole, the rest of the hole is an error', () => {
    const chunks = [Buffer.from(req('POST /x HTTP/1.1\nContent-Length: 100\n\n') + 'abc'),
      Buffer.from(req('GET /later HTTP/1.1\n\n'))];
    const ev = decode('request', chunks, { gapAfter: 0, gap: 140 });
    expect(ev).toEqual([expect.objectContaining({ target: '/x', missing: 97 }), { error: 'gap' },
      expect.objectContaining({ target: '/later' })]);
  });

  it('a hole in a chunked body cannot be counted past: one error for that message; the next one decodes', () => {
    const chunks = [Buffer.from(req('POST /x HTTP/1.1\nTransfer-Encoding: chunked\n\n') + '10\r\nabc'),
      Buffer.from(req('GET /later HTTP/1.1\n\n'))];
    const ev = decode('request', chunks, { gapAfter: 0 });
    expect(ev).toEqual([{ error: 'gap' }, expect.objectContaining({ target: '/later' })]);
  });

  it('EOF inside a message is reported as truncated', () => {
    expect(decode('request', [Buffer.from(req('POST / HTTP/1.1\nContent-Length: 10\n\nabc'))], { end: true }))
      .toEqual([{ error: 'truncated' }]);
  });
});

describe('HTTP/1 decoder: responses', () => {
  it('1xx interim responses (100, 103) come before the final one', () => {
    const ev = checkSplits('response', req('HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </s.css>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n') + 'ok',
      { methods: ['POST'] });
    expect(ev.map((e) => [e.status, e.interim, e.bodySize])).toEqual([[100, true, 0], [103, true, 0], [200, false, 2]]);
  });

  it('HEAD responses carry no body even with Content-Length; 204 and 304 neither', () => {
    const text = req('HTTP/1.1 200 OK\nContent-Length: 1234\n\nHTTP/1.1 204 No Content\n\nHTTP/1.1 304 Not Modified\nContent-Length: 99\n\nHTTP/1.1 200 OK\nContent-Length: 3\n\n') + 'abc';
    const ev = checkSplits('response', text, { methods: ['HEAD', 'GET', 'GET', 'GET'] });
    expect(ev.map((e) => [e.status, e.bodySize])).toEqual([[200, 0], [204, 0], [304, 0], [200, 3]]);
    expect(ev.reduce((n, e) => n + (e.size as number), 0)).toBe(text.length);
  });

  it('close-delimited bodies complete at EOF', () => {
    const ev = checkSplits('response', req('HTTP/1.0 200 OK\nContent-Type: text/plain\n\n') + 'all of this until the close', { end: true });
    expect(ev).toEqual([expect.objectContaining({ status: 200, version: '1.0', bodySize: 27, body: 'all of this until the close' })]);
  });

  it('101 Switching Protocols and 2xx to CONNECT turn the rest into counted tunnel bytes', () => {
    const ws = checkSplits('response', req('HTTP/1.1 101 Switching Protocols\nConnection: Upgrade\nUpgrade: websocket\n\n') + '\x81\x05hello', { methods: ['GET'] });
    expect(ws).toEqual([expect.objectContaining({ status: 101, upgrade: true }), { tunnel: 7 }]);
    const conn = checkSplits('response', req('HTTP/1.1 200 Connection Established\n\n') + 'TLS bytes', { methods: ['CONNECT'] });
    expect(conn).toEqual([expect.objectContaining({ status: 200, upgrade: true }), { tunnel: 9 }]);
  });

  it('a 1 MiB chunked body streams at 200 random split sets; only the cap is kept; records identical', () => {
    const r = rng(7);
    const parts: string[] = [];
    let body = '';
    while (body.length < 1 << 20) {
      const n = 1 + Math.floor(r() * 9000);
      const piece = String.fromCharCode(97 + (body.length % 26)).repeat(n);
      parts.push(`${n.toString(16)}\r\n${piece}\r\n`);
      body += piece;
    }
    const text = Buffer.from(req('HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n') + parts.join('') + '0\r\n\r\n' +
      req('HTTP/1.1 404 Not Found\nContent-Length: 0\n\n'), 'latin1');
    const whole = decode('response', [text], { methods: ['GET', 'GET'], bodyCapture: 100 });
    expect(whole).toHaveLength(2);
    expect(whole[0]).toMatchObject({ status: 200, bodySize: body.length, body: body.slice(0, 100) });
    expect((whole[0].size as number) + (whole[1].size as number)).toBe(text.length);
    for (const chunks of randomSplits(text, 200, 11)) {
      expect(decode('response', chunks, { methods: ['GET', 'GET'], bodyCapture: 100 })).toEqual(whole);
    }
  });
});

describe('HTTP/1 decoder never throws', () => {
  it('survives 3000 seeded random and mutated inputs, each split randomly', () => {
    const r = rng(99);
    const seeds = [
      req('GET / HTTP/1.1\nHost: a\n\n'),
      req('POST /p HTTP/1.1\nTransfer-Encoding: chunked\n\n4\nabcd\n0\n\n'),
      req('HTTP/1.1 200 OK\nContent-Length: 3\n\nabc'),
    ];
    for (let i = 0; i < 3000; i++) {
      const base = Buffer.from(seeds[i % seeds.length]);
      const b = Buffer.from(base);
      const flips = 1 + Math.floor(r() * 6);
      for (let f = 0; f < flips; f++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const input = i % 5 === 0 ? Buffer.from(Array.from({ length: 1 + Math.floor(r() * 200) }, () => Math.floor(r() * 256))) : b;
      const type = i % 2 ? 'request' : 'response';
      const chunks = [...randomSplits(input.length > 1 ? input : Buffer.concat([input, input]), 1, i)][0];
      let events: Event[] = [];
      expect(() => { events = decode(type, chunks, { methods: ['GET'], end: true }); }).not.toThrow();
      // The llhttp adapter turns a throw inside its callbacks into an INTERNAL error value, so "no throw"
      // alone would pass with a broken decoder: bytes may be bad, our own callbacks may not fail.
      expect(events.filter((e) => e.error === 'INTERNAL'), `input ${i}`).toEqual([]);
    }
  });
});

describe('HTTP/1 decoder: several gaps in one message', () => {
  it('report one error for the message, not one per hole', () => {
    const events: string[] = [];
    const d = http1Decoder({ type: 'response', onMessage: (m) => events.push(String(m.statusCode)), onError: (e) => events.push(e.code) });
    d.write(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\nabc'));
    d.gap(1000); d.write(Buffer.from('body body')); d.gap(500); d.write(Buffer.from('more body'));
    d.write(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'));
    expect(events).toEqual(['gap', '204']);
  });

  it('holes in a Content-Length body add up; the message ends where its length says', () => {
    const events: string[] = [];
    const d = http1Decoder({ type: 'response', onMessage: (m) => events.push(`${m.statusCode} ${m.bodySize} ${m.missing ?? 0} ${m.body}`),
      onError: (e) => events.push(e.code) });
    d.write(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1521\r\n\r\nabc'));
    d.gap(1000); d.write(Buffer.from('body body')); d.gap(500); d.write(Buffer.from('more body'));
    d.write(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'));
    expect(events).toEqual(['200 1521 1500 abc', '204 0 0 null']);
  });
});

describe('HTTP/1 decoder input types', () => {
  it('plain Uint8Array chunks (not Buffers) decode the same, sizes included', () => {
    const text = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n';
    const out: string[] = [];
    const d = http1Decoder({ type: 'request', onMessage: (m) => out.push(`${m.target} ${m.size}`) });
    const bytes = new TextEncoder().encode(text);
    d.write(bytes.subarray(0, 20));
    d.write(bytes.subarray(20));
    expect(out).toEqual(['/a 28', '/b 19']);
  });
});
