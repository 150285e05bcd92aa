/**
 * The system's libbpf (libbpf.so.1) and libc, through koffi — the only file that touches native code.
 * Loaded on first use, never at import: `flowtap/bpf` can be imported on any machine and says what is
 * missing only when asked to do something.
 */
import { createRequire } from 'node:module';

type Ptr = unknown;
type Koffi = {
  load(name: string): { func(sig: string): (...a: unknown[]) => unknown };
  proto(sig: string): unknown;
  pointer(t: unknown): unknown;
  register(fn: (...a: never[]) => unknown, t: unknown): unknown;
  errno(): number;
};

export interface Libbpf {
  openFile(path: string): Ptr | null;
  load(obj: Ptr): number;
  close(obj: Ptr): void;
  findProgram(obj: Ptr, name: string): Ptr | null;
  programFd(prog: Ptr): number;
  findMap(obj: Ptr, name: string): Ptr | null;
  mapFd(map: Ptr): number;
  mapKeySize(map: Ptr): number;
  mapValueSize(map: Ptr): number;
  attachCgroup(prog: Ptr, cgroupFd: number): Ptr | null;
  destroyLink(link: Ptr): number;
  linkCreate(progFd: number, targetFd: number, attachType: number): number;
  update(fd: number, key: Buffer, value: Buffer, flags: number): number;
  lookup(fd: number, key: Buffer, value: Buffer): number;
  remove(fd: number, key: Buffer): number;
  nextKey(fd: number, key: Buffer | null, next: Buffer): number;
  closeFd(fd: number): number;
  errno(): number;
  strerror(errno: number): string;
  /** libc's getsockopt/setsockopt/socket/bind/listen, for SO_ORIGINAL_DST and IP_TRANSPARENT. */
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, length: number): number;
  listen(fd: number, backlog: number): number;
  /** An interface's index in this process's network namespace (0: none). */
  ifIndex(name: string): number;
  /** Raw bpf(2), for the benchmark's comparison. */
  syscall(nr: number, cmd: number, attr: Buffer, size: number): number;
}

let cached: Libbpf | null = null;
let logSink: ((level: 'warn' | 'info' | 'debug', message: string) => void) | null = null;

/** Where libbpf's own messages go (one callback for the process: libbpf has one print hook). */
export function setLibbpfLog(fn: ((level: 'warn' | 'info' | 'debug', message: string) => void) | null): void {
  logSink = fn;
}

export class BpfSetupError extends Error {}

export function libbpf(): Libbpf {
  if (cached) return cached;
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch {
    throw new BpfSetupError('koffi is not installed: run npm install (it is a dependency of flowtap).');
  }
  let bpf: ReturnType<Koffi['load']>;
  try {
    bpf = koffi.load('libbpf.so.1');
  } catch {
    throw new BpfSetupError('libbpf.so.1 was not found: install it (apt-get install -y libbpf1, or your distribution\'s libbpf 1.x package).');
  }
  const libc = koffi.load('libc.so.6');
  const f = (sig: string) => bpf.func(sig);
  const c = (sig: string) => libc.func(sig);
  const fns = {
    openFile: f('void *bpf_object__open_file(const char *path, void *opts)'),
    load: f('int bpf_object__load(void *obj)'),
    close: f('void bpf_object__close(void *obj)'),
    findProgram: f('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    programFd: f('int bpf_program__fd(void *prog)'),
    findMap: f('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    mapFd: f('int bpf_map__fd(void *map)'),
    mapKeySize: f('uint32_t bpf_map__key_size(void *map)'),
    mapValueSize: f('uint32_t bpf_map__value_size(void *map)'),
    attachCgroup: f('void *bpf_program__attach_cgroup(void *prog, int cgroup_fd)'),
    destroyLink: f('int bpf_link__destroy(void *link)'),
    linkCreate: f('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)'),
    update: f('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
    lookup: f('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
    remove: f('int bpf_map_delete_elem(int fd, void *key)'),
    nextKey: f('int bpf_map_get_next_key(int fd, void *key, void *next)'),
    setPrint: f('void *libbpf_set_print(void *fn)'),
    closeFd: c('int close(int fd)'),
    strerror: c('const char *strerror(int errnum)'),
    getsockopt: c('int getsockopt(int fd, int level, int name, void *value, void *length)'),
    setsockopt: c('int setsockopt(int fd, int level, int name, void *value, uint32_t length)'),
    socket: c('int socket(int domain, int type, int protocol)'),
    bind: c('int bind(int fd, void *addr, uint32_t length)'),
    listen: c('int listen(int fd, int backlog)'),
    syscall: c('long syscall(long nr, long cmd, void *attr, long size)'),
    ifIndex: c('unsigned int if_nametoindex(const char *name)'),
    vsnprintf: c('int vsnprintf(void *buf, size_t n, const char *fmt, void *ap)'),
  };
  // libbpf's messages (verifier logs, missing features) go to the caller's log instead of stderr. va_list is
  // formatted by libc's vsnprintf; that only works where va_list is passed as a pointer (x86-64).
  const proto = koffi.proto('int flowtap_libbpf_print(int level, const char *fmt, void *ap)');
  const levels = ['warn', 'info', 'debug'] as const;
  let buf: Buffer | null = null; // verifier logs can be long: one buffer, kept
  const printer = koffi.register((level: number, fmt: string, ap: unknown) => {
    if (!logSink) return 0;
    let text = fmt;
    if (process.arch === 'x64') {
      buf ??= Buffer.alloc(1 << 20);
      const n = fns.vsnprintf(buf, buf.length, fmt, ap) as number;
      text = buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8');
    }
    logSink(levels[level] ?? 'debug', text.replace(/\n$/, ''));
    return 0;
  }, koffi.pointer(proto));
  fns.setPrint(printer);
  cached = {
    openFile: (p) => fns.openFile(p, null) ?? null,
    load: (o) => fns.load(o) as number,
    close: (o) => { fns.close(o); },
    findProgram: (o, n) => fns.findProgram(o, n) ?? null,
    programFd: (p) => fns.programFd(p) as number,
    findMap: (o, n) => fns.findMap(o, n) ?? null,
    mapFd: (m) => fns.mapFd(m) as number,
    mapKeySize: (m) => fns.mapKeySize(m) as number,
    mapValueSize: (m) => fns.mapValueSize(m) as number,
    attachCgroup: (p, fd) => fns.attachCgroup(p, fd) ?? null,
    destroyLink: (l) => fns.destroyLink(l) as number,
    linkCreate: (p, t, a) => fns.linkCreate(p, t, a, null) as number,
    update: (fd, k, v, fl) => fns.update(fd, k, v, fl) as number,
    lookup: (fd, k, v) => fns.lookup(fd, k, v) as number,
    remove: (fd, k) => fns.remove(fd, k) as number,
    nextKey: (fd, k, n) => fns.nextKey(fd, k, n) as number,
    closeFd: (fd) => fns.closeFd(fd) as number,
    errno: () => koffi.errno(),
    strerror: (e) => fns.strerror(e) as string,
    getsockopt: (fd, l, n, v, len) => fns.getsockopt(fd, l, n, v, len) as number,
    setsockopt: (fd, l, n, v, len) => fns.setsockopt(fd, l, n, v, len) as number,
    socket: (d, t, p) => fns.socket(d, t, p) as number,
    bind: (fd, a, l) => fns.bind(fd, a, l) as number,
    listen: (fd, b) => fns.listen(fd, b) as number,
    syscall: (nr, cmd, attr, size) => Number(fns.syscall(nr, cmd, attr, size)),
    ifIndex: (name) => fns.ifIndex(name) as number,
  };
  return cached;
}

/** "EPERM (Operation not permitted)" for a negative libbpf return or an errno. */
export function describeErrno(code: number): string {
  const e = Math.abs(code);
  const names: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL', 95: 'EOPNOTSUPP', 524: 'ENOTSUPP' };
  let text = '';
  try { text = libbpf().strerror(e); } catch { /* libbpf itself missing */ }
  return `${names[e] ?? `errno ${e}`}${text ? ` (${text})` : ''}`;
}
