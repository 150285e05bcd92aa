import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GrpcMessageReader } from '../src/codecs/grpc/messages.js';

const frame = (payload: Buffer, compressed = false) => {
  const p = Buffer.alloc(5);
  p[0] = compressed ? 1 : 0;
  p.writeUInt32BE(payload.length, 1);
  return Buffer.concat([p, payload]);
};

function read(chunks: Uint8Array[], encoding: string | null = null, cap = 4096) {
  const r = new GrpcMessageReader(encoding, cap);
  for (const c of chunks) r.write(c);
  return { count: r.count, first: r.first?.toString('latin1') ?? null, truncated: r.firstTruncated, error: r.firstError, pending: r.pending };
}

describe('gRPC length-prefixed messages', () => {
  const stream = Buffer.concat([frame(Buffer.from('first message')), frame(Buffer.alloc(0)), frame(Buffer.from('third'))]);

  it('the same messages whatever the split: every offset, and one byte at a time', () => {
    const whole = read([stream]);
    expect(whole).toEqual({ count: 3, first: 'first message', truncated: false, error: null, pending: 0 });
    for (let at = 0; at <= stream.length; at++) expect(read([stream.subarray(0, at), stream.subarray(at)])).toEqual(whole);
    expect(read([...stream].map((b) => Uint8Array.of(b)))).toEqual(whole);
  });

  it('a gzip first message is inflated; one past the cap is kept as its prefix and says so; a cut one is pending', () => {
    const gz = Buffer.concat([frame(gzipSync(Buffer.from('compressed text')), true), frame(Buffer.from('x'))]);
    for (let at = 0; at <= gz.length; at++) {
      expect(read([gz.subarray(0, at), gz.subarray(at)], 'gzip')).toEqual({ count: 2, first: 'compressed text', truncated: false, error: null, pending: 0 });
    }
    expect(read([frame(Buffer.from('0123456789'))], null, 4)).toMatchObject({ count: 1, first: '0123', truncated: true });
    expect(read([stream.subarray(0, 9)]).pending).toBe(9); // 4 of "first message"'s 13 bytes came
  });
});
