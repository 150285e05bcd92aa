import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { HpackDecoder, type HpackBlock } from '../src/codecs/http2/hpack.js';
import { HUFFMAN_CODES } from '../src/codecs/http2/rfc7541-tables.js';
import { rng } from './helpers.js';

const require = createRequire(import.meta.url);
const hpackjs = require('hpack.js') as { compressor: { create(o: object): HpackCompressor } };
interface HpackCompressor { write(h: { name: string; value: string; huffman?: boolean; neverIndex?: boolean }[]): void; read(): Buffer | null; updateTableSize?(n: number): void }

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ok = (r: ReturnType<HpackDecoder['decode']>): HpackBlock => {
  if ('error' in r) throw new Error(r.error);
  return r;
};

describe('HPACK: RFC 7541 Appendix C', () => {
  it('C.3 requests without Huffman, C.4 the same with Huffman: fields and dynamic table sizes', () => {
    for (const [blocks, huff] of [[[
      '828684410f7777772e6578616d706c652e636f6d',
      '828684be58086e6f2d6361636865',
      '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
    ], false], [[
      '828684418cf1e3c2e5f23a6ba0ab90f4ff',
      '828684be5886a8eb10649cbf',
      '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
    ], true]] as const) {
      const d = new HpackDecoder();
      const b1 = ok(d.decode(hex(blocks[0])));
      expect(b1.headers).toEqual([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
      expect(d.dynamicSize).toBe(57);
      const b2 = ok(d.decode(hex(blocks[1])));
      expect(b2.headers).toEqual([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]);
      expect(d.dynamicSize).toBe(110);
      const b3 = ok(d.decode(hex(blocks[2])));
      expect(b3.headers).toEqual([[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']]);
      expect(d.dynamicSize, `huffman=${huff}`).toBe(164);
    }
  });
});

function compressor(tableSize = 4096): HpackCompressor {
  return hpackjs.compressor.create({ table: { maxSize: tableSize } });
}

function encode(c: HpackCompressor, headers: [string, string][], huffman: boolean): Buffer {
  c.write(headers.map(([name, value]) => ({ name, value, huffman })));
  const parts: Buffer[] = [];
  for (let b = c.read(); b; b = c.read()) parts.push(b);
  return Buffer.concat(parts);
}

function randomHeaders(r: () => number, i: number): [string, string][] {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const h: [string, string][] = [[':method', pick(['GET', 'POST', 'PUT'])], [':path', `/api/v1/items/${Math.floor(r() * 50)}`],
    [':scheme', 'https'], [':authority', pick(['api.example.com', 'svc.internal:8443'])]];
  const n = Math.floor(r() * 8);
  for (let k = 0; k < n; k++) h.push([pick(['x-request-id', 'user-agent', 'accept', 'x-trace', 'content-type', 'x-custom']),
    // ASCII values only: hpack.js (the independent encoder here) truncates other characters to one byte.
    pick([`r-${i}-${k}`, 'grpc-go/1.60.1', 'application/grpc', 'v=1; path=/; HttpOnly', 'x'.repeat(Math.floor(r() * 300))])]);
  return h;
}

describe('HPACK against an independent encoder (hpack.js compressor)', () => {
  it('2000 blocks with dynamic-table reuse, Huffman on and off, table sizes 4096 and 256: identical fields', () => {
    for (const [huffman, size] of [[true, 4096], [false, 4096], [true, 256]] as const) {
      const r = rng(size + (huffman ? 1 : 0));
      const c = compressor(size);
      const d = new HpackDecoder({ maxTableSize: size });
      for (let i = 0; i < 700; i++) {
        const h = randomHeaders(r, i);
        expect(ok(d.decode(encode(c, h, huffman))).headers).toEqual(h);
      }
    }
  });

  it('mid-connection: entries from before are null (block marked incomplete), the rest decodes, later entries resolve', () => {
    const c = compressor();
    const early = encode(c, [[':authority', 'api.example.com'], ['x-tenant', 'acme']], true); // both indexed into the table
    void early; // sent before we started watching
    const d = new HpackDecoder({ midStream: true });
    const later = ok(d.decode(encode(c, [[':method', 'GET'], [':authority', 'api.example.com'], ['x-new', 'seen'], ['x-tenant', 'acme']], true)));
    expect(later.incomplete).toBe(true);
    expect(later.headers).toEqual([[':method', 'GET'], [null, null], ['x-new', 'seen'], [null, null]]);
    const again = ok(d.decode(encode(c, [['x-new', 'seen'], [':method', 'GET']], true)));
    expect(again).toEqual({ headers: [['x-new', 'seen'], [':method', 'GET']], incomplete: false });
    // Without midStream the same unknown index is an error value, not a guess.
    expect(new HpackDecoder().decode(Buffer.from([0xbe]))).toEqual({ error: 'index 62 is beyond the table' });
  });
});

describe('HPACK bombs and garbage are bounded error values', () => {
  it('huge integers, strings past the block, oversized table updates, decode bombs', () => {
    const d = () => new HpackDecoder({ maxTableSize: 4096, maxBlockOctets: 64 * 1024 });
    expect(d().decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toEqual({ error: 'integer larger than 2^31' });
    expect(d().decode(Buffer.from([0xff, 0x80]))).toEqual({ error: 'integer runs past the end of the block' });
    expect(d().decode(Buffer.from([0x40, 0x7f, 0xff, 0x01, 0x61]))).toEqual({ error: 'string of 382 octets runs past the end of the block' }); // 127 + 127 + 1·128
    expect(d().decode(Buffer.from([0x3f, 0xe1, 0x7f]))).toEqual({ error: 'table size update to 16384 exceeds the agreed 4096' }); // 31 + 97 + 127·128
    // One 4 KiB entry referenced 100 times: 400 KiB from a 4 KiB block.
    const big = encode(compressor(8192), [['x-big', 'y'.repeat(4000)]], false);
    const dec = new HpackDecoder({ maxTableSize: 8192, maxBlockOctets: 64 * 1024 });
    ok(dec.decode(big));
    expect(dec.decode(Buffer.alloc(100, 0xbe))).toEqual({ error: 'header block decodes to more than 65536 octets' });
    expect(d().decode(Buffer.from([0x00, 0x81, 0xff]))).toEqual({ error: 'invalid Huffman coding' }); // EOS-ish padding too long
  });

  it('50k random and mutated blocks never throw', () => {
    const r = rng(5);
    const c = compressor();
    const seeds = Array.from({ length: 20 }, (_, i) => encode(c, randomHeaders(r, i), i % 2 === 0));
    for (let i = 0; i < 50_000; i++) {
      const b = Buffer.from(seeds[i % seeds.length]);
      for (let k = 0; k < 1 + Math.floor(r() * 4); k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const d = new HpackDecoder({ midStream: i % 3 === 0 });
      expect(() => d.decode(i % 7 === 0 ? b.subarray(0, Math.floor(r() * b.length)) : b)).not.toThrow();
    }
  });
});

describe('HPACK: strings beyond ASCII', () => {
  /** RFC 7541 Huffman encoding straight from the code table: codes concatenated, padded with ones. */
  const huffman = (bytes: Buffer): Buffer => {
    const out: number[] = [];
    let acc = 0n;
    let bits = 0n;
    for (const b of bytes) {
      const [len, code] = HUFFMAN_CODES[b];
      acc = (acc << BigInt(len)) | BigInt(code);
      bits += BigInt(len);
      while (bits >= 8n) { bits -= 8n; out.push(Number((acc >> bits) & 0xffn)); }
    }
    if (bits > 0n) out.push(Number(((acc << (8n - bits)) | ((1n << (8n - bits)) - 1n)) & 0xffn));
    return Buffer.from(out);
  };
  const literal = (name: string, value: Buffer, huff: boolean) => {
    const v = huff ? huffman(value) : value;
    if (v.length > 126) throw new Error('keep test strings short');
    return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([(huff ? 0x80 : 0) | v.length]), v]);
  };

  it('UTF-8 values decode the same raw and Huffman-coded; ASCII and latin1-range bytes are not confused', () => {
    const values = ['grüße ✓ 日本', 'plain-ascii/1.0', 'emoji 🚀 end', 'a\u00e9b'];
    for (const huff of [false, true]) {
      const d = new HpackDecoder();
      const block = Buffer.concat(values.map((v, i) => literal(`x-${i}`, Buffer.from(v, 'utf8'), huff)));
      expect(ok(d.decode(block)).headers).toEqual(values.map((v, i) => [`x-${i}`, v]));
    }
  });
});
