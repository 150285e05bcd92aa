/**
 * Recording: records made with `keepRaw` (from the tap proxy, a capture file or a live capture) written as
 * payloads to a `.gor` file (HTTP/1 only, byte-compatible with GoReplay) or a flowtap recording (every
 * protocol). What cannot be recorded is counted, never silently lost.
 */
import type { AnyRecord } from '../records/types.js';
import { RecordingWriter, type WriteOptions } from './files.js';
import { payloadsOf } from './payload.js';

export interface RecorderStats {
  /** Exchanges written (a request, and its response when there was one). */
  exchanges: number;
  payloads: number;
  /** Records with no request bytes to keep (a response whose request the capture missed, a parse error). */
  unrecordable: number;
  /** Exchanges a `.gor` file cannot hold (HTTP/2, gRPC, Dubbo). */
  notHttp1: number;
  /** Messages longer than the cap, kept cut (and marked). */
  cut: number;
}

export class Recorder {
  readonly stats: RecorderStats = { exchanges: 0, payloads: 0, unrecordable: 0, notHttp1: 0, cut: 0 };
  private readonly writer: RecordingWriter;

  constructor(path: string, options: WriteOptions = {}) {
    this.writer = new RecordingWriter(path, options);
  }

  get format(): 'gor' | 'flowtap' {
    return this.writer.format;
  }

  get files(): readonly string[] {
    return this.writer.files;
  }

  /** Why the recording could not be written, or null (see `RecordingWriter.failure`). */
  get failure(): Error | null {
    return this.writer.failure;
  }

  /** Payloads not written because the file had failed. */
  get lost(): number {
    return this.writer.lost;
  }

  /** A pipeline stage's worth: write the record's exchange; false when it could not be recorded. */
  record(r: AnyRecord): boolean {
    const payloads = payloadsOf(r);
    if (!payloads) { this.stats.unrecordable++; return false; }
    if (this.writer.format === 'gor' && payloads[0].protocol !== 'http1') { this.stats.notHttp1++; return false; }
    for (const p of payloads) {
      this.writer.write(p);
      if (p.cut) this.stats.cut++;
    }
    this.stats.exchanges++;
    this.stats.payloads += payloads.length;
    return true;
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
