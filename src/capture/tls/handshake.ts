/** The TLS handshake fields a record reports and decryption needs: randoms, version, suite, SNI, ALPN. */

export interface Hello {
  random: Buffer;
  /** ServerHello: the chosen suite. */
  suite: number | null;
  /** ServerHello: 0x0304 from supported_versions, else the legacy version. */
  version: number;
  sni: string | null;
  /** ClientHello: the offered protocols; ServerHello (TLS 1.2) / EncryptedExtensions: the chosen one. */
  alpn: string[];
}

const HELLO_RETRY = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/** ClientHello (type 1) or ServerHello (type 2) body; null when it does not parse. */
export function parseHello(type: number, b: Buffer): Hello | null {
  try {
    let at = 0;
    const legacy = b.readUInt16BE(at); at += 2;
    const random = b.subarray(at, at + 32); at += 32;
    at += 1 + b[at]; // session id
    let suite: number | null = null;
    if (type === 1) {
      at += 2 + b.readUInt16BE(at); // cipher suites
      at += 1 + b[at]; // compression methods
    } else {
      suite = b.readUInt16BE(at); at += 2;
      at += 1; // compression method
    }
    const hello: Hello = { random: Buffer.from(random), suite, version: legacy, sni: null, alpn: [] };
    if (at + 2 > b.length) return hello;
    const end = at + 2 + b.readUInt16BE(at);
    at += 2;
    while (at + 4 <= end) {
      const ext = b.readUInt16BE(at);
      const len = b.readUInt16BE(at + 2);
      const e = b.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      if (ext === 0 && type === 1 && e.length >= 5 && e[2] === 0) hello.sni = e.subarray(5, 5 + e.readUInt16BE(3)).toString('latin1');
      else if (ext === 16) hello.alpn = alpnList(e);
      else if (ext === 43 && type === 2 && e.length === 2) hello.version = e.readUInt16BE(0);
    }
    return hello;
  } catch {
    return null;
  }
}

export const isHelloRetry = (h: Hello) => h.random.equals(HELLO_RETRY);

/** EncryptedExtensions (TLS 1.3): the chosen ALPN protocol, if any. */
export function parseEncryptedExtensions(b: Buffer): string[] {
  try {
    const end = 2 + b.readUInt16BE(0);
    for (let at = 2; at + 4 <= end;) {
      const ext = b.readUInt16BE(at);
      const len = b.readUInt16BE(at + 2);
      if (ext === 16) return alpnList(b.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
  } catch { /* no ALPN */ }
  return [];
}

function alpnList(e: Buffer): string[] {
  const out: string[] = [];
  for (let at = 2; at < e.length;) {
    const n = e[at];
    out.push(e.subarray(at + 1, at + 1 + n).toString('latin1'));
    at += 1 + n;
  }
  return out;
}

export function versionName(v: number): string {
  return v === 0x0304 ? 'TLS 1.3' : v === 0x0303 ? 'TLS 1.2' : v === 0x0302 ? 'TLS 1.1' : v === 0x0301 ? 'TLS 1.0' : `0x${v.toString(16)}`;
}
