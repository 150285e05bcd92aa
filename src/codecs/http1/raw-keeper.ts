/**
 * The wire bytes of each HTTP/1 message, for recording and replay (`keepRaw`). It sees each chunk the
 * parser is given and keeps the first `cap` (plus a little slack) bytes after the previous message; when
 * the parser says a message of `size` bytes ended at an offset, the message began `size`
 * bytes before that, after any stray bytes between messages (an extra CRLF). A message longer than the cap
 * keeps its first `cap` bytes and says it was cut. Copies only while a cap is set.
 */
import { copyBytes } from '../bytes.js';
const SLACK = 1024;

export interface RawMessage {
  /** The message's first bytes (all of them unless `cut`), or null when they could not be placed. */
  raw: Buffer | null;
  cut: boolean;
}

export class RawKeeper {
  private parts: Buffer[] = [];
  /** Bytes kept, and bytes seen, since the previous message ended. */
  private kept = 0;
  private seen = 0;
  private buf: Uint8Array | null = null;
  private from = 0;

  constructor(private readonly cap: number) {}

  /** A chunk is about to be scanned. */
  begin(buf: Uint8Array): void {
    this.buf = buf;
    this.from = 0;
  }

  /** A message of `size` bytes ended at `offset` of the current chunk. */
  cut(size: number, offset: number): RawMessage {
    this.take(offset);
    const start = this.seen - size;
    const length = Math.min(size, this.cap);
    let raw: Buffer | null = null;
    if (start + length <= this.kept) {
      const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.kept);
      raw = whole.subarray(start, start + length);
    }
    this.parts = [];
    this.kept = 0;
    this.seen = 0;
    return { raw, cut: size > this.cap };
  }

  /** The current chunk was scanned up to `end`: keep its tail for the message in progress. */
  done(end: number): void {
    this.take(end);
    this.buf = null;
  }

  reset(): void {
    this.parts = [];
    this.kept = 0;
    this.seen = 0;
    this.buf = null;
  }

  private take(to: number): void {
    const buf = this.buf;
    if (!buf || to <= this.from) return;
    const n = to - this.from;
    const keep = Math.min(n, this.cap + SLACK - this.kept);
    if (keep > 0) {
      this.parts.push(copyBytes(buf, this.from, keep)); // a copy: the caller owns its chunks
      this.kept += keep;
    }
    this.seen += n;
    this.from = to;
  }
}
