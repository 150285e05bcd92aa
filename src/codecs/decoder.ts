/**
 * The decoder contract, shared by every codec in `src/codecs/` (HTTP/1, HTTP/2, Dubbo) and by protocol
 * plugins.
 *
 * A decoder reads ONE direction of ONE connection and emits WHOLE messages:
 * - `write(chunk, time)` feeds the next bytes in order. Chunks may be split anywhere, down to one byte;
 *   the decoder keeps what it needs across calls and never assumes a chunk is a message. `time` is the
 *   arrival time of the chunk in ms since the epoch (capture time for pcap input; defaults to now).
 * - `gap(length, time)` says `length` bytes were lost here (a hole in a capture).
 * - `end(time)` is EOF: messages delimited by the close complete, a partial one becomes an error value.
 * - `close()` releases what the decoder holds; anything written after it is ignored. Call it once the
 *   connection is over (sessions do).
 * - `messageStart` is the start time of the message being decoded, or Infinity between messages (so a
 *   capture reader knows how far it may release records in time order).
 * - Messages and errors leave through the plain callbacks given at construction (`onMessage`, `onError`),
 *   synchronously, in stream order. Errors are values: `write()`, `gap()`, `end()` and `close()` never
 *   throw, whatever the bytes.
 * - After an error and after a gap alike, the message they hit is reported once as an error value (with
 *   `size` = its bytes that were seen), and the decoder skips to the next place a message can plausibly
 *   start (a request line, the Dubbo magic, a frame header at a segment start); the caller just keeps
 *   writing.
 *
 * Decoders decode and nothing else: pairing requests with responses lives in `src/pipeline/pairer.ts`,
 * records are built in `src/records/`. The caller owns the chunks; a decoder copies only what it keeps.
 */
export interface Decoder {
  write(chunk: Uint8Array, time?: number): void;
  gap(length: number, time?: number): void;
  end(time?: number): void;
  close(): void;
  readonly messageStart: number;
}

/** An error as a value: what was wrong, and when. */
export interface DecodeError {
  /** Short machine-readable code, e.g. `HPE_INVALID_METHOD`, `gap`, `truncated`. */
  code: string;
  /** One human-readable sentence. */
  reason: string;
  /** Time of the first byte of the message that failed (or of the failure, if no message had begun). */
  startTime: number;
  /** Time the failure was seen. */
  endTime: number;
  /** Bytes of the failed message (or of the skipped region) that were seen before the failure. */
  size: number;
}

export interface DecoderCallbacks<M> {
  onMessage: (message: M) => void;
  onError?: (error: DecodeError) => void;
}
