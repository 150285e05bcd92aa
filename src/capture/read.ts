import { createReadStream } from 'node:fs';
import type { AnyRecord } from '../records/types.js';
import { FlowTable, type FlowOptions } from './flows.js';
import { tcpSegment } from './packet.js';
import { CaptureFileReader } from './pcap.js';
import { protocols as builtin } from '../pipeline/protocols.js';
import { KeyLog } from './tls/keylog.js';
import { tlsProtocol, type TlsStats } from './tls/session.js';

export interface CaptureOptions extends FlowOptions {
  /**
   * TLS secrets: a key log (`SSLKEYLOGFILE` format) as a path or a `KeyLog`. Secrets a pcapng file carries
   * in Decryption Secrets Blocks are added to it (or used alone).
   */
  keylog?: string | KeyLog;
}

export interface CaptureSummary {
  packets: number;
  segments: number;
  connections: number;
  /** Connections whose protocol no decoder recognised. */
  undecoded: number;
  records: number;
  /** Records whose callback threw (each reported to `onUserError`; decoding went on). */
  userErrors: number;
  /** Set when the file ended inside a packet record (a capture cut short). */
  warning: string | null;
  /** TLS connections: decrypted, without secrets, and with secrets that did not decrypt them. */
  tls: TlsStats;
}

/** A capture file's TCP segments into a flow table (secrets and errors to the caller). */
export function flowReader(flows: FlowTable, onSecrets: (keylog: string) => void, onError: (message: string) => void): CaptureFileReader {
  return new CaptureFileReader({
    onSecrets,
    onPacket: (p) => {
      const s = tcpSegment(p.linkType, p.data);
      if (s) flows.segment(s, p.time);
    },
    onError,
  });
}

/**
 * A whole capture as a stream: file bytes in (`write`), exchange records out, in `startTime` order.
 * Memory stays bounded by open connections, not by file size.
 */
export class CaptureDecoder {
  private readonly reader: CaptureFileReader;
  private readonly flows: FlowTable;
  private records = 0;
  private readonly tls: TlsStats = { decrypted: 0, noKeys: 0, badKeys: 0 };
  error: string | null = null;

  constructor(options: CaptureOptions, onRecord: (r: AnyRecord) => void) {
    const { keylog: given, ...flowOptions } = options;
    const keylog = typeof given === 'string' ? KeyLog.fromFile(given) : given ?? new KeyLog();
    const protocols = [...(options.protocols ?? builtin), tlsProtocol(keylog, this.tls)];
    this.flows = new FlowTable({ ...flowOptions, protocols }, (r) => { this.records++; onRecord(r); });
    this.reader = flowReader(this.flows, (text) => { keylog.add(text); }, (message) => { this.error ??= message; });
  }

  write(chunk: Uint8Array): void {
    this.reader.write(chunk);
  }

  end(): CaptureSummary {
    const warning = this.reader.end();
    this.flows.end();
    return {
      packets: this.reader.packets,
      segments: this.flows.stats.segments,
      connections: this.flows.stats.connections,
      undecoded: this.flows.stats.undecoded,
      records: this.records,
      tls: this.tls,
      userErrors: this.flows.stats.userErrors,
      warning,
    };
  }
}

/** Read a pcap/pcapng file; rejects with a one-sentence Error when it cannot be read as a capture. */
export async function readCaptureFile(
  path: string,
  options: CaptureOptions,
  onRecord: (r: AnyRecord) => void,
): Promise<CaptureSummary> {
  const dec = new CaptureDecoder(options, onRecord);
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      dec.write(chunk as Buffer);
      if (dec.error) break;
    }
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  } finally {
    stream.destroy();
  }
  const summary = dec.end();
  if (dec.error) throw new Error(`${path}: ${dec.error}`);
  return summary;
}
