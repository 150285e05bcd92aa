import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { protobufDump } from '../src/codecs/index.js';

/** Bytes written by protobufjs's own Writer, so the wire format is not this file's opinion. */
function write(f: (w: protobuf.Writer) => void): Uint8Array {
  const w = protobuf.Writer.create();
  f(w);
  return w.finish();
}

describe('protobufDump (no schema)', () => {
  it('text, non-ASCII text, bytes, nested messages, repeats, big field numbers and 64-bit values', () => {
    const inner = write((w) => w.uint32((1 << 3) | 0).uint32(150));
    const bytes = write((w) => w
      .uint32((1 << 3) | 2).string('order 7')
      .uint32((2 << 3) | 2).string('grüße ✓')
      .uint32((3 << 3) | 2).bytes(Uint8Array.from([0, 1, 2, 0xff]))
      .uint32((4 << 3) | 2).bytes(inner)
      .uint32((5 << 3) | 0).uint32(1).uint32((5 << 3) | 0).uint32(2).uint32((5 << 3) | 0).uint32(3)
      .uint32((1000 << 3) | 2).string('tab\there')
      .uint32((6 << 3) | 1).fixed64(protobuf.util.LongBits.from('18446744073709551615').toLong(true))
      .uint32((7 << 3) | 5).fixed32(7)
      .uint32((8 << 3) | 2).string('bell\u0007'));
    expect(protobufDump(bytes)).toEqual({
      1: 'order 7', 2: 'grüße ✓', 3: 'AAEC/w==', 4: { 1: 150 }, 5: [1, 2, 3], 1000: 'tab\there',
      6: '18446744073709551615', 7: 7, 8: 'YmVsbAc=',
    });
    // A plain Uint8Array reads the same as a Buffer.
    expect(protobufDump(new Uint8Array(bytes))).toEqual(protobufDump(Buffer.from(bytes)));
  });

  it('a capped prefix keeps its last field as far as it goes and says so; without the flag it is not a message', () => {
    const whole = write((w) => w.uint32((1 << 3) | 0).uint32(1).uint32((2 << 3) | 2).string('a long text value'));
    const cut = whole.subarray(0, whole.length - 5);
    expect(protobufDump(cut, 0, true)).toEqual({ 1: 1, 2: 'a long text ', $truncated: true });
    expect(protobufDump(cut)).toBeNull();
  });
});
