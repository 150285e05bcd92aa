/** From a captured frame to a TCP segment: link layer, IPv4/IPv6, TCP. Anything else is skipped. */

export const LinkType = {
  NULL: 0, // BSD loopback: 4-byte address family in the capturing host's byte order
  ETHERNET: 1,
  RAW: 101,
  RAW_OLD_12: 12,
  RAW_OLD_14: 14,
  LOOP: 108, // OpenBSD loopback: family in network byte order
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export interface TcpSegment {
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  syn: boolean;
  ackFlag: boolean;
  fin: boolean;
  rst: boolean;
  payload: Uint8Array;
}

const TCP = 6;
const NO_PAYLOAD = new Uint8Array(0);

/** The TCP segment in a frame, or null when the frame carries none (ARP, UDP, fragments, truncated...). */
export function tcpSegment(linkType: number, frame: Uint8Array): TcpSegment | null {
  const ip = ipOffset(linkType, frame);
  if (ip < 0 || ip >= frame.length) return null;
  const version = frame[ip] >> 4;
  if (version === 4) return ipv4(frame, ip);
  if (version === 6) return ipv6(frame, ip);
  return null;
}

/** Offset of the IP header in the frame, or -1. */
function ipOffset(linkType: number, f: Uint8Array): number {
  switch (linkType) {
    case LinkType.ETHERNET: {
      let at = 12;
      let type = u16(f, at);
      // 802.1Q / 802.1ad tags, possibly stacked.
      while ((type === 0x8100 || type === 0x88a8 || type === 0x9100) && at + 6 <= f.length) {
        at += 4;
        type = u16(f, at);
      }
      return type === 0x0800 || type === 0x86dd ? at + 2 : -1;
    }
    case LinkType.LINUX_SLL: {
      const type = u16(f, 14);
      return type === 0x0800 || type === 0x86dd ? 16 : -1;
    }
    case LinkType.LINUX_SLL2: {
      const type = u16(f, 0);
      return type === 0x0800 || type === 0x86dd ? 20 : -1;
    }
    case LinkType.NULL:
    case LinkType.LOOP: {
      if (f.length < 4) return -1;
      // Families: 2 = IPv4; 24, 28, 30 = IPv6 on the BSDs/macOS. Either byte order.
      const fam = f[0] === 0 && f[1] === 0 ? u16(f, 2) : f[0] | (f[1] << 8);
      return fam === 2 || fam === 24 || fam === 28 || fam === 30 ? 4 : -1;
    }
    case LinkType.RAW:
    case LinkType.RAW_OLD_12:
    case LinkType.RAW_OLD_14:
    case LinkType.IPV4:
    case LinkType.IPV6:
      return 0;
    default:
      return -1;
  }
}

function ipv4(f: Uint8Array, ip: number): TcpSegment | null {
  if (ip + 20 > f.length) return null;
  const ihl = (f[ip] & 0x0f) * 4;
  const total = u16(f, ip + 2);
  const fragment = u16(f, ip + 6) & 0x3fff; // MF flag or a fragment offset
  if (f[ip + 9] !== TCP || fragment !== 0 || ihl < 20) return null;
  // The IP total length trims Ethernet padding; a snap length may have cut the frame shorter still.
  const end = Math.min(f.length, ip + (total >= ihl ? total : f.length));
  return tcp(f, ip + ihl, end, ipv4Text(f, ip + 12), ipv4Text(f, ip + 16));
}

function ipv6(f: Uint8Array, ip: number): TcpSegment | null {
  if (ip + 40 > f.length) return null;
  const payloadLength = u16(f, ip + 4);
  let next = f[ip + 6];
  let at = ip + 40;
  const end = Math.min(f.length, at + payloadLength);
  // Walk extension headers to TCP.
  for (let hops = 0; next !== TCP && hops < 8; hops++) {
    if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
      if (at + 2 > end) return null;
      next = f[at];
      at += (f[at + 1] + 1) * 8;
    } else if (next === 44) { // fragment
      if (at + 8 > end) return null;
      if ((u16(f, at + 2) & 0xfff9) !== 0) return null; // a real fragment: not reassembled
      next = f[at];
      at += 8;
    } else if (next === 51) { // AH: length in 4-octet units
      if (at + 2 > end) return null;
      next = f[at];
      at += (f[at + 1] + 2) * 4;
    } else {
      return null;
    }
  }
  if (next !== TCP) return null;
  return tcp(f, at, end, ipv6Text(f, ip + 8), ipv6Text(f, ip + 24));
}

function tcp(f: Uint8Array, at: number, end: number, srcIp: string, dstIp: string): TcpSegment | null {
  if (at + 20 > end) return null;
  const dataOffset = (f[at + 12] >> 4) * 4;
  if (dataOffset < 20 || at + dataOffset > end) return null;
  const flags = f[at + 13];
  return {
    srcIp, dstIp,
    srcPort: u16(f, at),
    dstPort: u16(f, at + 2),
    seq: u32(f, at + 4),
    ack: u32(f, at + 8),
    fin: (flags & 0x01) !== 0,
    syn: (flags & 0x02) !== 0,
    rst: (flags & 0x04) !== 0,
    ackFlag: (flags & 0x10) !== 0,
    // Half the segments of a capture are bare ACKs: they share one empty payload instead of a view each.
    payload: at + dataOffset < end ? f.subarray(at + dataOffset, end) : NO_PAYLOAD,
  };
}

function u16(f: Uint8Array, at: number): number {
  return (f[at] << 8) | f[at + 1];
}

function u32(f: Uint8Array, at: number): number {
  return ((f[at] << 24) | (f[at + 1] << 16) | (f[at + 2] << 8) | f[at + 3]) >>> 0;
}

/**
 * Addresses recently made into text, direct-mapped by the address: every packet names two, so the text is
 * made once, and the same string each time lets the flow table's keys repeat. Slots for a few thousand
 * hosts (a capture in front of a busy service sees many clients): 256 thrashed at 1000 client addresses.
 */
const ADDR_SLOTS = 4096;
const ADDR_BITS = 12;
const v4Addr = new Float64Array(ADDR_SLOTS).fill(-1);
const v4Text: string[] = new Array(ADDR_SLOTS).fill('');

function ipv4Text(f: Uint8Array, at: number): string {
  const a = u32(f, at);
  const slot = Math.imul(a, 0x9e3779b1) >>> (32 - ADDR_BITS); // Fibonacci hashing: every byte moves the slot
  if (v4Addr[slot] === a) return v4Text[slot];
  const text = `${f[at]}.${f[at + 1]}.${f[at + 2]}.${f[at + 3]}`;
  v4Addr[slot] = a;
  v4Text[slot] = text;
  return text;
}

/** IPv6 addresses made into text recently: as many slots as IPv4's, checked byte for byte. */
const v6Bytes = new Uint8Array(ADDR_SLOTS * 16);
const v6Text: (string | null)[] = new Array(ADDR_SLOTS).fill(null);

function ipv6Text(f: Uint8Array, at: number): string {
  const slot = (f[at + 15] ^ (f[at + 14] << 3) ^ (f[at + 13] << 5) ^ f[at + 7]) & (ADDR_SLOTS - 1);
  const known = v6Text[slot];
  if (known !== null) {
    let k = 0;
    while (k < 16 && v6Bytes[slot * 16 + k] === f[at + k]) k++;
    if (k === 16) return known;
  }
  const text = ipv6Format(f, at);
  for (let k = 0; k < 16; k++) v6Bytes[slot * 16 + k] = f[at + k];
  v6Text[slot] = text;
  return text;
}

/** RFC 5952 text: lower-case hex, the longest run of two or more zero groups as "::". */
function ipv6Format(f: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16(f, at + i * 2));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${f[at + 12]}.${f[at + 13]}.${f[at + 14]}.${f[at + 15]}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
