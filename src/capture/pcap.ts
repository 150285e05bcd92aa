/**
 * pcap and pcapng, read as a stream: file chunks in, packets out, same contract as the protocol decoders
 * (write chunks split anywhere, callbacks out, errors as values). Handles both byte orders, µs and ns
 * pcap, and pcapng SHB/IDB/EPB/SPB/PB with several interfaces and sections.
 */

export interface CapturedPacket {
  /** ms since the epoch, fractional. */
  time: number;
  linkType: number;
  /** Valid only during the callback: copy what you keep. */
  data: Uint8Array;
  /** Length on the wire (may exceed data.length when the snap length cut it). */
  originalLength: number;
}

export interface CaptureFileCallbacks {
  onPacket: (p: CapturedPacket) => void;
  /** The file is not a capture, or is corrupt; after this nothing more is read. */
  onError: (message: string) => void;
  /** A pcapng Decryption Secrets Block with a TLS key log (`editcap --inject-secrets tls,FILE`). */
  onSecrets?: (keylog: string) => void;
}

const enum Kind { Unknown, Pcap, Pcapng, Failed }

const PCAPNG_SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const MAX_BLOCK = 256 * 1024 * 1024;
/** The first bytes a capture file can start with: pcap µs/ns in both byte orders, pcapng SHB. */
const MAGICS = ['d4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d', '0a0d0d0a'].map((h) => Buffer.from(h, 'hex'));

interface Iface { linkType: number; unitsPerSec: number; offsetSec: number }

export class CaptureFileReader {
  private kind = Kind.Unknown;
  private buf: Buffer = Buffer.alloc(0);
  private le = true;
  private nanos = false;
  private linkType = 0;
  private ifaces: Iface[] = [];
  /** Bytes of the file consumed so far (for error messages). */
  private offset = 0;
  packets = 0;

  constructor(private readonly cb: CaptureFileCallbacks) {}

  write(chunk: Uint8Array): void {
    if (this.kind === Kind.Failed) return;
    this.buf = this.buf.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
      : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    try {
      pos = this.parse();
    } catch (e) {
      this.fail(`unreadable capture at byte ${this.offset}: ${(e as Error).message}`);
      return;
    }
    this.offset += pos;
    // Keep only the unparsed tail, copied so the caller's chunk can be reused.
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
  }

  /** EOF. Returns a warning when the file ended inside a record (common when tcpdump is killed). */
  end(): string | null {
    if (this.kind === Kind.Failed) return null;
    if (this.kind === Kind.Unknown) {
      const b = this.buf;
      const couldBe = MAGICS.some((m) => b.length <= m.length && m.subarray(0, b.length).equals(b));
      this.fail(b.length === 0 ? 'the file is empty'
        : couldBe ? 'the file is too short to be a capture'
        : `not a pcap or pcapng file (unknown magic number ${b.subarray(0, 4).toString('hex')})`);
      return null;
    }
    if (this.buf.length > 0) return `the capture ends inside a record (${this.buf.length} bytes at byte ${this.offset} ignored)`;
    return null;
  }

  private fail(message: string): void {
    this.kind = Kind.Failed;
    this.buf = Buffer.alloc(0);
    this.cb.onError(message);
  }

  private parse(): number {
    const b = this.buf;
    let pos = 0;
    if (this.kind === Kind.Unknown) {
      if (b.length < 4) return 0;
      const magicLE = b.readUInt32LE(0);
      const magicBE = b.readUInt32BE(0);
      if (magicLE === PCAPNG_SHB) {
        this.kind = Kind.Pcapng;
      } else if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d || magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
        if (b.length < 24) return 0;
        this.le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
        this.nanos = (this.le ? magicLE : magicBE) === 0xa1b23c4d;
        this.linkType = (this.le ? b.readUInt32LE(20) : b.readUInt32BE(20)) & 0x0fffffff;
        this.kind = Kind.Pcap;
        pos = 24;
      } else {
        this.fail('not a pcap or pcapng file (unknown magic number ' + b.subarray(0, 4).toString('hex') + ')');
        return 0;
      }
    }
    return this.kind === Kind.Pcap ? this.parsePcap(pos) : this.parsePcapng(pos);
  }

  private parsePcap(pos: number): number {
    const b = this.buf;
    const le = this.le;
    while (pos + 16 <= b.length) {
      const sec = le ? b.readUInt32LE(pos) : b.readUInt32BE(pos);
      const frac = le ? b.readUInt32LE(pos + 4) : b.readUInt32BE(pos + 4);
      const incl = le ? b.readUInt32LE(pos + 8) : b.readUInt32BE(pos + 8);
      const orig = le ? b.readUInt32LE(pos + 12) : b.readUInt32BE(pos + 12);
      if (incl > MAX_BLOCK) throw new Error(`record length ${incl} is not plausible`);
      if (pos + 16 + incl > b.length) break;
      this.packets++;
      this.cb.onPacket({
        time: sec * 1000 + (this.nanos ? frac / 1e6 : frac / 1e3),
        linkType: this.linkType,
        data: b.subarray(pos + 16, pos + 16 + incl),
        originalLength: orig,
      });
      pos += 16 + incl;
    }
    return pos;
  }

  private parsePcapng(pos: number): number {
    const b = this.buf;
    while (pos + 12 <= b.length) {
      let type = this.le ? b.readUInt32LE(pos) : b.readUInt32BE(pos);
      if (type === PCAPNG_SHB) {
        // A new section: its byte-order magic decides how everything in it is read.
        const bom = b.readUInt32LE(pos + 8);
        if (bom === BYTE_ORDER_MAGIC) this.le = true;
        else if (b.readUInt32BE(pos + 8) === BYTE_ORDER_MAGIC) this.le = false;
        else throw new Error('bad pcapng byte-order magic');
        this.ifaces = [];
        type = PCAPNG_SHB;
      }
      const len = this.le ? b.readUInt32LE(pos + 4) : b.readUInt32BE(pos + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK) throw new Error(`block length ${len} is not plausible`);
      if (pos + len > b.length) break;
      this.block(type, pos, len);
      pos += len;
    }
    return pos;
  }

  private u32(at: number): number {
    return this.le ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }

  private u16(at: number): number {
    return this.le ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }

  private block(type: number, pos: number, len: number): void {
    const b = this.buf;
    const body = pos + 8;
    const bodyEnd = pos + len - 4;
    switch (type) {
      case 1: { // Interface Description Block
        const iface: Iface = { linkType: this.u16(body), unitsPerSec: 1e6, offsetSec: 0 };
        // Options: code u16, length u16, value padded to 4.
        let o = body + 8;
        while (o + 4 <= bodyEnd) {
          const code = this.u16(o);
          const olen = this.u16(o + 2);
          if (code === 0) break;
          if (code === 9 && olen >= 1) { // if_tsresol
            const v = b[o + 4];
            iface.unitsPerSec = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
          } else if (code === 14 && olen >= 8) { // if_tsoffset, seconds
            const hi = this.u32(o + 4); const lo = this.u32(o + 8);
            iface.offsetSec = this.le ? lo * 2 ** 32 + hi : hi * 2 ** 32 + lo;
          }
          o += 4 + olen + ((4 - (olen % 4)) % 4);
        }
        this.ifaces.push(iface);
        return;
      }
      case 6: // Enhanced Packet Block
      case 2: { // Packet Block (obsolete): interface id is u16 followed by a drops count
        const id = type === 6 ? this.u32(body) : this.u16(body);
        const iface = this.ifaces[id];
        if (!iface) throw new Error(`packet for interface ${id}, which no IDB described`);
        const hi = this.u32(body + 4);
        const lo = this.u32(body + 8);
        const cap = this.u32(body + 12);
        const orig = this.u32(body + 16);
        if (body + 20 + cap > bodyEnd) throw new Error('packet data runs past its block');
        this.packets++;
        this.cb.onPacket({
          time: tsMillis(hi, lo, iface.unitsPerSec) + iface.offsetSec * 1000,
          linkType: iface.linkType,
          data: b.subarray(body + 20, body + 20 + cap),
          originalLength: orig,
        });
        return;
      }
      case 3: { // Simple Packet Block: interface 0, no timestamp
        const iface = this.ifaces[0];
        if (!iface) throw new Error('simple packet before any IDB');
        const orig = this.u32(body);
        const cap = Math.min(orig, bodyEnd - (body + 4));
        this.packets++;
        this.cb.onPacket({ time: 0, linkType: iface.linkType, data: b.subarray(body + 4, body + 4 + cap), originalLength: orig });
        return;
      }
      case 10: { // Decryption Secrets Block: secrets type, length, data
        const kind = this.u32(body);
        const n = this.u32(body + 4);
        if (kind === 0x544c534b && body + 8 + n <= bodyEnd) this.cb.onSecrets?.(b.toString('latin1', body + 8, body + 8 + n)); // 'TLSK'
        return;
      }
      default:
        return; // SHB handled above; NRB, ISB, custom blocks carry nothing we report
    }
  }
}

/** 64-bit timestamp in `units` per second → ms, exact to well below a microsecond. */
function tsMillis(hi: number, lo: number, units: number): number {
  if (hi < 0x200000) return ((hi * 2 ** 32 + lo) / units) * 1000; // below 2^53: plain arithmetic is exact
  const t = (BigInt(hi) << 32n) | BigInt(lo);
  const u = BigInt(units);
  return Number(t / u) * 1000 + (Number(t % u) * 1000) / units;
}
