/**
 * gRPC length-prefixed messages over a stream's DATA bytes (split anywhere): counts them and keeps the first
 * one (decompressed when flagged, bounded), as records show `messages` and `message`.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { copyBytes } from '../bytes.js';

export class GrpcMessageReader {
  /** Complete messages seen. */
  count = 0;
  /** The first message's payload (decompressed), up to the cap; null before it completes. */
  first: Buffer | null = null;
  /** Why the first message could not be kept (compression error, unknown encoding). */
  firstError: string | null = null;
  /** The first message was longer than the cap: `first` is its prefix. */
  firstTruncated = false;
  private firstLength = 0;
  /** A prefix split across DATA frames, gathered here (made only then). */
  private prefix: Buffer | null = null;
  private prefixFill = 0;
  private remaining = -1;
  private compressed = false;
  private parts: Buffer[] = [];
  private kept = 0;

  constructor(private readonly encoding: string | null, private readonly cap: number) {}

  /** Bytes of a message still expected (0 between messages): non-zero at END_STREAM means a cut message. */
  get pending(): number {
    return this.remaining > 0 ? this.remaining : this.prefixFill;
  }

  write(data: Uint8Array): void {
    let i = 0;
    while (i < data.length) {
      if (this.remaining < 0) {
        if (this.prefixFill === 0 && data.length - i >= 5) {
          // The whole 5-byte prefix is here (nearly always): read in place.
          this.compressed = data[i] === 1;
          this.remaining = ((data[i + 1] << 24) | (data[i + 2] << 16) | (data[i + 3] << 8) | data[i + 4]) >>> 0;
          i += 5;
        } else {
          const p = (this.prefix ??= Buffer.alloc(5));
          while (this.prefixFill < 5 && i < data.length) p[this.prefixFill++] = data[i++];
          if (this.prefixFill < 5) return;
          this.prefixFill = 0;
          this.compressed = p[0] === 1;
          this.remaining = p.readUInt32BE(1);
        }
        if (this.count === 0) this.firstLength = this.remaining;
        if (this.remaining === 0) this.done();
        continue;
      }
      const take = Math.min(this.remaining, data.length - i);
      if (this.count === 0 && this.kept < this.cap * 4) {
        // Keep the first message (compressed bytes up to a bound) to show it decoded: a copy, since the
        // frame's bytes are only valid now.
        const part = copyBytes(data, i, Math.min(take, this.cap * 4 - this.kept));
        this.parts.push(part);
        this.kept += part.length;
      }
      this.remaining -= take;
      i += take;
      if (this.remaining === 0) this.done();
    }
  }

  private done(): void {
    if (this.count === 0) {
      let body = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      this.parts = [];
      if (this.compressed) {
        try {
          const opts = { maxOutputLength: this.cap };
          if (this.encoding === 'gzip') body = gunzipSync(body, opts);
          else if (this.encoding === 'deflate') body = inflateSync(body, opts);
          else { this.firstError = `message compressed with "${this.encoding ?? 'unknown'}"`; body = Buffer.alloc(0); }
        } catch (e) {
          // A message larger than the cap fails to inflate fully: keep nothing rather than a torn prefix.
          this.firstError = `could not decompress the first message: ${(e as Error).message}`;
          body = Buffer.alloc(0);
        }
      }
      if (!this.firstError) {
        this.firstTruncated = body.length > this.cap || (!this.compressed && this.firstLength > this.kept);
        this.first = body.length > this.cap ? body.subarray(0, this.cap) : body;
      }
    }
    this.count++;
    this.remaining = -1;
  }
}
