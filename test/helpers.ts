/** Test helpers: seeded randomness, split-point drivers, and a capture writer for synthetic TCP traffic. */

import { seededRandom as rng } from '../scripts/seeded-random.js';

export { rng };

/** Cut `buf` at the given sorted offsets. */
export function cutAt(buf: Buffer, offsets: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) { out.push(buf.subarray(prev, o)); prev = o; }
  out.push(buf.subarray(prev));
  return out.filter((b) => b.length > 0);
}

/** Every way of cutting `buf` once, plus one-byte chunks. */
export function* everySplit(buf: Buffer): Generator<Buffer[]> {
  for (let i = 1; i < buf.length; i++) yield cutAt(buf, [i]);
  yield cutAt(buf, Array.from({ length: buf.length - 1 }, (_, i) => i + 1));
}

/** `count` seeded random cuttings of `buf`, each into 2..32 pieces. */
export function* randomSplits(buf: Buffer, count: number, seed = 1): Generator<Buffer[]> {
  const r = rng(seed);
  for (let n = 0; n < count; n++) {
    const k = 1 + Math.floor(r() * 31);
    const cuts = new Set<number>();
    for (let i = 0; i < k; i++) cuts.add(1 + Math.floor(r() * (buf.length - 1)));
    yield cutAt(buf, [...cuts].sort((a, b) => a - b));
  }
}

// ---- capture writing ----

export interface Seg {
  from: 'c' | 's';
  data?: Buffer;
  syn?: boolean;
  fin?: boolean;
  rst?: boolean;
  /** Override the sequence number offset (relative to the side's first data byte). */
  at?: number;
  time?: number;
}

export interface Endpoints { cip: string; cport: number; sip: string; sport: number }

const DEFAULT_EP: Endpoints = { cip: '10.0.0.1', cport: 40000, sip: '10.0.0.2', sport: 80 };

/**
 * A TCP conversation as IP packets (no link header): SYN/SYN-ACK when asked, data with consistent seq/ack,
 * timestamps 1 ms apart unless given. `at` lets a test reorder, repeat or overlap byte ranges.
 */
export function tcpPackets(segs: Seg[], ep: Endpoints = DEFAULT_EP, v6 = false): { ip: Buffer; time: number }[] {
  const isn = { c: 1000, s: 5000 };
  const sent = { c: 0, s: 0 };
  const out: { ip: Buffer; time: number }[] = [];
  let t = 1_700_000_000_000;
  for (const s of segs) {
    t = s.time ?? t + 1;
    const other = s.from === 'c' ? 's' : 'c';
    const data = s.data ?? Buffer.alloc(0);
    const off = s.at ?? sent[s.from];
    const seq = s.syn ? isn[s.from] : (isn[s.from] + 1 + off) >>> 0;
    const ack = (isn[other] + 1 + sent[other]) >>> 0;
    let flags = 0x10;
    if (s.syn) flags = s.from === 'c' ? 0x02 : 0x12;
    if (s.fin) flags |= 0x01;
    if (s.rst) flags = 0x04 | 0x10;
    if (data.length) flags |= 0x08;
    const [src, dst, sp, dp] = s.from === 'c' ? [ep.cip, ep.sip, ep.cport, ep.sport] : [ep.sip, ep.cip, ep.sport, ep.cport];
    out.push({ ip: ipPacket(src, dst, tcpHeader(sp, dp, seq, ack, flags), data, v6), time: t });
    if (s.at === undefined && !s.syn) sent[s.from] += data.length;
  }
  return out;
}

function tcpHeader(sp: number, dp: number, seq: number, ack: number, flags: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sp, 0);
  h.writeUInt16BE(dp, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h.writeUInt32BE(ack >>> 0, 8);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  return h;
}

function ipPacket(src: string, dst: string, tcp: Buffer, data: Buffer, v6: boolean): Buffer {
  if (v6) {
    const h = Buffer.alloc(40);
    h[0] = 0x60;
    h.writeUInt16BE(tcp.length + data.length, 4);
    h[6] = 6;
    h[7] = 64;
    v6Bytes(src).copy(h, 8);
    v6Bytes(dst).copy(h, 24);
    return Buffer.concat([h, tcp, data]);
  }
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + tcp.length + data.length, 2);
  h[6] = 0x40; // DF, not a fragment
  h[8] = 64;
  h[9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, tcp, data]);
}

function v6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** Wrap IP packets for a link type. */
export function frame(linkType: number, ip: Buffer, opts: { vlan?: number[]; bigEndianNull?: boolean } = {}): Buffer {
  const v6 = ip[0] >> 4 === 6;
  const ethType = v6 ? 0x86dd : 0x0800;
  switch (linkType) {
    case 1: {
      const tags = (opts.vlan ?? []).map((id) => { const b = Buffer.alloc(4); b.writeUInt16BE(0x8100, 0); b.writeUInt16BE(id, 2); return b; });
      const mac = Buffer.from('020000000001020000000002', 'hex');
      const type = Buffer.alloc(2); type.writeUInt16BE(ethType);
      // VLAN tags (TPID 0x8100 + TCI) sit between the MACs and the final EtherType.
      return Buffer.concat([mac, ...tags, type, ip]);
    }
    case 113: { const h = Buffer.alloc(16); h.writeUInt16BE(ethType, 14); return Buffer.concat([h, ip]); }
    case 276: { const h = Buffer.alloc(20); h.writeUInt16BE(ethType, 0); return Buffer.concat([h, ip]); }
    case 0: {
      const h = Buffer.alloc(4);
      const fam = v6 ? 30 : 2;
      if (opts.bigEndianNull) h.writeUInt32BE(fam); else h.writeUInt32LE(fam);
      return Buffer.concat([h, ip]);
    }
    case 101: return ip;
    default: throw new Error(`no framing for link type ${linkType}`);
  }
}

/** A classic pcap file. */
export function pcapFile(linkType: number, packets: { data: Buffer; time: number }[], o: { bigEndian?: boolean; nanos?: boolean } = {}): Buffer {
  const w32 = (b: Buffer, v: number, at: number) => (o.bigEndian ? b.writeUInt32BE(v >>> 0, at) : b.writeUInt32LE(v >>> 0, at));
  const w16 = (b: Buffer, v: number, at: number) => (o.bigEndian ? b.writeUInt16BE(v, at) : b.writeUInt16LE(v, at));
  const g = Buffer.alloc(24);
  w32(g, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(g, 2, 4); w16(g, 4, 6); w32(g, 262144, 16); w32(g, linkType, 20);
  const parts: Buffer[] = [g];
  for (const p of packets) {
    const h = Buffer.alloc(16);
    const sec = Math.floor(p.time / 1000);
    const frac = o.nanos ? Math.round((p.time - sec * 1000) * 1e6) : Math.round((p.time - sec * 1000) * 1e3);
    w32(h, sec, 0); w32(h, frac, 4); w32(h, p.data.length, 8); w32(h, p.data.length, 12);
    parts.push(h, p.data);
  }
  return Buffer.concat(parts);
}

/** A pcapng file: one SHB, the given interfaces (with if_tsresol), EPBs (or SPBs when `simple`). */
export function pcapngFile(
  ifaces: { linkType: number; tsresol?: number }[],
  packets: { iface: number; data: Buffer; time: number }[],
  o: { bigEndian?: boolean; simple?: boolean } = {},
): Buffer {
  const be = !!o.bigEndian;
  const w32 = (b: Buffer, v: number, at: number) => (be ? b.writeUInt32BE(v >>> 0, at) : b.writeUInt32LE(v >>> 0, at));
  const w16 = (b: Buffer, v: number, at: number) => (be ? b.writeUInt16BE(v, at) : b.writeUInt16LE(v, at));
  const block = (type: number, body: Buffer) => {
    const pad = (4 - (body.length % 4)) % 4;
    const len = 12 + body.length + pad;
    const b = Buffer.alloc(len);
    w32(b, type, 0); w32(b, len, 4); body.copy(b, 8); w32(b, len, len - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  w32(shb, 0x1a2b3c4d, 0); w16(shb, 1, 4); w16(shb, 0, 6);
  shb.writeInt32LE(-1, 8); shb.writeInt32LE(-1, 12);
  const parts = [block(0x0a0d0d0a, shb)];
  for (const i of ifaces) {
    const body = Buffer.alloc(8 + (i.tsresol !== undefined ? 8 : 0) + 4);
    w16(body, i.linkType, 0); w32(body, 262144, 4);
    let at = 8;
    if (i.tsresol !== undefined) { w16(body, 9, at); w16(body, 1, at + 2); body[at + 4] = i.tsresol; at += 8; }
    w16(body, 0, at); w16(body, 0, at + 2); // opt_endofopt
    parts.push(block(1, body));
  }
  for (const p of packets) {
    if (o.simple) {
      const h = Buffer.alloc(4); w32(h, p.data.length, 0);
      parts.push(block(3, Buffer.concat([h, p.data, Buffer.alloc((4 - (p.data.length % 4)) % 4)])));
      continue;
    }
    const res = ifaces[p.iface].tsresol ?? 6;
    const units = res & 0x80 ? 2n ** BigInt(res & 0x7f) : 10n ** BigInt(res);
    const ts = (BigInt(Math.round(p.time * 1000)) * units) / 1_000_000n; // time is ms with µs precision
    const h = Buffer.alloc(20);
    w32(h, p.iface, 0); w32(h, Number(ts >> 32n), 4); w32(h, Number(ts & 0xffffffffn), 8);
    w32(h, p.data.length, 12); w32(h, p.data.length, 16);
    parts.push(block(6, Buffer.concat([h, p.data, Buffer.alloc((4 - (p.data.length % 4)) % 4)])));
  }
  return Buffer.concat(parts);
}
