import { describe, expect, it } from 'vitest';
import { fuzzHttp2 } from '../scripts/fuzz-http2-lib.js';

describe('HTTP/2 + gRPC under seeded mutation', () => {
  it('100k mutated exchanges (flips, cuts, splices, giant frame lengths, HPACK bombs), interleaved in random pieces: no throw, no hang, bounded memory', () => {
    const r = fuzzHttp2(100_000, 1);
    expect(r.inputs).toBe(100_000);
    expect(r.records).toBeGreaterThan(50_000); // unmutated directions and harmless mutations still give records
    expect(r.controlRecords).toBe(1000 * 3); // the 1000 unmutated inputs give the fixture's 3 gRPC calls, each ok
    // Half the inputs keep the server direction whole: responses must keep decoding, not just requests.
    expect(r.withResponse).toBeGreaterThan(100_000);
    expect(r.ok).toBeGreaterThan(60_000);
    expect(r.maxMs).toBeLessThan(1000);
    expect(r.heapGrowthMb).toBeLessThan(64);
  }, 300_000);
});
