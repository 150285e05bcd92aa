/**
 * One direction of a TCP connection, put back in order: segments in (any order, repeated, overlapping),
 * contiguous bytes out. A hole the capture never fills becomes `onGap(length)`, decided when the peer
 * acknowledges past it (the receiver had the bytes; the capture lost them), when too much is waiting
 * behind it, or at the end.
 */

export interface StreamSink {
  onData(chunk: Uint8Array, time: number): void;
  onGap(length: number, time: number): void;
}

interface Held { at: number; data: Buffer; time: number }

/** Bytes held out of order per direction before the first hole is declared lost. */
const MAX_HELD = 4 * 1024 * 1024;

export class TcpStream {
  /** Next expected sequence number (u32), once known. */
  private next = 0;
  private known = false;
  /** Bytes delivered (or skipped as gaps) so far: the stream offset of `next`. */
  private offset = 0;
  private held: Held[] = [];
  private heldBytes = 0;
  finished = false;

  constructor(private readonly sink: StreamSink) {}

  /** The SYN (or SYN-ACK): data starts one after its sequence number. */
  syn(seq: number): void {
    if (this.known && this.offset > 0) return; // a retransmitted SYN after data: ignore
    this.next = (seq + 1) >>> 0;
    this.known = true;
  }

  segment(seq: number, payload: Uint8Array, fin: boolean, time: number): void {
    if (!this.known) { this.next = seq; this.known = true; } // joined mid-stream
    if (payload.length > 0) {
      const d = (seq - this.next) | 0; // signed distance from what we expect, modulo 2^32
      if (d <= 0) {
        if (-d < payload.length) this.deliver(payload.subarray(-d), time); // overlap: only the new tail
      } else {
        this.hold(this.offset + d, payload, time);
      }
    }
    if (fin) {
      const finAt = this.offset + ((((seq + payload.length) >>> 0) - this.next) | 0);
      if (finAt <= this.offset && this.held.length === 0) this.finished = true;
      else this.finAt = finAt;
    }
    this.checkFin();
  }

  private finAt = -1;

  /** The peer acknowledged up to `ack`: anything before it that we never saw is lost from the capture. */
  acked(ack: number, time: number): void {
    if (!this.known || this.finished) return;
    const d = (ack - this.next) | 0;
    // One past what we saw is the FIN's sequence number, not a lost byte.
    if (d > 1) {
      const upTo = this.offset + d;
      if (this.held.length === 0 || this.held[0].at >= upTo) this.skip(d, time);
      else this.drain(time, this.held[0].at - this.offset);
    }
  }

  /** End of capture or connection: declare the holes and deliver everything held. */
  flush(time: number): void {
    while (this.held.length > 0) this.drain(time, this.held[0].at - this.offset);
  }

  private deliver(data: Uint8Array, time: number): void {
    this.sink.onData(data, time);
    this.offset += data.length;
    this.next = (this.next + data.length) >>> 0;
    if (this.held.length > 0) this.drain(time, 0);
  }

  private skip(length: number, time: number): void {
    if (length <= 0) return;
    this.sink.onGap(length, time);
    this.offset += length;
    this.next = (this.next + length) >>> 0;
  }

  /** Skip `gap` bytes (a hole), then deliver whatever held segments now follow in order. */
  private drain(time: number, gap: number): void {
    if (gap > 0) this.skip(gap, time);
    while (this.held.length > 0) {
      const h = this.held[0];
      if (h.at > this.offset) break;
      this.held.shift();
      this.heldBytes -= h.data.length;
      const over = this.offset - h.at;
      if (over < h.data.length) {
        const data = h.data.subarray(over);
        this.sink.onData(data, h.time);
        this.offset += data.length;
        this.next = (this.next + data.length) >>> 0;
      }
    }
  }

  private hold(at: number, payload: Uint8Array, time: number): void {
    // Keep the list sorted by offset; retransmissions of held data are dropped.
    let i = this.held.length;
    while (i > 0 && this.held[i - 1].at > at) i--;
    if (i > 0 && this.held[i - 1].at === at && this.held[i - 1].data.length >= payload.length) return;
    this.held.splice(i, 0, { at, data: Buffer.from(payload), time });
    this.heldBytes += payload.length;
    while (this.heldBytes > MAX_HELD && this.held.length > 0) this.drain(time, this.held[0].at - this.offset);
  }

  private checkFin(): void {
    if (this.finAt >= 0 && this.offset >= this.finAt && this.held.length === 0) {
      this.finished = true;
      this.finAt = -1;
    }
  }
}
