/**
 * Cutting real captures the way captures go wrong: a segment the capture never saw (its peer ACKs it), a
 * segment cut short by the snap length, a capture that stops in the middle of a packet. Classic pcap only
 * (what tcpdump -w writes); Ethernet or Linux SLL link types, IPv4, TCP.
 */
import { CaptureDecoder } from '../src/capture/read.js';
import type { AnyRecord } from '../src/records/types.js';

export interface Packet { header: Buffer; data: Buffer }
export interface Pcap { global: Buffer; packets: Packet[]; le: boolean }

export function parsePcap(b: Buffer): Pcap {
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const packets: Packet[] = [];
  for (let at = 24; at + 16 <= b.length;) {
    const incl = le ? b.readUInt32LE(at + 8) : b.readUInt32BE(at + 8);
    packets.push({ header: Buffer.from(b.subarray(at, at + 16)), data: b.subarray(at + 16, at + 16 + incl) });
    at += 16 + incl;
  }
  return { global: b.subarray(0, 24), packets, le };
}

export function writePcap(p: Pcap, packets: Packet[]): Buffer {
  return Buffer.concat([p.global, ...packets.flatMap((k) => [k.header, k.data])]);
}

/** Where a packet's TCP payload starts and how long it is, and its connection (ports, either order). */
export function tcpInfo(p: Pcap, k: Packet): { payloadAt: number; payloadLen: number; conn: string } | null {
  const link = p.le ? p.global.readUInt32LE(20) : p.global.readUInt32BE(20);
  const ipAt = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : -1;
  const d = k.data;
  if (ipAt < 0 || d.length < ipAt + 20 || d[ipAt] >> 4 !== 4 || d[ipAt + 9] !== 6) return null;
  const ihl = (d[ipAt] & 15) * 4;
  const total = d.readUInt16BE(ipAt + 2);
  const tcpAt = ipAt + ihl;
  const sport = d.readUInt16BE(tcpAt);
  const dport = d.readUInt16BE(tcpAt + 2);
  const payloadAt = tcpAt + (d[tcpAt + 12] >> 4) * 4;
  return { payloadAt, payloadLen: ipAt + total - payloadAt, conn: sport < dport ? `${sport}-${dport}` : `${dport}-${sport}` };
}

/** The same packet with only its first `keep` bytes captured (the snap length cut it). */
export function snapped(p: Pcap, k: Packet, keep: number): Packet {
  const header = Buffer.from(k.header);
  if (p.le) header.writeUInt32LE(keep, 8); else header.writeUInt32BE(keep, 8);
  return { header, data: k.data.subarray(0, keep) };
}

export function readAll(file: Buffer): AnyRecord[] {
  const out: AnyRecord[] = [];
  const dec = new CaptureDecoder({}, (r) => out.push(r));
  dec.write(file);
  dec.end();
  return out;
}

/** The fields a salvaged record reports that disagree with `full` (empty: consistent). */
export function contradictions(cut: AnyRecord, full: AnyRecord): string[] {
  const bad: string[] = [];
  const same = (name: string, a: unknown, b: unknown) => {
    if (a === null || a === undefined || a === '') return;
    if (JSON.stringify(a) !== JSON.stringify(b)) bad.push(`${name}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  };
  if (cut.protocol === 'http2' && full.protocol === 'grpc') {
    // An HTTP/2 stream whose content-type the cut made unreadable: its fields mean other things than a
    // gRPC record's (code is :status, method the HTTP method); only the path is the same field.
    same('endpoint', cut.endpoint, full.endpoint);
    return bad;
  }
  same('protocol', cut.protocol, full.protocol);
  same('endpoint', cut.endpoint, full.endpoint);
  same('code', cut.code, full.code);
  same('traceId', cut.traceId, full.traceId);
  same('xRequestId', cut.xRequestId, full.xRequestId);
  const cq = cut.request as unknown as Record<string, unknown>;
  const fq = full.request as unknown as Record<string, unknown>;
  for (const f of ['method', 'target', 'path', 'host', 'version', 'authority', 'service', 'serviceVersion', 'dubboVersion', 'parameterTypes']) same(`request.${f}`, cq[f], fq[f]);
  const ch = (cq.headers ?? cq.metadata ?? cq.attachments ?? {}) as Record<string, unknown>;
  const fh = (fq.headers ?? fq.metadata ?? fq.attachments ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(ch)) same(`request header ${k}`, v, fh[k]);
  if (cut.response && full.response) {
    const cs = cut.response as unknown as Record<string, unknown>;
    const fs = full.response as unknown as Record<string, unknown>;
    for (const f of ['statusCode', 'status', 'version', 'httpStatus']) same(`response.${f}`, cs[f], fs[f]);
    const crh = (cs.headers ?? {}) as Record<string, unknown>;
    const frh = (fs.headers ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(crh)) same(`response header ${k}`, v, frh[k]);
    if (typeof cs.bodySize === 'number' && typeof fs.bodySize === 'number' && cs.bodySize > fs.bodySize) bad.push(`response.bodySize ${cs.bodySize} > ${fs.bodySize}`);
  }
  // Message sizes are framed in HTTP/1 and Dubbo: a cut one is never larger. (An HTTP/2 stream can be: when
  // the RST that ended it early is the packet lost, the late answer is seen.)
  if (cut.protocol === 'http1' || cut.protocol === 'dubbo') {
    if (cut.requestSize > full.requestSize) bad.push(`requestSize ${cut.requestSize} > ${full.requestSize}`);
    if (cut.responseSize > full.responseSize) bad.push(`responseSize ${cut.responseSize} > ${full.responseSize}`);
  }
  return bad;
}
