/**
 * A loaded BPF object (programs + maps) and the links that attach its programs. Links are BPF links (file
 * descriptors owned by this process): if the process dies they are detached by the kernel; `close()`
 * detaches them explicitly.
 */
import { closeSync, openSync } from 'node:fs';
import { BpfSetupError, describeErrno, libbpf } from './libbpf.js';

/** Kernel attach types (enum bpf_attach_type) flowtap uses. */
export const AttachType = {
  TCX_INGRESS: 46,
  TCX_EGRESS: 47,
} as const;

/** How keys and values of one map are laid out. */
export interface MapCodec<K, V> {
  keySize: number;
  valueSize: number;
  encodeKey(k: K, into: Buffer): void;
  decodeKey(b: Buffer): K;
  encodeValue(v: V, into: Buffer): void;
  decodeValue(b: Buffer): V;
}

/** A typed view of one BPF map. Buffers are reused: an update is one native call and no allocation. */
export class BpfMap<K, V> {
  private readonly key: Buffer;
  private readonly value: Buffer;

  constructor(readonly name: string, readonly fd: number, private readonly codec: MapCodec<K, V>) {
    this.key = Buffer.alloc(codec.keySize);
    this.value = Buffer.alloc(codec.valueSize);
  }

  set(k: K, v: V): void {
    this.codec.encodeKey(k, this.key);
    this.codec.encodeValue(v, this.value);
    const r = libbpf().update(this.fd, this.key, this.value, 0);
    if (r < 0) throw new Error(`could not update BPF map ${this.name}: ${describeErrno(r)}`);
  }

  get(k: K): V | undefined {
    this.codec.encodeKey(k, this.key);
    const r = libbpf().lookup(this.fd, this.key, this.value);
    return r < 0 ? undefined : this.codec.decodeValue(this.value);
  }

  delete(k: K): boolean {
    this.codec.encodeKey(k, this.key);
    return libbpf().remove(this.fd, this.key) === 0;
  }

  *entries(): IterableIterator<[K, V]> {
    const lib = libbpf();
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.codec.keySize);
      if (lib.nextKey(this.fd, prev, next) < 0) return;
      const value = Buffer.alloc(this.codec.valueSize);
      if (lib.lookup(this.fd, next, value) === 0) yield [this.codec.decodeKey(next), this.codec.decodeValue(value)];
      prev = next;
    }
  }
}

/** u16 → u16 in host order (port maps). */
export const portCodec: MapCodec<number, number> = {
  keySize: 2, valueSize: 2,
  encodeKey: (k, b) => { b.writeUInt16LE(k, 0); },
  decodeKey: (b) => b.readUInt16LE(0),
  encodeValue: (v, b) => { b.writeUInt16LE(v, 0); },
  decodeValue: (b) => b.readUInt16LE(0),
};

/** u32 pid → u8 flag. */
export const pidCodec: MapCodec<number, boolean> = {
  keySize: 4, valueSize: 1,
  encodeKey: (k, b) => { b.writeUInt32LE(k, 0); },
  decodeKey: (b) => b.readUInt32LE(0),
  encodeValue: (v, b) => { b[0] = v ? 1 : 0; },
  decodeValue: (b) => b[0] === 1,
};

/** Keys and values as raw bytes (for maps only counted or inspected). */
export function rawCodec(keySize: number, valueSize: number): MapCodec<Buffer, Buffer> {
  return {
    keySize, valueSize,
    encodeKey: (k, b) => { k.copy(b); },
    decodeKey: (b) => Buffer.from(b),
    encodeValue: (v, b) => { v.copy(b); },
    decodeValue: (b) => Buffer.from(b),
  };
}

/** Array of u64 counters. */
export const counterCodec: MapCodec<number, bigint> = {
  keySize: 4, valueSize: 8,
  encodeKey: (k, b) => { b.writeUInt32LE(k, 0); },
  decodeKey: (b) => b.readUInt32LE(0),
  encodeValue: (v, b) => { b.writeBigUInt64LE(v, 0); },
  decodeValue: (b) => b.readBigUInt64LE(0),
};

export interface Link { detach(): void; readonly description: string }

export class BpfObject {
  private obj: unknown;
  private readonly links = new Set<Link>();

  private constructor(obj: unknown, readonly path: string) {
    this.obj = obj;
  }

  /** Open and load an object file; libbpf's messages go to the log set with `setLibbpfLog`. */
  static load(path: string): BpfObject {
    const lib = libbpf();
    const obj = lib.openFile(path);
    if (!obj) throw new BpfSetupError(`could not open the BPF object ${path}: ${describeErrno(lib.errno())}`);
    const r = lib.load(obj);
    if (r < 0) {
      lib.close(obj);
      // Privileges were checked before: a refusal here is the verifier's (its log goes to the `log` option).
      throw new BpfSetupError(`the kernel refused to load ${path.split('/').pop()}: ${describeErrno(r)}; pass a log function to see libbpf's and the verifier's messages.`);
    }
    return new BpfObject(obj, path);
  }

  private live(): unknown {
    if (!this.obj) throw new Error('this BPF object is closed');
    return this.obj;
  }

  map<K, V>(name: string, codec: MapCodec<K, V>): BpfMap<K, V> {
    const lib = libbpf();
    const m = lib.findMap(this.live(), name);
    if (!m) throw new Error(`BPF map ${name} is not in ${this.path}`);
    // The kernel writes whole keys and values into our buffers: a size mismatch would overrun them.
    const [k, v] = [lib.mapKeySize(m), lib.mapValueSize(m)];
    if (k !== codec.keySize || v !== codec.valueSize) {
      throw new Error(`BPF map ${name} has ${k}-byte keys and ${v}-byte values, not ${codec.keySize} and ${codec.valueSize}`);
    }
    return new BpfMap(name, lib.mapFd(m), codec);
  }

  programFd(name: string): number {
    const lib = libbpf();
    const p = lib.findProgram(this.live(), name);
    if (!p) throw new Error(`BPF program ${name} is not in ${this.path}`);
    return lib.programFd(p);
  }

  /** Attach a cgroup program (connect4/6, sockops, getsockopt) to the cgroup at `cgroupPath`. */
  attachCgroup(program: string, cgroupPath: string): Link {
    const lib = libbpf();
    const p = lib.findProgram(this.live(), program);
    if (!p) throw new Error(`BPF program ${program} is not in ${this.path}`);
    let fd: number;
    try {
      fd = openSync(cgroupPath, 'r');
    } catch (e) {
      throw new BpfSetupError(`cannot open the cgroup ${cgroupPath}: ${(e as NodeJS.ErrnoException).code}; pass the path of a cgroup v2 directory.`);
    }
    try {
      const link = lib.attachCgroup(p, fd);
      if (!link) throw new BpfSetupError(`could not attach ${program} to the cgroup ${cgroupPath}: ${describeErrno(lib.errno())}.`);
      return this.track({
        description: `${program} on cgroup ${cgroupPath}`,
        detach: () => { lib.destroyLink(link); },
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Attach a tc program to an interface (by index) as a tcx link. */
  attachTcx(program: string, ifindex: number, type: number, ifname = String(ifindex)): Link {
    const lib = libbpf();
    const fd = lib.linkCreate(this.programFd(program), ifindex, type);
    if (fd < 0) {
      const why = fd === -22 ? ' (tcx links need Linux 6.6 or newer)' : '';
      throw new BpfSetupError(`could not attach ${program} to ${ifname}: ${describeErrno(fd)}${why}.`);
    }
    return this.track({
      description: `${program} on ${ifname} (${type === AttachType.TCX_INGRESS ? 'ingress' : 'egress'})`,
      detach: () => { lib.closeFd(fd); },
    });
  }

  private track(link: Link): Link {
    let done = false;
    const tracked: Link = {
      description: link.description,
      detach: () => {
        if (done) return;
        done = true;
        this.links.delete(tracked);
        link.detach();
      },
    };
    this.links.add(tracked);
    return tracked;
  }

  /** Detach every link and unload the object. Safe to call twice. */
  close(): void {
    for (const l of [...this.links]) l.detach();
    if (this.obj) {
      libbpf().close(this.obj);
      this.obj = null;
    }
  }
}
