/**
 * NSS key log files (what SSLKEYLOGFILE makes curl, browsers and Node's `keylog` event write, and what a
 * pcapng Decryption Secrets Block carries): `LABEL <client random, hex> <secret, hex>` per line.
 */
import { readFileSync } from 'node:fs';

export interface Secrets {
  /** TLS 1.2: the master secret. */
  CLIENT_RANDOM?: Buffer;
  CLIENT_HANDSHAKE_TRAFFIC_SECRET?: Buffer;
  SERVER_HANDSHAKE_TRAFFIC_SECRET?: Buffer;
  CLIENT_TRAFFIC_SECRET_0?: Buffer;
  SERVER_TRAFFIC_SECRET_0?: Buffer;
}

const LABELS = new Set(['CLIENT_RANDOM', 'CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET',
  'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0']);

/** Secrets by client random. Lines may be added at any time (a DSB in the middle of a pcapng file). */
export class KeyLog {
  private readonly byRandom = new Map<string, Secrets>();
  /** Lines that were not key log lines (comments and blank lines are not counted). */
  ignored = 0;

  static fromFile(path: string): KeyLog {
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (e) {
      throw new Error(`cannot read key log ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    return new KeyLog().add(text);
  }

  add(text: string): this {
    for (const line of text.split(/\r?\n/)) {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) continue;
      const [label, random, secret] = t.split(/\s+/);
      if (!LABELS.has(label) || !/^[0-9a-f]{64}$/i.test(random ?? '') || !/^([0-9a-f]{2})+$/i.test(secret ?? '')) { this.ignored++; continue; }
      const key = random.toLowerCase();
      let s = this.byRandom.get(key);
      if (!s) this.byRandom.set(key, (s = {}));
      s[label as keyof Secrets] = Buffer.from(secret, 'hex');
    }
    return this;
  }

  /** The secrets as key log lines again (what a decoding thread is given: secrets, not the file). */
  toText(): string {
    let text = '';
    for (const [random, secrets] of this.byRandom) {
      for (const [label, secret] of Object.entries(secrets)) text += `${label} ${random} ${(secret as Buffer).toString('hex')}\n`;
    }
    return text;
  }

  get size(): number {
    return this.byRandom.size;
  }

  get(clientRandom: Buffer): Secrets | undefined {
    return this.byRandom.get(clientRandom.toString('hex'));
  }
}
