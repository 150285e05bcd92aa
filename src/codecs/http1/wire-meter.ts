/**
 * Measures where each HTTP/1 message starts and ends on the wire, so records carry exact sizes even when
 * several pipelined messages share one chunk (Node's llhttp binding reports no offsets).
 *
 * It runs over a chunk right after llhttp has parsed it, so llhttp has already decided every framing the
 * meter needs for that chunk (`expect()` is called from the headers-complete callback). It only looks for
 * the header terminator (native `indexOf`), skips bodies by length, and reads chunk-size lines: it never
 * copies bytes and does no per-byte work on bodies.
 */

export const enum Framing {
  /** No body follows the head. */
  None,
  /** `length` body bytes follow. */
  Length,
  /** Chunked transfer coding, then trailers. */
  Chunked,
  /** The body runs to the end of the stream. */
  UntilEof,
}

const enum S {
  Start,
  Head,
  AwaitFraming,
  Body,
  ChunkLine,
  ChunkData,
  Trailers,
  UntilEof,
  Stopped,
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CR = 13;
const LF = 10;

export class WireMeter {
  private state = S.Start;
  /** Bytes of the current message seen so far. */
  private size = 0;
  /** How many bytes of CRLFCRLF matched at the end of what was scanned (0..3). */
  private matched = 0;
  private remaining = 0;
  private chunkSize = 0;
  private chunkHexDone = false;
  private framings: number[] = []; // pairs: framing, length
  private stopAfter: boolean[] = [];

  /** @param onEnd a message ended at `offset` (exclusive) of the chunk being scanned, `size` bytes in all */
  constructor(private readonly onEnd: (size: number, offset: number) => void) {}

  /** The framing llhttp chose for the next head; `stop` ends measuring after that message (tunnel/upgrade). */
  expect(framing: Framing, length: number, stop: boolean): void {
    this.framings.push(framing, length);
    this.stopAfter.push(stop);
  }

  /** Bytes of the message being measured that were scanned so far (0 between messages). */
  get partial(): number {
    return this.state === S.Start ? 0 : this.size;
  }

  reset(): void {
    this.state = S.Start;
    this.size = 0;
    this.matched = 0;
    this.framings.length = 0;
    this.stopAfter.length = 0;
  }

  /** Scan `buf` from `from`; returns where scanning stopped (buf.length unless measuring stopped). */
  /** `buf` must be a Buffer (the decoders are fed Buffers or subarrays of them; indexOf is native there). */
  scan(buf: Uint8Array, from = 0): number {
    let i = from;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case S.Start: {
          const c = buf[i];
          if (c === CR || c === LF) { i++; break; } // llhttp skips empty lines between messages
          this.state = S.Head;
          this.matched = 0;
          break;
        }
        case S.Head:
        case S.Trailers: {
          const end = this.findTerminator(buf, i);
          if (end < 0) { this.size += n - i; i = n; break; }
          this.size += end - i;
          i = end;
          if (this.state === S.Trailers) this.finish(i);
          else this.state = S.AwaitFraming;
          break;
        }
        case S.AwaitFraming: {
          if (this.framings.length === 0) return i; // llhttp has not seen this head complete: nothing to measure
          this.beginBody(i);
          break;
        }
        case S.Body: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          this.size += take;
          i += take;
          if (this.remaining === 0) this.finish(i);
          break;
        }
        case S.ChunkLine: {
          // chunk-size [; ext] CRLF — short lines, read byte by byte
          const c = buf[i++];
          this.size++;
          if (c === LF) {
            if (this.chunkSize === 0) { this.state = S.Trailers; this.matched = 2; }
            else { this.state = S.ChunkData; this.remaining = this.chunkSize + 2; }
            this.chunkSize = 0;
            this.chunkHexDone = false;
          } else if (!this.chunkHexDone) {
            const d = hexValue(c);
            if (d < 0) this.chunkHexDone = true;
            else this.chunkSize = this.chunkSize * 16 + d;
          }
          break;
        }
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          this.size += take;
          i += take;
          if (this.remaining === 0) this.state = S.ChunkLine;
          break;
        }
        case S.UntilEof:
          this.size += n - i;
          i = n;
          break;
        case S.Stopped:
          return i;
      }
    }
    // A head that ended exactly at the chunk end may already have its framing.
    if (this.state === S.AwaitFraming && this.framings.length > 0) this.beginBody(i);
    return i;
  }

  /** EOF: a body delimited by the close ends here. */
  end(): void {
    if (this.state === S.UntilEof) this.finish(0);
  }

  private beginBody(at: number): void {
    const framing = this.framings.shift()! as Framing;
    const length = this.framings.shift()!;
    switch (framing) {
      case Framing.None: this.finish(at); break;
      case Framing.Length:
        if (length === 0) this.finish(at);
        else { this.state = S.Body; this.remaining = length; }
        break;
      case Framing.Chunked: this.state = S.ChunkLine; this.chunkSize = 0; this.chunkHexDone = false; break;
      case Framing.UntilEof: this.state = S.UntilEof; break;
    }
  }

  private finish(at: number): void {
    const size = this.size;
    this.size = 0;
    this.state = this.stopAfter.shift() ? S.Stopped : S.Start;
    this.onEnd(size, at);
  }

  /** Offset just past CRLFCRLF, continuing a partial match from the previous chunk; -1 if not in `buf`. */
  private findTerminator(buf: Uint8Array, from: number): number {
    let i = from;
    while (this.matched > 0 && i < buf.length) {
      const want = this.matched % 2 === 0 ? CR : LF;
      const c = buf[i++];
      if (c === want) {
        if (++this.matched === 4) { this.matched = 0; return i; }
      } else {
        this.matched = c === CR ? 1 : 0;
      }
    }
    if (i >= buf.length) return -1;
    const j = (buf as Buffer).indexOf(CRLFCRLF, i);
    if (j >= 0) return j + 4;
    // Remember a partial terminator at the chunk end.
    const n = buf.length;
    if (n - i >= 3 && buf[n - 3] === CR && buf[n - 2] === LF && buf[n - 1] === CR) this.matched = 3;
    else if (n - i >= 2 && buf[n - 2] === CR && buf[n - 1] === LF) this.matched = 2;
    else if (buf[n - 1] === CR) this.matched = 1;
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
