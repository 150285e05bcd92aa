import { describe, expect, it } from 'vitest';
import { Conversation, type ExchangeRecord, type Http1Record } from '../src/index.js';
import { traceContext, lowerCaseLookup, anyCaseLookup } from '../src/codecs/index.js';
import { withOptions } from '../src/pipeline/options.js';
import { spawnSync } from 'node:child_process';

const crlf = (s: string) => s.replace(/\n/g, '\r\n');

function conversation(opts: Partial<ConstructorParameters<typeof Conversation>[0]> = {}) {
  const records: Http1Record[] = [];
  const c = new Conversation({
    client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 80 }, connectionId: 'c1',
    onRecord: (r: ExchangeRecord) => records.push(r as Http1Record), ...opts,
  });
  return { c, records };
}

describe('HTTP/1 pairing into exchange records', () => {
  it('pairs pipelined requests with responses in order, with sizes, timing, status classes', () => {
    const { c, records } = conversation();
    const parts = ['GET /a?x=1 HTTP/1.1\nHost: svc\n\n', 'GET /b HTTP/1.1\nHost: svc\n\n', 'HEAD /c HTTP/1.1\nHost: svc\n\n'].map(crlf);
    c.write('client', Buffer.from(parts.join('')), 1000);
    c.write('server', Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 2\n\nok')), 1010);
    c.write('server', Buffer.from(crlf('HTTP/1.1 404 Not Found\nContent-Length: 0\n\nHTTP/1.1 503 Busy\nContent-Length: 100\n\n')), 1025);
    expect(records.map((r) => [r.endpoint, r.request.target, r.code, r.status, r.duration, r.requestSize])).toEqual([
      ['/a', '/a?x=1', 200, 'ok', 10, parts[0].length],
      ['/b', '/b', 404, 'client_error', 25, parts[1].length],
      ['/c', '/c', 503, 'server_error', 25, parts[2].length], // HEAD: Content-Length 100 but no body follows
    ]);
    expect(records[0]).toMatchObject({
      protocol: 'http1', connectionId: 'c1', startTime: 1000, endTime: 1010, responseSize: 40,
      request: { method: 'GET', host: 'svc', version: '1.1', bodySize: 0 },
      response: { statusCode: 200, reason: 'OK', bodySize: 2, body: 'ok' },
    });
  });

  it('Expect: 100-continue: the 100 arrives before the body and is listed as interim', () => {
    const { c, records } = conversation();
    c.write('client', Buffer.from(crlf('PUT /up HTTP/1.1\nExpect: 100-continue\nContent-Length: 4\n\n')), 1);
    c.write('server', Buffer.from(crlf('HTTP/1.1 100 Continue\n\n')), 2);
    c.write('client', Buffer.from('data'), 3);
    c.write('server', Buffer.from(crlf('HTTP/1.1 201 Created\nContent-Length: 0\n\n')), 4);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ code: 201, status: 'ok', request: { bodySize: 4, body: 'data' }, response: { interim: [100] } });
  });

  it('an accepted WebSocket upgrade is reported, then tunnel bytes are counted, not decoded', () => {
    const { c, records } = conversation();
    c.write('client', Buffer.from(crlf('GET /chat HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket\n\n') + 'early'), 1);
    c.write('server', Buffer.from(crlf('HTTP/1.1 101 Switching Protocols\nConnection: Upgrade\nUpgrade: websocket\n\n') + 'frame'), 2);
    c.write('client', Buffer.from('GET /not-http HTTP/1.1\r\n\r\n'), 3);
    expect(records.map((r) => r.code)).toEqual([101]);
    expect(c.tunnelBytes).toEqual({ client: 5 + 26, server: 5 });
  });

  it('a refused upgrade keeps decoding HTTP/1 on both sides', () => {
    const { c, records } = conversation();
    c.write('client', Buffer.from(crlf('GET / HTTP/1.1\nConnection: Upgrade\nUpgrade: h2c\n\nGET /2 HTTP/1.1\n\n')), 1);
    c.write('server', Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 0\n\nHTTP/1.1 200 OK\nContent-Length: 0\n\n')), 2);
    expect(records.map((r) => r.request.target)).toEqual(['/', '/2']);
  });

  it('unanswered requests time out; a late answer is absorbed, the next exchange still pairs', () => {
    const { c, records } = conversation();
    c.write('client', Buffer.from(crlf('GET /slow HTTP/1.1\n\n')), 1000);
    c.expire(1000 + 1); // everything that started before 1001 and is unanswered times out
    expect(records).toMatchObject([{ endpoint: '/slow', status: 'timeout', response: null, endTime: null, code: null }]);
    c.write('server', Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 0\n\n')), 5000);
    c.write('client', Buffer.from(crlf('GET /next HTTP/1.1\n\n')), 6000);
    c.write('server', Buffer.from(crlf('HTTP/1.1 204 No Content\n\n')), 6001);
    expect(records.map((r) => [r.endpoint, r.status, r.code])).toEqual([['/slow', 'timeout', null], ['/next', 'ok', 204]]);
  });

  it('a request left open at close is a timeout record; a malformed request is a parse_error paired with its 400', () => {
    const a = conversation();
    a.c.write('client', Buffer.from(crlf('GET /never HTTP/1.1\n\n')), 1);
    a.c.close(2);
    expect(a.records).toMatchObject([{ status: 'timeout', response: null }]);

    const b = conversation({ protocol: 'http1' });
    b.c.write('client', Buffer.from('GET / HTTP/1.1\r\nBad Header\r\n\r\n'), 1);
    b.c.write('server', Buffer.from(crlf('HTTP/1.1 400 Bad Request\nContent-Length: 0\nConnection: close\n\n')), 2);
    expect(b.records).toHaveLength(1);
    expect(b.records[0]).toMatchObject({ status: 'parse_error', code: 400 });
    expect(b.records[0].error).toMatch(/^request HPE_/);
  });

  it('bodies: UTF-8 text as is (a cut character is dropped), binary as base64, full size always', () => {
    const { c, records } = conversation({ bodyCapture: 5 });
    c.write('client', Buffer.concat([Buffer.from(crlf('POST / HTTP/1.1\nContent-Length: 7\n\n')), Buffer.from('aaaé€', 'utf8').subarray(0, 7)]), 1);
    c.write('server', Buffer.concat([Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 4\n\n')), Buffer.from([0xff, 0, 1, 2])]), 2);
    expect(records[0].request).toMatchObject({ bodySize: 7, body: 'aaaé' });
    expect(records[0].response).toMatchObject({ bodySize: 4, body: Buffer.from([0xff, 0, 1, 2]).toString('base64'), bodyEncoding: 'base64' });
  });

  it('trace ids, x-request-id and x-forwarded-for come from the request headers', () => {
    const { c, records } = conversation({ traceKeys: ['X-My-Trace'] });
    c.write('client', Buffer.from(crlf('GET / HTTP/1.1\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nX-Request-Id: rid-1\nX-Forwarded-For: 1.2.3.4\nX-Forwarded-For: 5.6.7.8\n\n')), 1);
    c.write('client', Buffer.from(crlf('GET /2 HTTP/1.1\nX-My-Trace: custom-1\nX-Real-IP: 9.9.9.9\n\n')), 1);
    c.write('server', Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 0\n\nHTTP/1.1 200 OK\nContent-Length: 0\n\n')), 2);
    expect(records[0]).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', xRequestId: 'rid-1', forwardedFor: '1.2.3.4, 5.6.7.8' });
    expect(records[1]).toMatchObject({ traceId: 'custom-1', spanId: null, forwardedFor: '9.9.9.9' });
  });

  it('detects HTTP/1 from either side; bytes no protocol claims are left undecoded', () => {
    const { c, records } = conversation();
    c.write('client', Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), 1);
    c.write('server', Buffer.from('\x16\x03\x03\x00\x5a\x02\x00\x00'), 2);
    expect(c.protocol).toBe('unknown');
    expect(records).toEqual([]);
  });
});

describe('trace context rules', () => {
  const ctx = (h: Record<string, string>) => traceContext(lowerCaseLookup(h));
  it('SkyWalking sw8: base64 trace id; span = base64 segment id + "-" + span id', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(ctx({ sw8: `1-${b64('trace-abc')}-${b64('segment-1')}-3-${b64('svc')}-${b64('inst')}-${b64('/ep')}-${b64('peer:80')}` }))
      .toMatchObject({ traceId: 'trace-abc', spanId: 'segment-1-3' });
  });
  it('B3 single and multi header, Jaeger (URL-encoded too), W3C first', () => {
    expect(ctx({ b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90' })).toMatchObject({ traceId: '80f198ee56343ba864fe8b2a57d3eff7', spanId: 'e457b5a2e4d86bd1' });
    expect(ctx({ b3: '0' })).toMatchObject({ traceId: null, spanId: null });
    expect(ctx({ 'x-b3-traceid': 't1', 'x-b3-spanid': 's1' })).toMatchObject({ traceId: 't1', spanId: 's1' });
    expect(ctx({ 'uber-trace-id': 'abc%3Adef%3A0%3A1' })).toMatchObject({ traceId: 'abc', spanId: 'def' });
    expect(ctx({ traceparent: '00-aaa-bbb-01', 'x-b3-traceid': 'zzz' })).toMatchObject({ traceId: 'aaa', spanId: 'bbb' });
  });
  it('attachment maps match names in any case (Dubbo)', () => {
    expect(traceContext(anyCaseLookup({ 'X-Request-ID': 'r', TraceParent: '00-t-s-01' }))).toEqual({ traceId: 't', spanId: 's', xRequestId: 'r' });
  });
});

describe('memory', () => {
  it('closed HTTP/1 conversations free their native parsers (30k conversations keep no memory)', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        const { c } = conversation({ protocol: 'http1' });
        c.write('client', req, 0);
        c.write('server', res, 0);
        c.close(1);
      }
    };
    run(5000);
    gc();
    const before = process.memoryUsage().heapUsed;
    run(30_000);
    gc();
    // Before parsers were closed, each conversation kept ~9 KB: 30k would have held ~280 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(20 * 1024 * 1024);
  }, 60_000);
});

describe('per-connection options (pipeline/options.ts)', () => {
  it('withOptions gives what a spread gives, minus an own __proto__ key', () => {
    const base = JSON.parse('{"a":1,"b":{"x":2},"__proto__":{"polluted":true}}') as Record<string, unknown>;
    const extra = { b: 3, c: () => 4 };
    const got = withOptions(base, extra) as Record<string, unknown>;
    expect(Object.keys(got)).toEqual(['a', 'b', 'c']);
    expect(got.a).toBe(1);
    expect(got.b).toBe(3);
    expect(got.c).toBe(extra.c);
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect('polluted' in got).toBe(false);
  });

  it('connections made from shared options share one hidden class (a spread gives each its own)', () => {
    // V8's own check, in a child process: --allow-natives-syntax cannot be turned on in this one.
    const code = `
      const { withOptions } = await import(${JSON.stringify(new URL('../src/pipeline/options.ts', import.meta.url).href)});
      const base = { protocols: [], bodyCapture: 4096, onUserError: () => {} };
      const made = (f) => Array.from({ length: 50 }, (_, i) => f(i));
      const distinct = (xs) => xs.filter((x, i) => !xs.slice(0, i).some((y) => %HaveSameMap(x, y))).length;
      const merged = made((i) => withOptions(base, { connectionId: String(i), onRecord: () => i }));
      const spread = made((i) => ({ ...base, connectionId: String(i), onRecord: () => i }));
      console.log(JSON.stringify([distinct(merged), distinct(spread)]));`;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const [merged, spread] = JSON.parse(r.stdout) as number[];
    expect(merged).toBe(1);
    // Not ours to promise, but it is why withOptions exists: if V8 stops doing this, the helper can go.
    expect(spread).toBeGreaterThan(1);
  });
});
