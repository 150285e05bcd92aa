/**
 * HTTP/1: flowtap producing full exchange records (both directions, pairing, headers, bodies, trace ids)
 * vs bare llhttp (Node's binding, no-op callbacks) vs http-parser-js, on the same segments in one run.
 */
import { createRequire } from 'node:module';
// The built package, as users run it (tsx would add its own helpers to src/ code).
import { Conversation, http1Decoder } from '../dist/index.js';
import { instantiate, memoryOf } from '../src/codecs/http1/llhttp-wasm.js';
import { compare, ratio, type BenchResult } from './measure.js';

const require = createRequire(import.meta.url);

/** A day in the life of an API: keep-alive GETs and POSTs, JSON bodies, chunked and 304 responses. */
export function corpus(exchanges: number): { side: 'client' | 'server'; chunk: Buffer }[] {
  const out: { side: 'client' | 'server'; chunk: Buffer }[] = [];
  const json = JSON.stringify({ id: 12345, name: 'widget', tags: ['a', 'b', 'c'], price: 9.99, stock: { eu: 10, us: 3 } });
  for (let i = 0; i < exchanges; i++) {
    const kind = i % 4;
    const common = `Host: api.internal:8080\r\nUser-Agent: svc-orders/2.3.1\r\nAccept: application/json\r\n` +
      `Accept-Encoding: gzip, deflate\r\nTraceparent: 00-0af7651916cd43dd8448eb211c8031${String(i % 100).padStart(2, '0')}-b7ad6b7169203331-01\r\n` +
      `X-Request-Id: req-${i}\r\nConnection: keep-alive\r\n`;
    let req: string;
    let res: string;
    if (kind === 0 || kind === 2) {
      req = `GET /v1/items/${i}?fields=all HTTP/1.1\r\n${common}\r\n`;
      res = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nDate: Sun, 22 Nov 2026 03:00:00 GMT\r\nServer: nginx\r\nCache-Control: max-age=60\r\n\r\n${json}`;
    } else if (kind === 1) {
      req = `POST /v1/orders HTTP/1.1\r\n${common}Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`;
      res = `HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Sun, 22 Nov 2026 03:00:00 GMT\r\n\r\n${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`;
    } else {
      req = `GET /v1/catalog HTTP/1.1\r\n${common}If-None-Match: "abc123"\r\n\r\n`;
      res = `HTTP/1.1 304 Not Modified\r\nETag: "abc123"\r\nDate: Sun, 22 Nov 2026 03:00:00 GMT\r\n\r\n`;
    }
    out.push({ side: 'client', chunk: Buffer.from(req) }, { side: 'server', chunk: Buffer.from(res) });
  }
  return out;
}

type ParserCtor = new () => Record<string | number, unknown> & {
  initialize(t: number, r: object, max?: number): void; execute(b: Buffer): unknown; };

function bareParsers(mod: { HTTPParser: ParserCtor & Record<string, number> }) {
  const { HTTPParser } = mod;
  const make = (type: number) => {
    const p = new HTTPParser();
    p.initialize(type, {}, 64 * 1024);
    const noop = () => 0;
    for (const k of ['kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute']) {
      if (HTTPParser[k] !== undefined) p[HTTPParser[k]] = noop;
    }
    return p;
  };
  return { client: make(HTTPParser.REQUEST), server: make(HTTPParser.RESPONSE) };
}

/**
 * undici's llhttp wasm, loaded by flowtap's own loader (`instantiate`), with callbacks that return at once:
 * one request and one response parser.
 */
let bare: { execute(side: 'client' | 'server', chunk: Buffer): void } | null = null;
function bareWasm(): { execute(side: 'client' | 'server', chunk: Buffer): void } {
  // Made once (compiling the module is not parsing); the corpus ends between messages, so passes reuse it.
  if (bare) return bare;
  const noop = () => 0;
  const env = Object.fromEntries(['message_begin', 'url', 'status', 'header_field', 'header_value', 'headers_complete', 'body',
    'message_complete'].map((k) => [`wasm_on_${k}`, noop]));
  const w = instantiate(env, 64 * 1024);
  const parsers = { client: w.x.llhttp_alloc(1), server: w.x.llhttp_alloc(2) };
  return bare = {
    execute(side, chunk) {
      memoryOf(w).set(chunk, w.arena);
      if (w.x.llhttp_execute(parsers[side], w.arena, chunk.length) !== 0) throw new Error('llhttp wasm: parse error on the corpus');
    },
  };
}

export function benchHttp1(): BenchResult {
  const EX = 20_000;
  const input = corpus(EX);
  const bytes = input.reduce((n, c) => n + c.chunk.length, 0);
  const [flowtap, decoders, llhttp, wasm, hpjs] = compare([
    {
      name: 'flowtap (full records)',
      fn: () => {
        let n = 0;
        const c = new Conversation({
          client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 8080 }, connectionId: '1',
          protocol: 'http1', onRecord: () => { n++; },
        });
        let t = 1_700_000_000_000;
        for (const { side, chunk } of input) c.write(side, chunk, t++);
        if (n !== EX) throw new Error(`flowtap produced ${n} records, expected ${EX}`);
      },
    },
    {
      // Where the time goes: the decoders alone, messages out, no pairing or records.
      name: 'flowtap decoders (messages only)',
      fn: () => {
        let n = 0;
        const c = http1Decoder({ type: 'request', onMessage: () => { n++; } });
        const s = http1Decoder({ type: 'response', requestMethod: () => 'GET', onMessage: () => { n++; } });
        let t = 1_700_000_000_000;
        for (const { side, chunk } of input) (side === 'client' ? c : s).write(chunk, t++);
        if (n !== 2 * EX) throw new Error(`decoders produced ${n} messages, expected ${2 * EX}`);
      },
    },
    {
      name: 'llhttp (no-op callbacks)',
      fn: () => {
        const p = bareParsers(require('_http_common'));
        for (const { side, chunk } of input) p[side].execute(chunk);
      },
    },
    {
      // The parser flowtap runs, with nothing built: what is left of flowtap's time is its own JS.
      name: "undici's llhttp wasm (no-op callbacks)",
      fn: () => {
        const p = bareWasm();
        for (const { side, chunk } of input) p.execute(side, chunk);
      },
    },
    {
      name: 'http-parser-js (no-op callbacks)',
      fn: () => {
        const p = bareParsers(require('http-parser-js'));
        for (const { side, chunk } of input) p[side].execute(chunk);
      },
    },
  ], EX, bytes);
  return {
    name: 'http1',
    unit: 'exchanges/s, median of 15 interleaved rounds',
    results: [flowtap, decoders, llhttp, wasm, hpjs],
    ratios: {
      'flowtap/llhttp': ratio(flowtap, llhttp),
      'flowtap/http-parser-js': ratio(flowtap, hpjs),
      'decoders only/llhttp': ratio(decoders, llhttp),
      'flowtap/its wasm parser alone': ratio(flowtap, wasm),
    },
    targets: { 'flowtap/llhttp': 1, 'flowtap/http-parser-js': 2 },
  };
}
