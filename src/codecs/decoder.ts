/**
 * The decoder contract, shared by every codec in `src/codecs/` (HTTP/1, HTTP/2, Dubbo, ...).
 *
 * A decoder reads ONE direction of ONE connection:
 * - `write(chunk, time)` feeds the next bytes in order. Chunks may be split anywhere, down to one byte;
 *   the decoder keeps what it needs across calls and never assumes a chunk is a message. `time` is the
 *   arrival time of the chunk in ms since the epoch (capture time for pcap input; defaults to now).
 * - `gap(length, time)` says `length` bytes were lost here (a hole in a capture). The message the gap hits
 *   becomes an error value; decoding resumes where the protocol allows it.
 * - `end(time)` is EOF: messages delimited by the close complete, partial ones become error values.
 * - Messages and errors leave through the plain callbacks given at construction (`onMessage`, `onError`),
 *   synchronously, in stream order. Errors are values: `write()`, `gap()` and `end()` never throw, whatever
 *   the bytes. After an error the decoder resynchronises by itself; the caller just keeps writing.
 *
 * Decoders decode and nothing else: pairing requests with responses lives in `src/pipeline/`.
 * The caller owns the chunks; a decoder copies only what it keeps past the call.
 */
export interface Decoder {
  write(chunk: Uint8Array, time?: number): void;
  gap(length: number, time?: number): void;
  end(time?: number): void;
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
  /** Bytes of the failed message (or of the skipped region) that were seen. */
  size: number;
}

export interface DecoderCallbacks<M> {
  onMessage: (message: M) => void;
  onError?: (error: DecodeError) => void;
}
