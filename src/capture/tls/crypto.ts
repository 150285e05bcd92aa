/**
 * TLS record protection, undone with node:crypto: the TLS 1.3 key schedule's HKDF-Expand-Label (RFC 8446
 * §7.1), the TLS 1.2 PRF (RFC 5246 §5), and AEAD record decryption for AES-GCM and ChaCha20-Poly1305 in both
 * versions (RFC 5288, RFC 7905, RFC 8446 §5.2). Written here because no well-kept library decrypts TLS
 * records from a key log; the primitives are Node's.
 */
import { createDecipheriv, createHmac } from 'node:crypto';

export interface Suite {
  name: string;
  cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  hash: 'sha256' | 'sha384';
  keyLength: number;
}

const aes128 = (name: string): Suite => ({ name, cipher: 'aes-128-gcm', hash: 'sha256', keyLength: 16 });
const aes256 = (name: string): Suite => ({ name, cipher: 'aes-256-gcm', hash: 'sha384', keyLength: 32 });
const chacha = (name: string): Suite => ({ name, cipher: 'chacha20-poly1305', hash: 'sha256', keyLength: 32 });

/** The AEAD suites this decrypts, by IANA number. */
export const SUITES: Record<number, Suite> = {
  0x1301: aes128('TLS_AES_128_GCM_SHA256'),
  0x1302: aes256('TLS_AES_256_GCM_SHA384'),
  0x1303: chacha('TLS_CHACHA20_POLY1305_SHA256'),
  0xc02b: aes128('TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'),
  0xc02f: aes128('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'),
  0x009c: aes128('TLS_RSA_WITH_AES_128_GCM_SHA256'),
  0x009e: aes128('TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'),
  0xc02c: aes256('TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'),
  0xc030: aes256('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'),
  0x009d: aes256('TLS_RSA_WITH_AES_256_GCM_SHA384'),
  0x009f: aes256('TLS_DHE_RSA_WITH_AES_256_GCM_SHA384'),
  0xcca8: chacha('TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'),
  0xcca9: chacha('TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'),
  0xccaa: chacha('TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256'),
};

function hkdfExpand(hash: string, prk: Buffer, info: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1, n = 0; n < length; i++) {
    t = createHmac(hash, prk).update(t).update(info).update(Buffer.from([i])).digest();
    out.push(t);
    n += t.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

export function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const l = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, l.length]), l, Buffer.from([0])]);
  return hkdfExpand(hash, secret, info, length);
}

function prf(hash: string, secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const s = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const out: Buffer[] = [];
  let a = s;
  for (let n = 0; n < length;) {
    a = createHmac(hash, secret).update(a).digest();
    const p = createHmac(hash, secret).update(a).update(s).digest();
    out.push(p);
    n += p.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** One direction's record protection: key, IV and the record sequence number. */
export class RecordKeys {
  seq = 0n;

  private constructor(readonly suite: Suite, private key: Buffer, private iv: Buffer, private readonly tls13: boolean,
    private secret: Buffer | null) {}

  /** TLS 1.3: keys from a traffic secret. */
  static tls13(suite: Suite, secret: Buffer): RecordKeys {
    return new RecordKeys(suite, expandLabel(suite.hash, secret, 'key', suite.keyLength), expandLabel(suite.hash, secret, 'iv', 12), true, secret);
  }

  /** TLS 1.2: both directions' keys from the master secret and the two hello randoms. */
  static tls12(suite: Suite, master: Buffer, clientRandom: Buffer, serverRandom: Buffer): { client: RecordKeys; server: RecordKeys } {
    const ivLength = suite.cipher === 'chacha20-poly1305' ? 12 : 4;
    const block = prf(suite.hash, master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 2 * (suite.keyLength + ivLength));
    const k = suite.keyLength;
    return {
      client: new RecordKeys(suite, block.subarray(0, k), block.subarray(2 * k, 2 * k + ivLength), false, null),
      server: new RecordKeys(suite, block.subarray(k, 2 * k), block.subarray(2 * k + ivLength, 2 * k + 2 * ivLength), false, null),
    };
  }

  /** TLS 1.3 KeyUpdate: the next generation of this direction's secret. */
  update(): void {
    if (!this.secret) return;
    this.secret = expandLabel(this.suite.hash, this.secret, 'traffic upd', this.secret.length);
    this.key = expandLabel(this.suite.hash, this.secret, 'key', this.suite.keyLength);
    this.iv = expandLabel(this.suite.hash, this.secret, 'iv', 12);
    this.seq = 0n;
  }

  /**
   * The plaintext of one record (`header` its 5 bytes, `body` the rest); TLS 1.3 gives the inner content
   * type too. Null when authentication fails: wrong keys, or the record is not what the keys protect.
   */
  decrypt(header: Buffer, body: Buffer): { type: number; data: Buffer } | null {
    const seq = this.seq;
    const seqBytes = Buffer.alloc(8);
    seqBytes.writeBigUInt64BE(seq);
    let nonce: Buffer;
    let data = body;
    if (this.tls13 || this.suite.cipher === 'chacha20-poly1305') {
      nonce = Buffer.from(this.iv);
      for (let i = 0; i < 8; i++) nonce[4 + i] ^= seqBytes[i];
    } else {
      if (body.length < 8) return null;
      nonce = Buffer.concat([this.iv, body.subarray(0, 8)]);
      data = body.subarray(8);
    }
    if (data.length < 16) return null;
    const tag = data.subarray(data.length - 16);
    const ct = data.subarray(0, data.length - 16);
    const aad = this.tls13 ? header
      : Buffer.concat([seqBytes, header.subarray(0, 3), Buffer.from([ct.length >> 8, ct.length & 0xff])]);
    try {
      const d = this.suite.cipher === 'chacha20-poly1305'
        ? createDecipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: 16 })
        : createDecipheriv(this.suite.cipher, this.key, nonce);
      d.setAAD(aad, { plaintextLength: ct.length });
      d.setAuthTag(tag);
      const plain = Buffer.concat([d.update(ct), d.final()]);
      this.seq++; // only a record these keys opened counts: a failed try leaves the sequence as it was
      if (!this.tls13) return { type: header[0], data: plain };
      let end = plain.length;
      while (end > 0 && plain[end - 1] === 0) end--;
      if (end === 0) return null;
      return { type: plain[end - 1], data: plain.subarray(0, end - 1) };
    } catch {
      return null;
    }
  }
}
