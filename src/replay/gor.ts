/**
 * GoReplay's `.gor` format, byte-compatible for HTTP/1: a meta line `<type> <id> <timestamp> <latency>\n`,
 * the raw message, then the separator `\n🐵🙈🙉\n`. Read as GoReplay reads it: line by line, a line that is
 * exactly `🐵🙈🙉\n` ends the payload, and the newline before it is not part of the message. So a body
 * holding "\n🐵🙈🙉\n" is cut there, in GoReplay and here alike (the rest becomes a malformed record, which
 * is skipped and counted). Written by hand: GoReplay is Go, and no npm package reads its files.
 */
import type { Payload, PayloadType } from './payload.js';

export const SEPARATOR = Buffer.from('\n🐵🙈🙉\n');
const SEPARATOR_LINE = SEPARATOR.subarray(1);

export function encodeGor(p: Payload): Buffer {
  if (p.raw === undefined) throw new Error(`a .gor file holds HTTP/1 messages only, not ${p.protocol}`);
  return Buffer.concat([Buffer.from(`${p.type} ${p.id} ${p.timestamp} ${p.latency}\n`), p.raw, SEPARATOR]);
}

export interface GorProblem { line: number; reason: string }

/**
 * A `.gor` byte stream in (chunks split anywhere), payloads out. A line that is exactly the separator line
 * is always preceded by a newline, so searching for "\n🐵🙈🙉\n" finds the same record ends as reading line
 * by line, without copying each line. Malformed records (no meta line, a bad type, id or timestamp) are
 * skipped and reported, as GoReplay skips them.
 */
export class GorReader {
  private tail: Buffer = Buffer.alloc(0);
  /** Line number where the record in `tail` starts. */
  private recordLine = 1;
  readonly problems: GorProblem[] = [];

  constructor(private readonly onPayload: (p: Payload) => void) {}

  write(chunk: Buffer): void {
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    let at = 0;
    const SL = SEPARATOR_LINE.length;
    for (;;) {
      const left = buf.length - at;
      // A separator line right at a record start (the file's start, or just after a separator) is an empty
      // record: it has no newline before it for the search below to find.
      if (left >= SL && buf.subarray(at, at + SL).equals(SEPARATOR_LINE)) {
        this.problems.push({ line: this.recordLine, reason: 'an empty record' });
        this.recordLine++;
        at += SL;
        continue;
      }
      if (left < SL && SEPARATOR_LINE.subarray(0, left).equals(buf.subarray(at))) break; // may become one
      const end = buf.indexOf(SEPARATOR, at);
      if (end < 0) break;
      this.finish(buf.subarray(at, end + 1)); // the record and the newline that belongs to the separator
      at = end + SEPARATOR.length;
    }
    this.tail = at === 0 ? Buffer.from(buf) : Buffer.from(buf.subarray(at));
  }

  /** End of input; a last record without a separator is reported as truncated. */
  end(): void {
    if (this.tail.length && this.tail.some((b) => b !== 10)) {
      this.problems.push({ line: this.recordLine, reason: 'the file ends inside a record (no separator after it)' });
    }
    this.tail = Buffer.alloc(0);
  }

  /** One record: its meta line, then the message, then the newline before the separator line. */
  private finish(record: Buffer): void {
    const at = this.recordLine;
    this.recordLine += countLines(record) + 1; // + the separator line
    const nl = record.indexOf(10);
    const meta = record.subarray(0, nl < 0 ? record.length : nl).toString('latin1');
    const [type, id, ts, latency] = meta.split(' ');
    if (nl < 0 || !/^[123]$/.test(type ?? '') || !/^[0-9a-f]+$/i.test(id ?? '') || !/^\d+$/.test(ts ?? '')) {
      this.problems.push({ line: at, reason: `not a payload meta line: ${JSON.stringify(meta.slice(0, 60) + (nl < 0 ? '' : '\n'))}` });
      return;
    }
    this.onPayload({
      type: Number(type) as PayloadType, id, timestamp: BigInt(ts),
      latency: latency !== undefined && /^-?\d+$/.test(latency) ? BigInt(latency) : -1n,
      protocol: 'http1', raw: record.subarray(nl + 1, record.length - 1),
    });
  }
}

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
}
