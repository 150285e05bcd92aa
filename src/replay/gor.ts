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
 * A `.gor` byte stream in (chunks split anywhere), payloads out. Malformed records (no meta line, a bad
 * type, id or timestamp) are skipped and reported, as GoReplay skips them.
 */
export class GorReader {
  private tail: Buffer = Buffer.alloc(0);
  private lines: Buffer[] = [];
  private line = 0;
  private recordLine = 1;
  readonly problems: GorProblem[] = [];

  constructor(private readonly onPayload: (p: Payload) => void) {}

  write(chunk: Buffer): void {
    let buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const nl = buf.indexOf(10, at);
      if (nl < 0) break;
      const l = buf.subarray(at, nl + 1);
      this.line++;
      if (l.equals(SEPARATOR_LINE)) this.finish();
      else this.lines.push(Buffer.from(l));
      at = nl + 1;
    }
    this.tail = Buffer.from(buf.subarray(at));
    buf = this.tail;
  }

  /** End of input; a last record without a separator is reported as truncated. */
  end(): void {
    if (this.tail.length) this.lines.push(this.tail);
    this.tail = Buffer.alloc(0);
    if (this.lines.length) {
      this.problems.push({ line: this.recordLine, reason: 'the file ends inside a record (no separator after it)' });
      this.lines = [];
    }
  }

  private finish(): void {
    const lines = this.lines;
    this.lines = [];
    const at = this.recordLine;
    this.recordLine = this.line + 1;
    if (lines.length === 0) { this.problems.push({ line: at, reason: 'an empty record' }); return; }
    const meta = lines[0].toString('latin1').replace(/\n$/, '').split(' ');
    const [type, id, ts, latency] = meta;
    if (!/^[123]$/.test(type ?? '') || !/^[0-9a-f]+$/i.test(id ?? '') || !/^\d+$/.test(ts ?? '')) {
      this.problems.push({ line: at, reason: `not a payload meta line: ${JSON.stringify(lines[0].toString('latin1').slice(0, 60))}` });
      return;
    }
    const body = Buffer.concat(lines.slice(1));
    // The newline before the separator belongs to the separator, not to the message.
    const raw = body.length > 0 && body[body.length - 1] === 10 ? body.subarray(0, body.length - 1) : body;
    this.onPayload({
      type: Number(type) as PayloadType, id, timestamp: BigInt(ts),
      latency: latency !== undefined && /^-?\d+$/.test(latency) ? BigInt(latency) : -1n,
      protocol: 'http1', raw,
    });
  }
}
